"""A Llama-shaped model folder that Hugging Face `transformers` loads with no hub access.

    python -m revati.serving.model_dir -o models/llama-3-8b --shape llama-3-8b
    python -m revati.serving.model_dir -o models/tiny --shape tiny --weights file

The folder holds what a hub repository of a Llama model holds: `config.json`,
`generation_config.json`, a tokenizer (`tokenizer.json`, built here with the `tokenizers`
library, and `tokenizer_config.json` with a chat template) and a safetensors checkpoint. Under
emulation the model's outputs carry no meaning, so:

- the tokenizer is a word-level one whose first words are the load generator's prompt words
  (a prompt of N words is N tokens) and whose every id, up to the model's vocabulary size,
  decodes to a word: whatever ids the emulated model emits stream as text;
- no end-of-sequence token is set: every request generates exactly its `max_tokens`;
- weights: `file` writes every tensor (random bf16, small shapes only), `device` writes only
  the final norm, and `from_pretrained` creates every other tensor on the device and
  initialises it there, as it does for any weight a checkpoint lacks. Under emulation those
  device tensors cost neither disk nor host memory, so the Llama-3-8B shape loads in seconds.
"""

from __future__ import annotations

import argparse
import json
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from revati.examples.llama_shapes import PRESETS, LlamaConfig
from revati.serving.load import PROMPT_WORDS

WEIGHTS_FILE = "model.safetensors"
UNKNOWN_WORD = "<unk>"
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)


def hf_config(cfg: LlamaConfig) -> dict[str, object]:
    """config.json of a `LlamaForCausalLM` of this shape (no bos/eos token ids)."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "bos_token_id": None,
        "eos_token_id": None,
        "hidden_size": cfg.hidden,
        "intermediate_size": cfg.intermediate,
        "num_hidden_layers": cfg.layers,
        "num_attention_heads": cfg.heads,
        "num_key_value_heads": cfg.kv_heads,
        "head_dim": cfg.head_dim,
        "vocab_size": cfg.vocab,
        "max_position_embeddings": 8192,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "initializer_range": 0.02,
        "dtype": "bfloat16",
        "use_cache": True,
    }


def tensor_shapes(cfg: LlamaConfig) -> Iterator[tuple[str, tuple[int, ...]]]:
    """Every weight of the model by its checkpoint name, in checkpoint order."""
    kv = cfg.kv_heads * cfg.head_dim
    yield "model.embed_tokens.weight", (cfg.vocab, cfg.hidden)
    for i in range(cfg.layers):
        layer = f"model.layers.{i}"
        yield f"{layer}.input_layernorm.weight", (cfg.hidden,)
        yield f"{layer}.self_attn.q_proj.weight", (cfg.hidden, cfg.hidden)
        yield f"{layer}.self_attn.k_proj.weight", (kv, cfg.hidden)
        yield f"{layer}.self_attn.v_proj.weight", (kv, cfg.hidden)
        yield f"{layer}.self_attn.o_proj.weight", (cfg.hidden, cfg.hidden)
        yield f"{layer}.post_attention_layernorm.weight", (cfg.hidden,)
        yield f"{layer}.mlp.gate_proj.weight", (cfg.intermediate, cfg.hidden)
        yield f"{layer}.mlp.up_proj.weight", (cfg.intermediate, cfg.hidden)
        yield f"{layer}.mlp.down_proj.weight", (cfg.hidden, cfg.intermediate)
    yield "model.norm.weight", (cfg.hidden,)
    yield "lm_head.weight", (cfg.vocab, cfg.hidden)


def bf16_bytes(shape: tuple[int, ...], rng: np.random.Generator) -> bytes:
    """Norm weights are ones, matrices N(0, 0.02); bf16 is the top half of a float32."""
    values = np.ones(shape, np.float32) if len(shape) == 1 else rng.normal(0, 0.02, shape)
    return (values.astype(np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()


def write_safetensors(path: Path, tensors: dict[str, tuple[tuple[int, ...], bytes]]) -> None:
    """The safetensors layout: u64 header length, a JSON header of offsets, the raw data."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (shape, data) in tensors.items():
        header[name] = {
            "dtype": "BF16",
            "shape": list(shape),
            "data_offsets": [offset, offset + len(data)],
        }
        offset += len(data)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(head)) + head)
        for _, data in tensors.values():
            f.write(data)


def write_weights(out: Path, cfg: LlamaConfig, all_weights: bool, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    shapes = dict(tensor_shapes(cfg))
    names = list(shapes) if all_weights else ["model.norm.weight"]
    write_safetensors(
        out / WEIGHTS_FILE, {n: (shapes[n], bf16_bytes(shapes[n], rng)) for n in names}
    )


def vocabulary(size: int) -> dict[str, int]:
    """The prompt words first, then numbered filler words, then the unknown word: `size` ids."""
    words = [*PROMPT_WORDS]
    words += [f"w{i}" for i in range(size - len(words) - 1)]
    words.append(UNKNOWN_WORD)
    return {word: i for i, word in enumerate(words)}


def write_tokenizer(out: Path, vocab_size: int) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel(vocabulary(vocab_size), unk_token=UNKNOWN_WORD))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.save(str(out / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": 8192,
        "chat_template": CHAT_TEMPLATE,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def write_model_dir(out: Path, cfg: LlamaConfig, all_weights: bool) -> None:
    """A loadable model folder at `out` (created if missing)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(hf_config(cfg), indent=2) + "\n")
    generation = {"do_sample": False, "max_new_tokens": 16}
    (out / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
    write_tokenizer(out, cfg.vocab)
    write_weights(out, cfg, all_weights)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m revati.serving.model_dir",
        description="Write a Llama-shaped model folder for `transformers serve` (no hub access).",
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="folder to write")
    p.add_argument("--shape", choices=sorted(PRESETS), default="llama-3-8b", help="model shape")
    p.add_argument(
        "--weights",
        choices=("device", "file"),
        default="device",
        help="device: only the final norm on disk, every other weight created on the device at "
        "load; file: every weight written (random; for small shapes)",
    )
    args = p.parse_args(argv)
    write_model_dir(args.output, PRESETS[args.shape], args.weights == "file")
    print(args.output)


if __name__ == "__main__":
    main()
