"""Writes the model directories next to this file: Llama configurations without weight files.

Each directory holds what a serving stack reads before it loads weights: `config.json`,
`generation_config.json` and a tokenizer (`tokenizer.json`, `tokenizer_config.json`). Weights
come from the stack's dummy loader (vLLM: `load_format="dummy"`), created on the device.

The tokenizer is made here with the `tokenizers` library, not taken from the model's owner: a
word-level vocabulary of exactly the model's `vocab_size`, whose first entries are short English
words (those `revati bench` builds prompts from, so a prompt of N words is N tokens plus the
beginning-of-text token) and whose other entries are numbered. The special tokens sit at the
model's own ids. Text it produces is meaningless, as are the dummy weights' tokens.

Run: `python traces/models/make.py` (needs `tokenizers`, installed with vLLM).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, processors

from revati.serving.load import PROMPT_WORDS

HERE = Path(__file__).resolve().parent

LLAMA_3_8B = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 128000,
    "eos_token_id": 128001,
    "head_dim": 128,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "initializer_range": 0.02,
    "intermediate_size": 14336,
    "max_position_embeddings": 8192,
    "mlp_bias": False,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": None,
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.40.0",
    "use_cache": True,
    "vocab_size": 128256,
}

LLAMA_2_7B = {
    **LLAMA_3_8B,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "intermediate_size": 11008,
    "max_position_embeddings": 4096,
    "num_key_value_heads": 32,
    "rope_theta": 10000.0,
    "torch_dtype": "float16",
    "vocab_size": 32000,
}

# Special tokens at the ids the real tokenizers give them.
LLAMA_3_SPECIALS = {
    128000: "<|begin_of_text|>",
    128001: "<|end_of_text|>",
    128006: "<|start_header_id|>",
    128007: "<|end_header_id|>",
    128009: "<|eot_id|>",
}
LLAMA_2_SPECIALS = {0: "<unk>", 1: "<s>", 2: "</s>"}

MODELS = {
    # name: (config, special tokens, the unknown-word token)
    "llama-3-8b": (LLAMA_3_8B, LLAMA_3_SPECIALS, "<unk>"),
    "llama-2-7b": (LLAMA_2_7B, LLAMA_2_SPECIALS, "<unk>"),
}
# Llama-3-8B's shapes with two layers: small enough for a test, the same kernels per layer.
CI_MODEL = ("llama-3-8b-2l", "llama-3-8b", {"num_hidden_layers": 2})
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def vocabulary(size: int, specials: dict[int, str], unk: str) -> dict[str, int]:
    """`size` distinct tokens: the specials at their ids, the prompt words first, then numbers."""
    names = dict(specials)
    free = (i for i in range(size) if i not in names)
    for word in (unk, *PROMPT_WORDS):
        if word not in names.values():
            names[next(free)] = word
    for i in free:
        names[i] = f"t{i}"
    return {name: i for i, name in names.items()}


def tokenizer(config: dict, specials: dict[int, str], unk: str) -> Tokenizer:
    vocab = vocabulary(config["vocab_size"], specials, unk)
    tok = Tokenizer(models.WordLevel(vocab, unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    bos = specials[config["bos_token_id"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, config["bos_token_id"])]
    )
    tok.add_special_tokens(list(specials.values()))
    return tok


def tokenizer_config(config: dict, specials: dict[int, str], unk: str) -> dict:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": specials[config["bos_token_id"]],
        "eos_token": specials[config["eos_token_id"]],
        "unk_token": unk,
        "model_max_length": config["max_position_embeddings"],
        "clean_up_tokenization_spaces": False,
    }


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_model(name: str, config: dict, specials: dict[int, str], unk: str) -> None:
    out = HERE / name
    out.mkdir(exist_ok=True)
    write_json(out / "config.json", config)
    eos = config["eos_token_id"]
    write_json(
        out / "generation_config.json",
        {"bos_token_id": config["bos_token_id"], "eos_token_id": eos, "do_sample": False},
    )
    tokenizer(config, specials, unk).save(str(out / "tokenizer.json"), pretty=False)
    write_json(out / "tokenizer_config.json", tokenizer_config(config, specials, unk))


def write_ci_model() -> None:
    """The small model shares its parent's tokenizer files through relative links."""
    name, parent, changes = CI_MODEL
    out = HERE / name
    out.mkdir(exist_ok=True)
    config = {**json.loads((HERE / parent / "config.json").read_text()), **changes}
    write_json(out / "config.json", config)
    for file in ("generation_config.json", *TOKENIZER_FILES):
        link = out / file
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(Path("..") / parent / file, link)


def main() -> None:
    for name, (config, specials, unk) in MODELS.items():
        write_model(name, config, specials, unk)
    write_ci_model()


if __name__ == "__main__":
    main()
