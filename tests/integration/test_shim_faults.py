"""Faults the shim answers like CUDA does: no crash, no leak (tests/cuda/shim_faults.cu)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.record_helpers import REPO, build_cuda, q, run_cli

SOURCE = REPO / "tests" / "cuda" / "shim_faults.cu"


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_cuda(tmp_path_factory.getbasetemp(), SOURCE, "-cudart", "shared")


def _record(tmp_path: Path, program: Path, mode: str) -> tuple[dict[str, str], Path]:
    out = tmp_path / "t.duckdb"
    proc = run_cli("record", "--quiet", "-o", str(out), "--", str(program), mode)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line), out


def test_null_host_pointer_copies_are_refused_not_crashed(tmp_path: Path, faults: Path) -> None:
    values, out = _record(tmp_path, faults, "null_copy")
    assert values == {"copy_to_null": "1", "copy_from_null": "1", "memset_null": "1"}
    # the refused calls are in the trace with their error, and moved nothing
    calls = q(out, "SELECT name, result FROM api_calls WHERE name <> 'cudaMalloc' ORDER BY call_id")
    assert calls == [("cudaMemcpy", 1), ("cudaMemcpy", 1), ("cudaMemset", 1)]
    assert q(out, "SELECT count(*) FROM copies") == [(0,)]


def test_graph_clone_out_of_memory_frees_its_partial_copy(tmp_path: Path, faults: Path) -> None:
    values, _ = _record(tmp_path, faults, "clone_oom")
    assert values == {"clone_oom": "2", "leaked_blocks": "0", "clone_after": "0"}
