"""A Llama-shaped decoder: revati's own PyTorch workload (prefill, then a decode loop).

Shapes come from a config (Llama-3-8B by default); weights are random bf16 tensors created on
the device, so under emulation they cost no disk and no host memory. The decode step uses static
shapes (a preallocated KV cache, the position as a device tensor, attention masked to the
filled prefix), so the same code runs eagerly or captured once in a CUDA graph and replayed.
Each step ends with one device-to-host copy of the sampled tokens, as a serving engine does.

    python -m revati.examples.llama --layers 2 --batch 8 --decode-steps 16 --graph
    revati record --example llama          # the same under emulation, default settings
    revati record --example llama --nproc 4 -- --tp 4   # tensor-parallel over 4 ranks (torchrun)

Several ranks (`--tp`, `--pp`, started by torchrun) run revati/examples/llama_parallel.py.

Times printed are read from the clock the program sees: virtual time under `revati record`.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from revati.examples.llama_shapes import PRESETS, LlamaConfig


@dataclass(frozen=True)
class Shard:
    """This process's part of the model: tensor-parallel rank `tp_rank` of `tp` (Megatron-style:
    qkv and gate/up column-parallel, o and down row-parallel, so each attention and MLP block
    ends in one all-reduce), pipeline stage `stage` of `pp` (a contiguous run of layers; the
    first stage embeds, the last one norms and samples)."""

    tp: int = 1
    tp_rank: int = 0
    pp: int = 1
    stage: int = 0

    def heads(self, cfg: LlamaConfig) -> tuple[int, int]:
        """(query heads, key/value heads) of this rank; kv heads are replicated when fewer than tp."""
        if cfg.heads % self.tp or cfg.intermediate % self.tp:
            raise ValueError(f"--tp {self.tp} must divide heads ({cfg.heads}) and intermediate")
        return cfg.heads // self.tp, max(1, cfg.kv_heads // self.tp)

    def layers(self, cfg: LlamaConfig) -> range:
        if cfg.layers < self.pp:
            raise ValueError(f"--pp {self.pp} needs at least {self.pp} layers")
        per, extra = divmod(cfg.layers, self.pp)
        start = self.stage * per + min(self.stage, extra)
        return range(start, start + per + (self.stage < extra))

    @property
    def first(self) -> bool:
        return self.stage == 0

    @property
    def last(self) -> bool:
        return self.stage == self.pp - 1


def no_reduce(x: torch.Tensor) -> torch.Tensor:
    return x


class Layer:
    """One decoder layer's weights (this rank's shard), stored as (out, in) matrices like
    nn.Linear."""

    def __init__(
        self, cfg: LlamaConfig, device: torch.device, dtype: torch.dtype, shard: Shard = Shard()
    ) -> None:
        heads, kv_heads = shard.heads(cfg)
        q, kv, inter = heads * cfg.head_dim, kv_heads * cfg.head_dim, cfg.intermediate // shard.tp

        def weight(*shape: int) -> torch.Tensor:
            return torch.empty(shape, device=device, dtype=dtype).normal_(0.0, 0.02)

        self.attn_norm = torch.ones(cfg.hidden, device=device, dtype=dtype)
        self.qkv = weight(q + 2 * kv, cfg.hidden)  # column-parallel
        self.o = weight(cfg.hidden, q)  # row-parallel: partial sums, then all-reduce
        self.mlp_norm = torch.ones(cfg.hidden, device=device, dtype=dtype)
        self.gate_up = weight(2 * inter, cfg.hidden)  # column-parallel
        self.down = weight(cfg.hidden, inter)  # row-parallel


@dataclass
class KVCache:
    """Keys and values of every layer: (batch, kv_heads, max_len, head_dim) each."""

    keys: list[torch.Tensor] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    variance = x.float().pow(2).mean(-1, keepdim=True)
    return (x.float() * torch.rsqrt(variance + eps)).to(x.dtype) * weight


def rope_tables(
    cfg: LlamaConfig, max_len: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (
        cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, device=device).float() / cfg.head_dim)
    )
    angles = torch.outer(torch.arange(max_len, device=device).float(), inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (batch, heads, seq, head_dim); cos/sin: (seq, head_dim / 2)."""
    x1, x2 = x.float().chunk(2, dim=-1)
    rotated = torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
    return rotated.to(x.dtype)


