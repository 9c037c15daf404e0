"""cuBLAS and cuBLASLt under `revati record`: a C program built with gcc against the real headers
and linked against the real libcublas/libcublasLt (tests/cuda/cublas_gemms.c); every GEMM call
is one kernel on its stream with its shape in `kernel_features`, predicted by the GEMM model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from revati.predict import OpBatch, load_predictor
from tests.integration.cublas_build import build_cublas_program
from tests.integration.record_helpers import q
from tests.integration.test_record import assert_time_invariants, record, values

GEMMS = """SELECT k.name, k.stream_id, k.end_ns - k.start_ns, k.model, f.gemm_m, f.gemm_n,
                  f.gemm_k, f.batch, f.dtype, f.features, k.graph_id, k.call_id
           FROM kernels k LEFT JOIN kernel_features f USING (kernel_id) ORDER BY k.kernel_id"""


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_cublas_program(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def gemms_trace(program: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    proc, out = record(tmp_path_factory.mktemp("gemms"), str(program), "gemms")
    assert proc.returncode == 0, proc.stderr
    return values(proc.stdout), out


def test_each_gemm_call_is_one_kernel_with_its_shape(gemms_trace: tuple[dict, Path]) -> None:
    _, out = gemms_trace
    rows = q(out, GEMMS)
    shapes = [(r[0], r[4], r[5], r[6], r[7], r[8]) for r in rows]
    assert shapes == [
        ("cublas_gemm_fp32_nn", 8192, 8192, 8192, 1, "fp32"),
        ("cublas_gemm_fp16_tn", 4096, 2048, 1024, 1, "fp16"),
        ("cublas_gemm_bf16_nn", 1024, 1024, 4096, 1, "bf16"),
        ("cublas_gemm_fp32_nt", 512, 256, 128, 1, "fp32"),
        ("cublas_gemm_bf16_tn", 256, 512, 64, 8, "bf16"),
        ("cublasLt_gemm_bf16_tn_bias", 2048, 768, 4096, 1, "bf16"),
        ("cublasLt_gemm_bf16_tn_bias", 2048, 768, 4096, 4, "bf16"),
        ("cublasLt_gemm_fp8_e4m3_tn_gelu_bias", 4096, 1024, 8192, 1, "fp8"),
    ]
    assert {r[3] for r in rows} == {"gemm"}  # every one predicted by the GEMM model
    calls = q(out, "SELECT name FROM api_calls WHERE name LIKE 'cublas%' ORDER BY call_id")
    assert [c for (c,) in calls] == [
        "cublasSgemm_v2", "cublasGemmEx", "cublasGemmEx", "cublasSgemm_v2",
        "cublasGemmStridedBatchedEx", "cublasLtMatmul", "cublasLtMatmul", "cublasLtMatmul",
        "cublasSdot_v2",
    ]  # fmt: skip


def test_features_carry_types_layouts_and_epilogue(gemms_trace: tuple[dict, Path]) -> None:
    _, out = gemms_trace
    features = [json.loads(r[9]) for r in q(out, GEMMS)]
    big, fp16, bf16, _, strided, lt, lt_batched, fp8 = features
    assert big["beta_nonzero"] is None  # alpha/beta in device memory: not read
    assert (fp16["transa"], fp16["transb"], fp16["lda"], fp16["ldb"], fp16["ldc"]) == (
        "t", "n", 1024, 1024, 4096,
    )  # fmt: skip
    assert (fp16["a_type"], fp16["c_type"], fp16["compute_type"]) == ("fp16", "fp16", "32F")
    assert fp16["beta_nonzero"] is False and bf16["beta_nonzero"] is True
    assert (strided["stride_a"], strided["stride_b"]) == (256 * 64, 512 * 64)
    assert (lt["api"], lt["epilogue"], lt["bias"], lt["scale_type"]) == (
        "cublasLt", "bias", True, "fp32",
    )  # fmt: skip
    assert lt_batched["stride_a"] == 4096 * 2048
    assert (fp8["a_type"], fp8["b_type"], fp8["c_type"], fp8["epilogue"]) == (
        "fp8_e4m3", "fp8_e4m3", "bf16", "gelu_bias",
    )  # fmt: skip
    assert fp8["fp8_scales"] and fp8["bias"] and not lt["fp8_scales"]


def test_gemms_run_on_the_handles_stream_in_order(gemms_trace: tuple[dict, Path]) -> None:
    v, out = gemms_trace
    streams = q(
        out,
        """SELECT DISTINCT s.handle FROM kernels k JOIN streams s USING (stream_id)""",
    )
    assert streams == [(int(v["stream"], 16),)]
    assert_time_invariants(out)


def test_durations_are_the_gemm_models_and_events_measure_them(
    gemms_trace: tuple[dict, Path],
) -> None:
    v, out = gemms_trace
    rows = q(out, GEMMS)
    ((device,),) = q(out, "SELECT device FROM run")
    batch = OpBatch.from_columns(
        len(rows),
        name=np.array([r[0] for r in rows], dtype=object),
        gemm_m=[r[4] for r in rows],
        gemm_n=[r[5] for r in rows],
        gemm_k=[r[6] for r in rows],
        batch=[r[7] for r in rows],
        dtype=np.array([r[8] for r in rows], dtype=object),
    )
    predicted = load_predictor(device).predict(batch)
    assert [r[2] for r in rows] == np.maximum(predicted.duration_ns.astype(np.int64), 1).tolist()
    assert list(predicted.model) == ["gemm"] * len(rows)
    # the fp16 GemmEx between two events, queued behind the 8192^3 Sgemm
    assert float(v["elapsed_ns"]) == pytest.approx(rows[1][2], abs=1)
    assert rows[0][2] > 10 * rows[1][2]


def test_an_unemulated_cublas_call_is_recorded_as_unsupported(
    gemms_trace: tuple[dict, Path],
) -> None:
    v, out = gemms_trace
    assert v["sdot"] == "15"  # CUBLAS_STATUS_NOT_SUPPORTED
    assert q(out, "SELECT name, library, result FROM unsupported_calls") == [
        ("cublasSdot_v2", "libcublas.so.13", 15)
    ]


def test_a_captured_gemm_is_a_graph_node_replayed_with_its_shape(
    program: Path, tmp_path: Path
) -> None:
    proc, out = record(tmp_path, str(program), "capture")
    assert proc.returncode == 0, proc.stderr
    rows = q(out, GEMMS)
    assert len(rows) == 3
    assert {(r[0], r[4], r[5], r[6], r[8]) for r in rows} == {
        ("cublas_gemm_bf16_tn", 3072, 1024, 2048, "bf16")
    }
    assert sorted(r[10] for r in rows) == [0, 1, 2]  # one graph launch each
    assert all(r[11] is None for r in rows)  # graph nodes, not calls
    assert len({r[2] for r in rows}) == 1
    assert q(out, "SELECT count(*) FROM api_calls WHERE name = 'cublasGemmEx'") == [(0,)]
    assert_time_invariants(out)


@pytest.mark.parametrize("mode", ["gemms", "capture"])
def test_cublas_layer_has_no_undefined_behaviour(program: Path, tmp_path: Path, mode: str) -> None:
    """The shim built with UndefinedBehaviorSanitizer runs the cuBLAS modes without a report."""
    out = tmp_path / "t.duckdb"
    proc = subprocess.run(
        [sys.executable, "-m", "revati.cli", "record", "--quiet", "-o", str(out), "--",
         str(program), mode],
        env={**os.environ, "REVATI_SANITIZE": "undefined"}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert "runtime error" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr


def test_replay_re_predicts_gemms_from_their_shapes(
    gemms_trace: tuple[dict, Path], tmp_path: Path
) -> None:
    _, out = gemms_trace
    ((device,),) = q(out, "SELECT device FROM run")
    own, other = tmp_path / "own.duckdb", tmp_path / "a100.duckdb"
    for path, target in ((own, device), (other, "a100-sxm-80gb")):
        proc = subprocess.run(
            [sys.executable, "-m", "revati.cli", "replay", "-o", str(path), "--device", target,
             str(out)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    durations = "SELECT name, end_ns - start_ns, model FROM kernels ORDER BY kernel_id"
    assert q(own, durations) == q(out, durations)  # the shapes reach the predictor again
    on_a100 = q(other, durations)
    assert {m for _, _, m in on_a100} == {"gemm"}
    # the large GEMMs (over 20 µs on an H100) run slower on an A100; tiny ones sit on latency
    pairs = [(a[1], h[1]) for a, h in zip(on_a100, q(out, durations), strict=True)]
    assert (
        all(a > h for a, h in pairs if h > 20_000) and len([h for _, h in pairs if h > 20_000]) >= 5
    )
