"""Llama model shapes, shared by the PyTorch example and the model folders made for serving."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LlamaConfig:
    """Model shape. Defaults are Llama-3-8B's."""

    hidden: int = 4096
    intermediate: int = 14336
    layers: int = 32
    heads: int = 32
    kv_heads: int = 8
    vocab: int = 128256
    rope_theta: float = 500000.0
    norm_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


PRESETS = {
    "llama-3-8b": LlamaConfig(),
    "llama-2-7b": LlamaConfig(intermediate=11008, kv_heads=32, vocab=32000, rope_theta=10000.0),
    "tiny": LlamaConfig(hidden=256, intermediate=512, layers=2, heads=8, kv_heads=2, vocab=1024),
}
