"""`revati record --example llama`: the Llama-shaped decoder (real PyTorch) under emulation, eager
and with its decode step captured once in a CUDA graph and replayed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from revati.recorder.reader import open_trace

from tests.integration.record_helpers import q
from tests.integration.torch_helpers import require_torch

STEPS = 4


def record_llama(tmp: Path, *example_args: str) -> tuple[dict, Path]:
    require_torch()
    trace = tmp / "llama.duckdb"
    proc = subprocess.run(
        [sys.executable, "-m", "revati.cli", "record", "--quiet", "-o", str(trace),
         "--example", "llama", "--", "--layers", "2", "--prompt-len", "16",
         "--decode-steps", str(STEPS), *example_args],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), trace


@pytest.fixture(scope="module", params=["eager", "graph"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    args = ("--graph",) if request.param == "graph" else ()
    return request.param, *record_llama(tmp_path_factory.mktemp(request.param), *args)


def test_the_decoder_runs_every_step_with_nothing_unsupported(run) -> None:
    mode, out, trace = run
    assert out["mode"] == mode and out["decode_steps"] == STEPS
    assert out["decode_ms_median"] > 0 and out["prefill_ms"] > 0
    assert q(trace, "SELECT name FROM unsupported_calls") == []
    assert q(trace, "SELECT count(*) FROM api_calls WHERE result <> 0")[0][0] == 0


def test_every_gemm_carries_its_shape(run) -> None:
    _, _, trace = run
    gemms = q(
        trace,
        """SELECT k.kernel_id, f.gemm_m, f.gemm_n, f.gemm_k, k.model FROM kernels k
           LEFT JOIN kernel_features f USING (kernel_id) WHERE k.name LIKE 'cublas%gemm%'""",
    )
    # per layer: qkv, o, gate_up, down; plus the lm head: at least that many per forward
    assert len(gemms) >= (1 + STEPS) * (4 * 2 + 1)
    assert all(m and n and k and model == "gemm" for _, m, n, k, model in gemms), gemms[:3]
    # Llama-3-8B's qkv projection: hidden + 2 * kv_heads * head_dim = 4096 + 2048 outputs from
    # 4096 inputs (cuBLAS sees PyTorch's row-major product transposed: out features are m)
    assert any(m == 6144 and k == 4096 for _, m, _, k, _ in gemms), sorted({g[1:4] for g in gemms})


def test_a_graph_replay_repeats_the_captured_kernels(run) -> None:
    mode, _, trace = run
    replays = q(trace, "SELECT count(*) FROM api_calls WHERE name = 'cudaGraphLaunch'")[0][0]
    assert replays == (STEPS if mode == "graph" else 0)


def test_under_one_percent_of_device_time_comes_from_a_fallback_model(run) -> None:
    """Elementwise, reduction, copy-like and attention kernels get shapes from their launch
    arguments (revati.engine.kernel_layouts), so almost nothing is left to a fallback."""
    _, _, trace = run
    with open_trace(trace) as reader:
        shares = reader.model_shares()
    fallback = sum(share for model, share in shares.items() if model.endswith(":unmodelled"))
    assert fallback < 0.01, shares
    assert shares.get("bandwidth", 0) > 0 and any(m.startswith("attention") for m in shares)
