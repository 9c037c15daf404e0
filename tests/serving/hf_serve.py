"""`transformers serve` under `revati bench`: one recorded run that several test tiers read.

The model is the tiny Llama shape of `revati.serving.model_dir`, every weight in a safetensors
file written once here, loaded with no hub access (HF_HUB_OFFLINE, an empty HF_HOME).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from revati.examples.llama_shapes import PRESETS
from revati.serving.model_dir import write_model_dir
from tests.conftest import run_cli
from tests.serving.test_bench import free_port

NUM_PROMPTS = 32
LOAD = ("--num-prompts", str(NUM_PROMPTS), "--input-len", "8:32", "--output-len", "4:8")


@dataclass(frozen=True)
class ServeRun:
    trace: Path
    model: Path
    figures: dict[str, float]  # what `revati bench --json` printed


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
    trace, port = work / "serve.duckdb", free_port()
    proc = run_cli(
        "bench", "-o", str(trace), "--quiet", "--json", *LOAD,
        "--url", f"http://127.0.0.1:{port}", "--model", str(model),
        "--", server, "serve", str(model), "--continuous-batching", "--cb-use-cuda-graph",
        "--host", "127.0.0.1", "--port", str(port),
        env=env, timeout=900,
    )  # fmt: skip
    log = Path(f"{trace}.server.log")
    assert proc.returncode == 0, proc.stderr + (log.read_text()[-3000:] if log.exists() else "")
    shutil.rmtree(work / "hf-home")
    return ServeRun(trace, model, json.loads(proc.stdout))
