"""The model folder made for `transformers serve`: tokenizer, config and checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest

from revati.examples.llama_shapes import PRESETS
from revati.serving.load import random_prompt
from revati.serving.model_dir import tensor_shapes, write_model_dir

TINY = PRESETS["tiny"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    write_model_dir(out, TINY, all_weights=True)
    return out


def test_a_prompt_of_n_words_is_n_tokens_and_every_id_decodes_to_a_word(tiny_dir):
    tokenizers = pytest.importorskip("tokenizers", reason="comes with the serve extra (dev)")
    tokenizer = tokenizers.Tokenizer.from_file(str(tiny_dir / "tokenizer.json"))
    assert tokenizer.get_vocab_size() == TINY.vocab
    prompt = random_prompt(37, np.random.default_rng(1))
    assert len(tokenizer.encode(prompt).ids) == 37
    stream = tokenizers.decoders.DecodeStream([], skip_special_tokens=True)
    assert all(stream.step(tokenizer, i) for i in range(TINY.vocab))


def test_the_config_has_the_shape_and_no_end_of_sequence(tiny_dir):
    config = json.loads((tiny_dir / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]) == (
        TINY.hidden,
        TINY.layers,
        TINY.vocab,
    )
    assert config["eos_token_id"] is None
    assert "eos_token_id" not in json.loads((tiny_dir / "generation_config.json").read_text())


def test_the_checkpoint_holds_every_weight_or_only_the_final_norm(tiny_dir, tmp_path):
    safetensors = pytest.importorskip("safetensors", reason="comes with transformers (dev)")
    with safetensors.safe_open(str(tiny_dir / "model.safetensors"), framework="np") as f:
        shapes = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}  # noqa: SIM118
    assert shapes == dict(tensor_shapes(TINY))
    write_model_dir(tmp_path, TINY, all_weights=False)
    with safetensors.safe_open(str(tmp_path / "model.safetensors"), framework="np") as f:
        assert set(f.keys()) == {"model.norm.weight"}
