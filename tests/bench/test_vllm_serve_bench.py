"""`vllm serve` (eager, dummy weights) under `revati bench` at several request rates (run:
`pytest tests/bench/test_vllm_serve_bench.py -s`). By default Llama-3-8B, 200 requests of 512
prompt and 128 output tokens at 1, 4 and 16 requests/s; REVATI_BENCH_MODEL (a folder name in
traces/models, e.g. llama-3-8b-2l), REVATI_BENCH_PROMPTS, REVATI_BENCH_LENGTHS (INPUT:OUTPUT),
REVATI_BENCH_RATES (comma-separated) change them, and REVATI_BENCH_TP=N serves with tensor
parallelism N on N virtual GPUs (`revati bench --devices N`, `--tensor-parallel-size N`, vLLM's
custom all-reduce with FlashInfer's off as in tests/integration/test_vllm_parallel.py);
REVATI_BENCH_CPU_WAIT=count records with `--cpu-wait count` (host time at wall speed, as before
the CPU-wait discount).

Prints the figures of tests/bench/serve_bench.py for each rate. Asserts only that every
request was served with its forced length.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.bench.serve_bench import bench, print_measures
from tests.integration.vllm_helpers import REPO, parallel_env, require_vllm, serve_command, vllm_env
from tests.serving.test_bench import free_port

pytestmark = pytest.mark.bench

RATES = os.environ.get("REVATI_BENCH_RATES", "1,4,16").split(",")


@pytest.mark.parametrize("rate", RATES)
def test_vllm_serve(tmp_path: Path, rate: str) -> None:
    require_vllm()
    model = REPO / "traces" / "models" / os.environ.get("REVATI_BENCH_MODEL", "llama-3-8b")
    prompts = int(os.environ.get("REVATI_BENCH_PROMPTS", "200"))
    input_len, output_len = map(int, os.environ.get("REVATI_BENCH_LENGTHS", "512:128").split(":"))
    tp = int(os.environ.get("REVATI_BENCH_TP", "1"))
    trace, port = tmp_path / "bench.duckdb", free_port()
    args = [
        "-o", str(trace), "--quiet", "--devices", str(tp),
        "--cpu-wait", os.environ.get("REVATI_BENCH_CPU_WAIT", "discount"),
        "--num-prompts", str(prompts), "--request-rate", rate,
        "--input-len", str(input_len), "--output-len", str(output_len),
        "--url", f"http://127.0.0.1:{port}",
        "--", *serve_command(model, input_len + output_len + 64, "--tensor-parallel-size", str(tp),
                             "--host", "127.0.0.1", "--port", str(port)),
    ]  # fmt: skip
    figures, wall, cpu = bench(args, {**os.environ, **(parallel_env() if tp > 1 else vllm_env())})
    assert (figures["completed"], figures["failed"]) == (prompts, 0)
    assert figures["total_output_tokens"] == prompts * output_len
    title = f"{model.name}, TP={tp}, {prompts} requests of {input_len} + {output_len} tokens"
    print_measures(trace, f"{title} at {rate}/s", figures, wall, cpu)
