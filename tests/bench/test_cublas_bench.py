"""Benchmark of the cuBLAS layer (run: `pytest tests/bench/test_cublas_bench.py -s`).

Figures printed: the shim's cost per intercepted cublasGemmEx and per cublasLtMatmul call (real
ns, measured inside the traced program with an unwarped clock, median of batches of 1,000
calls). Each call writes two ring records (the GEMM's shape and its kernel's launch). They assert
correctness, never speed.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.conftest import run_cli
from tests.integration.cublas_build import build_cublas_program

pytestmark = pytest.mark.bench


def test_shim_cost_per_gemm_call(tmp_path: Path) -> None:
    program = build_cublas_program(tmp_path)
    out = tmp_path / "bench.duckdb"
    proc = run_cli("record", "--quiet", "-o", str(out), "--", str(program), "gemmcost", "50000",
                   timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    v = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    with duckdb.connect(str(out), read_only=True) as con:
        counts = con.execute(
            """SELECT count(*) FILTER (WHERE name LIKE 'cublas\\_gemm%' ESCAPE '\\'),
                      count(*) FILTER (WHERE name LIKE 'cublasLt\\_gemm%' ESCAPE '\\'),
                      count(*) FILTER (WHERE f.gemm_m = 4096)
               FROM kernels LEFT JOIN kernel_features f USING (kernel_id)"""
        ).fetchone()
    calls = int(v["calls"])
    assert counts == (calls, calls, 2 * calls)
    print(
        f"\nshim cost per cublasGemmEx: {float(v['gemm_median_ns']):.0f} ns, per cublasLtMatmul: "
        f"{float(v['lt_median_ns']):.0f} ns (medians of {calls // 1000} batches of 1,000; "
        f"fastest batches {float(v['gemm_min_ns']):.0f} / {float(v['lt_min_ns']):.0f} ns)"
    )
