"""`transformers serve` with the Llama-3-8B shape under `revati bench` (run:
`pytest tests/bench/test_transformers_serve_bench.py -s`; REVATI_BENCH_PROMPTS=N for another
number of requests, 200 by default; REVATI_BENCH_SHAPE=tiny for the small model).

Prints the figures of tests/bench/serve_bench.py. Asserts only that every request was served.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from revati.examples.llama_shapes import PRESETS
from revati.serving.model_dir import write_model_dir
from tests.bench.serve_bench import bench, print_measures
from tests.serving.hf_serve import transformers_cli
from tests.serving.test_bench import free_port

pytestmark = pytest.mark.bench


def test_transformers_serve_llama_3_8b(tmp_path: Path) -> None:
    server = transformers_cli()
    prompts = int(os.environ.get("REVATI_BENCH_PROMPTS", "200"))
    shape = os.environ.get("REVATI_BENCH_SHAPE", "llama-3-8b")
    model = tmp_path / shape
    write_model_dir(model, PRESETS[shape], all_weights=False)
    (tmp_path / "hf-home").mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home")}
    trace, port = tmp_path / "bench.duckdb", free_port()
    args = [
        "-o", str(trace), "--quiet",
        "--num-prompts", str(prompts), "--input-len", "128", "--output-len", "128",
        "--url", f"http://127.0.0.1:{port}", "--model", str(model),
        "--", server, "serve", str(model), "--continuous-batching", "--cb-use-cuda-graph",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    figures, wall, cpu = bench(args, env)
    assert (figures["completed"], figures["failed"]) == (prompts, 0)
    print_measures(trace, f"{shape}, {prompts} requests of 128 + 128 tokens", figures, wall, cpu)
