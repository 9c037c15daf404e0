"""`transformers serve` under `revati bench`: one recorded run that several test tiers read.

The model is the tiny Llama shape of `revati.serving.model_dir`, every weight in a safetensors
file written once here, loaded with no hub access (HF_HUB_OFFLINE, an empty HF_HOME).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from revati.examples.llama_shapes import PRESETS
from revati.serving.model_dir import write_model_dir
from tests.serving.served import ServeRun, record_bench

NUM_PROMPTS = 32
LOAD = ("--num-prompts", str(NUM_PROMPTS), "--input-len", "8:32", "--output-len", "4:8")


def transformers_cli() -> str:
    """The `transformers` command of this interpreter's environment."""
    path = Path(sys.executable).with_name("transformers")
    if not path.exists():
        pytest.skip(
            "`transformers serve` is not installed (pip install -e '.[serve]', part of dev)"
        )
    return str(path)


def record_transformers_serve(work: Path) -> ServeRun:
    server = transformers_cli()
    model = work / "tiny-llama"
    write_model_dir(model, PRESETS["tiny"], all_weights=True)
    (work / "hf-home").mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(work / "hf-home")}
    load = (*LOAD, "--model", str(model))
    serve = [server, "serve", str(model), "--continuous-batching", "--cb-use-cuda-graph"]
    run = record_bench(work, load, serve, env, timeout=900)
    shutil.rmtree(work / "hf-home")
    return run