class LlamaDecoder:
    """Prefill and single-token decode over a static KV cache: the whole model, or one shard of
    it (`shard`), whose row-parallel outputs `reduce` sums over the tensor-parallel ranks."""

    def __init__(
        self,
        cfg: LlamaConfig,
        batch: int,
        max_len: int,
        device: torch.device,
        dtype: torch.dtype = torch.bfloat16,
        shard: Shard = Shard(),
        reduce: Callable[[torch.Tensor], torch.Tensor] = no_reduce,
    ) -> None:
        self.cfg, self.batch, self.max_len, self.device = cfg, batch, max_len, device
        self.shard, self.reduce = shard, reduce
        self.heads, self.kv_heads = shard.heads(cfg)
        if shard.first:
            self.embedding = torch.empty(cfg.vocab, cfg.hidden, device=device, dtype=dtype)
            self.embedding.normal_(0.0, 0.02)
        n = len(shard.layers(cfg))
        self.layers = [Layer(cfg, device, dtype, shard) for _ in range(n)]
        if shard.last:
            self.final_norm = torch.ones(cfg.hidden, device=device, dtype=dtype)
            self.lm_head = torch.empty(cfg.vocab, cfg.hidden, device=device, dtype=dtype)
            self.lm_head.normal_(0.0, 0.02)
        self.cos, self.sin = rope_tables(cfg, max_len, device)
        shape = (batch, self.kv_heads, max_len, cfg.head_dim)
        self.cache = KVCache(
            [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n)],
            [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n)],
        )

    def _attention(
        self, layer: Layer, index: int, x: torch.Tensor, positions: torch.Tensor, causal: bool
    ) -> torch.Tensor:
        cfg = self.cfg
        batch, seq, _ = x.shape
        q_width, kv = self.heads * cfg.head_dim, self.kv_heads * cfg.head_dim
        q, k, v = F.linear(x, layer.qkv).split([q_width, kv, kv], dim=-1)
        q = q.view(batch, seq, self.heads, cfg.head_dim).transpose(1, 2)
        k = k.view(batch, seq, self.kv_heads, cfg.head_dim).transpose(1, 2)
        v = v.view(batch, seq, self.kv_heads, cfg.head_dim).transpose(1, 2)
        cos, sin = self.cos[positions], self.sin[positions]
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        keys, values = self.cache.keys[index], self.cache.values[index]
        keys.index_copy_(2, positions, k)
        values.index_copy_(2, positions, v)
        if causal:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        else:
            visible = (torch.arange(self.max_len, device=self.device) <= positions[-1]).view(
                1, 1, 1, -1
            )
            out = F.scaled_dot_product_attention(
                q, keys, values, attn_mask=visible, enable_gqa=True
            )
        out = F.linear(out.transpose(1, 2).reshape(batch, seq, q_width), layer.o)
        return self.reduce(out)

    def _mlp(self, layer: Layer, x: torch.Tensor) -> torch.Tensor:
        gate, up = F.linear(x, layer.gate_up).chunk(2, dim=-1)
        return self.reduce(F.linear(F.silu(gate) * up, layer.down))

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, prefill: bool) -> torch.Tensor:
        """tokens: (batch, seq) ids, or hidden states (batch, seq, hidden) from the previous
        pipeline stage; returns the next token of each sequence (batch,) on the last stage, the
        hidden states for the next stage on the others."""
        x = F.embedding(tokens, self.embedding) if self.shard.first else tokens
        for index, layer in enumerate(self.layers):
            h = rms_norm(x, layer.attn_norm, self.cfg.norm_eps)
            x = x + self._attention(layer, index, h, positions, causal=prefill)
            x = x + self._mlp(layer, rms_norm(x, layer.mlp_norm, self.cfg.norm_eps))
        if not self.shard.last:
            return x
        last = rms_norm(x[:, -1], self.final_norm, self.cfg.norm_eps)
        return F.linear(last, self.lm_head).argmax(dim=-1)


