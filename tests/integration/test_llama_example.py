"""`revati record --example llama`: the Llama-shaped decoder (real PyTorch) under emulation, eager
and with its decode step captured once in a CUDA graph and replayed."""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest

from tests.integration.record_helpers import q
from tests.integration.torch_helpers import launch_costs, modelled_launch_cost, require_torch

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


def test_kernel_and_gemm_launches_cost_the_modelled_host_time(run) -> None:
    _, _, trace = run
    found = launch_costs(trace, ("__cudaLaunchKernel", "cublasGemmEx", "cublasLtMatmul"))
    assert {"__cudaLaunchKernel", "cublasGemmEx"} <= set(found) or "cublasLtMatmul" in found
    assert all(costs == {modelled_launch_cost(trace)} for costs in found.values()), found


def test_a_graph_replay_repeats_the_captured_kernels(run) -> None:
    mode, _, trace = run
    replays = q(trace, "SELECT count(*) FROM api_calls WHERE name = 'cudaGraphLaunch'")[0][0]
    assert replays == (STEPS if mode == "graph" else 0)


def decode_steps(trace: Path) -> list[tuple[int, int, int, list[tuple]]]:
    """(start, end, sync, ops) of each decode step: a step runs from the return of the previous
    step's token copy (`.cpu()`, a stream sync) to the return of its own (`sync`: when the host
    reached that sync); its ops are the kernels, copies and memsets of that stream that end
    inside it, in device order."""
    (stream,) = q(trace, "SELECT stream_id FROM copies WHERE kind = 'DtoH' ORDER BY end_ns DESC LIMIT 1")[0]  # fmt: skip
    syncs = q(trace, "SELECT blocked_ns, resumed_ns FROM syncs WHERE kind = 'stream' ORDER BY resumed_ns")  # fmt: skip
    ops = q(
        trace,
        f"""SELECT launch_ns, start_ns, end_ns, duration_source FROM kernels WHERE stream_id = {stream}
            UNION ALL SELECT launch_ns, start_ns, end_ns, duration_source FROM copies WHERE stream_id = {stream}
            UNION ALL SELECT launch_ns, start_ns, end_ns, 'predicted' FROM memsets WHERE stream_id = {stream}
            ORDER BY start_ns, end_ns""",
    )  # fmt: skip
    bounds = syncs[-(STEPS + 1) :]
    return [(a, b, blocked, [op for op in ops if a < op[2] <= b])
            for (_, a), (blocked, b) in pairwise(bounds)]  # fmt: skip


def test_a_decode_step_is_its_predicted_device_work_plus_host_time(run) -> None:
    """Each step's virtual time is exactly the predicted durations of its device work plus the
    stretches where the device waited for the host (an op that starts at its submission plus
    the launch latency: the program's host code and the modelled cost of its calls), with no
    other slack: the step ends when its token copy does."""
    from revati.predict.catalog import get_device

    _, out, trace = run
    (device,) = q(trace, "SELECT device FROM run")[0]
    latency = get_device(device).launch_latency_ns
    steps = decode_steps(trace)
    assert len(steps) == STEPS
    for start, end, sync, ops in steps:
        assert ops, f"no device work between {start} and {end}"
        device_work = host_wait = 0
        device_free = start
        for launch, op_start, op_end, source in ops:
            assert source == "predicted"
            if op_start > device_free:  # the device idled: only because the host had not submitted
                assert op_start == launch + latency, (launch, op_start, device_free)
                host_wait += op_start - device_free
            else:
                assert op_start == device_free  # otherwise back to back, no slack
            device_work += op_end - op_start
            device_free = op_end
        if end > device_free:  # the copy had landed before the host reached the sync
            assert sync >= device_free, (sync, device_free, end)
            host_wait += end - device_free
        else:  # the sync returns when the token copy lands
            assert end == device_free
        assert end - start == device_work + host_wait
    # and the program's own clock saw these same steps
    trace_ms = sorted((end - start) / 1e6 for start, end, _, _ in steps)[STEPS // 2]
    assert out["decode_ms_median"] == pytest.approx(trace_ms, rel=0.05, abs=0.1)


def test_the_example_reports_real_time_and_cpu_time_per_step(run) -> None:
    """Wall time (the raw clock revati does not warp) and CPU time per step: their ratio is the
    emulator's overhead that tests/bench/test_llama_bench.py reports."""
    _, out, _ = run
    assert out["decode_cpu_ms"] > 0 and out["decode_wall_ms"] > 0
    assert out["decode_wall_ms"] >= out["decode_cpu_ms"] * 0.5  # CPU time is spread over threads
