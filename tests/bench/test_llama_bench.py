"""The Llama-shaped decoder's decode step under emulation (run:
`pytest tests/bench/test_llama_bench.py -s`; REVATI_BENCH_LAYERS=N for fewer layers).

For batch 1 and 32, eager and replayed from a CUDA graph, on Llama-3-8B shapes: virtual time
per step (what the program's clock sees), the program's own CPU time per step, and real (wall)
time per step, read by the program through the raw clock_gettime system call, which revati does
not warp. Wall over CPU is the emulator's overhead: the program's host code is the physical
floor of any emulator, so the goal is wall within 5 % of CPU. Asserts only that every run
completes with the steps it was asked for.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.integration.record_helpers import q, run_cli
from tests.integration.torch_helpers import require_torch

pytestmark = pytest.mark.bench

STEPS = 16
CASES = [(1, "eager"), (32, "eager"), (1, "graph"), (32, "graph")]


def record_decoder(tmp: Path, batch: int, mode: str, layers: int) -> dict:
    trace = tmp / f"llama-{batch}-{mode}.duckdb"
    args = ["--batch", str(batch), "--layers", str(layers), "--prompt-len", "128",
            "--decode-steps", str(STEPS), *(["--graph"] if mode == "graph" else [])]  # fmt: skip
    proc = run_cli("record", "--quiet", "-o", str(trace), "--example", "llama", "--", *args,
                   timeout=1800)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["decode_steps"] == STEPS
    assert q(trace, "SELECT count(*) FROM unsupported_calls") == [(0,)]
    (out["run_wall_s"],) = q(trace, "SELECT wall_ns / 1e9 FROM run")[0]
    return out


def test_decode_step_virtual_wall_and_cpu_time(tmp_path: Path) -> None:
    require_torch()
    layers = int(os.environ.get("REVATI_BENCH_LAYERS", "32"))
    rows = []
    for batch, mode in CASES:
        out = record_decoder(tmp_path, batch, mode, layers)
        overhead = out["decode_wall_ms"] / out["decode_cpu_ms"] - 1
        rows.append(
            f"| {batch} | {mode} | {out['decode_ms_median']:.2f} ms | {out['decode_wall_ms']:.2f} ms "
            f"| {out['decode_cpu_ms']:.2f} ms | {overhead:+.0%} | {out['run_wall_s']:.1f} s |"
        )
    load = os.getloadavg()[0]
    print(f"\nLlama-3-8B shapes, {layers} layers, {STEPS} decode steps after a 128-token prefill, "
          f"one H100 (load average {load:.1f}, {sys.platform}):")  # fmt: skip
    print("| batch | decode step | virtual per step | wall per step | program CPU per step "
          "| overhead (wall / CPU - 1) | whole run, wall |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