class DecodeLoop:
    """Runs decode steps eagerly or as replays of one captured CUDA graph."""

    def __init__(self, model: LlamaDecoder, graph: bool) -> None:
        self.model = model
        self.tokens = torch.zeros(model.batch, 1, dtype=torch.long, device=model.device)
        self.position = torch.zeros(1, dtype=torch.long, device=model.device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.next_tokens = self.tokens[:, 0]
        if graph:
            self._capture()

    def _capture(self) -> None:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self.model.forward(self.tokens, self.position, prefill=False)  # warm-up
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.next_tokens = self.model.forward(self.tokens, self.position, prefill=False)

    def step(self, tokens: torch.Tensor, position: int) -> torch.Tensor:
        self.tokens.copy_(tokens.view(-1, 1), non_blocking=True)
        self.position.fill_(position)
        if self.graph is not None:
            self.graph.replay()
            return self.next_tokens
        return self.model.forward(self.tokens, self.position, prefill=False)


_CLOCK_GETTIME_SYSCALL = {"x86_64": 228, "aarch64": 113}


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def real_clock_ns() -> int:
    """CLOCK_MONOTONIC read with the raw system call rather than through libc, so that under
    `revati record` (which interposes libc's clocks) it is the machine's wall clock, not virtual
    time: what the emulation costs in real time. Elsewhere it equals time.monotonic_ns()."""
    number = _CLOCK_GETTIME_SYSCALL.get(platform.machine())
    if os.name != "posix" or number is None:
        return time.monotonic_ns()
    ts = _Timespec()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(number, time.CLOCK_MONOTONIC, ctypes.byref(ts)) != 0:
        return time.monotonic_ns()
    return ts.tv_sec * 1_000_000_000 + ts.tv_nsec


@dataclass
class StepTimes:
    """Milliseconds per phase, as the program's own clock measured them (virtual time under
    revati), the CPU time the process spent per decode step, and the machine's real (wall) time
    per decode step."""

    prefill_ms: float
    decode_ms: list[float]
    decode_cpu_ms: float = math.nan  # the process's CPU time per decode step
    decode_wall_ms: float = math.nan  # real time per decode step (real_clock_ns)

    def summary(self) -> dict[str, float | int]:
        steps = sorted(self.decode_ms)
        return {
            "prefill_ms": round(self.prefill_ms, 4),
            "decode_steps": len(steps),
            "decode_ms_mean": round(sum(steps) / len(steps), 4) if steps else math.nan,
            "decode_ms_median": round(steps[len(steps) // 2], 4) if steps else math.nan,
            "decode_cpu_ms": round(self.decode_cpu_ms, 4),
            "decode_wall_ms": round(self.decode_wall_ms, 4),
        }


def time_steps(
    prefill: Callable[[], torch.Tensor],
    step: Callable[[torch.Tensor, int], torch.Tensor],
    prompt_len: int,
    decode_steps: int,
) -> StepTimes:
    """Run the prefill, then `decode_steps` steps (each fed the tokens the last one returned,
    copied to the host as a serving engine does), timing each on the program's clock."""
    start = time.perf_counter()
    tokens = prefill().cpu()
    prefill_ms = (time.perf_counter() - start) * 1e3
    decode_ms = []
    cpu0, wall0 = time.process_time(), real_clock_ns()  # neither is warped under revati
    for position in range(prompt_len, prompt_len + decode_steps):
        start = time.perf_counter()
        tokens = step(tokens, position).cpu()
        decode_ms.append((time.perf_counter() - start) * 1e3)
    steps = max(decode_steps, 1)
    cpu_ms = (time.process_time() - cpu0) * 1e3 / steps
    wall_ms = (real_clock_ns() - wall0) / 1e6 / steps
    return StepTimes(prefill_ms, decode_ms, cpu_ms, wall_ms)


def run(
    cfg: LlamaConfig, batch: int, prompt_len: int, decode_steps: int, graph: bool, device: str
) -> StepTimes:
    dev = torch.device(device)
    model = LlamaDecoder(cfg, batch, prompt_len + decode_steps + 1, dev)
    loop = DecodeLoop(model, graph and dev.type == "cuda")
    prompt = torch.randint(0, cfg.vocab, (batch, prompt_len), device=dev)
    return time_steps(
        lambda: model.forward(prompt, torch.arange(prompt_len, device=dev), prefill=True),
        lambda tokens, position: loop.step(tokens.to(dev, non_blocking=True), position),
        prompt_len,
        decode_steps,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m revati.examples.llama",
        description="A Llama-shaped decoder with random bf16 weights: one prefill, then a "
        "decode loop (eager or one CUDA graph replayed per step). Prints step times as JSON.",
    )
    p.add_argument("--model", choices=sorted(PRESETS), default="llama-3-8b")
    p.add_argument("--layers", type=int, default=None, help="override the number of layers")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--prompt-len", type=int, default=128)
    p.add_argument("--decode-steps", type=int, default=32)
    p.add_argument("--graph", action="store_true", help="capture the decode step in a CUDA graph")
    p.add_argument("--device", default="cuda", help="torch device (default: cuda)")
    p.add_argument("--tp", type=int, default=1, help="tensor-parallel ranks (under torchrun)")
    p.add_argument("--pp", type=int, default=1, help="pipeline stages (under torchrun)")
    args = p.parse_args(argv)
    if args.tp < 1 or args.pp < 1:
        p.error("--tp and --pp must be at least 1")
    if args.graph and args.tp * args.pp > 1:
        p.error("--graph runs on one rank; give it without --tp/--pp")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cfg = PRESETS[args.model]
    if args.layers is not None:
        cfg = LlamaConfig(**{**asdict(cfg), "layers": args.layers})
    mode = "graph" if args.graph else "eager"
    head: dict[str, object] = {"model": args.model, "batch": args.batch, "mode": mode}
    if args.tp * args.pp > 1:
        from revati.examples.llama_parallel import run_parallel  # torch.distributed: only here

        times, ranks = run_parallel(
            cfg, args.batch, args.prompt_len, args.decode_steps, args.tp, args.pp
        )
        if ranks.rank != 0:
            return
        head.update(tp=args.tp, pp=args.pp)
    else:
        times = run(cfg, args.batch, args.prompt_len, args.decode_steps, args.graph, args.device)
    print(json.dumps({**head, **times.summary()}))


if __name__ == "__main__":
    main()
