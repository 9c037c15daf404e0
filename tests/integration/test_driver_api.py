"""A C program on the driver API (cuda.h, linked against libcuda.so.1 and libnvidia-ml.so.1 as
an extension module is): it loads a cubin nvcc built, launches its kernel on a stream, moves
data, and asks NVML; recorded, and checked by `revati doctor`."""

from __future__ import annotations

from pathlib import Path

import pytest

from revati.doctor import check_program
from revati.fatbin import cubin_kernels
from tests.integration.driver_helpers import build_driver_program
from tests.integration.record_helpers import q, run_cli


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_driver_program(tmp_path_factory.mktemp("driver_api"))


def test_a_cubin_loads_and_launches_through_the_driver(
    program: tuple[Path, Path], tmp_path: Path
) -> None:
    exe, cubin = program
    trace = tmp_path / "t.duckdb"
    proc = run_cli("record", "--quiet", "-o", str(trace), "--", str(exe), str(cubin), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert out["device"] == "NVIDIA H100 80GB HBM3|232448"  # the catalog's opt-in shared memory
    (kernel,) = cubin_kernels(cubin.read_bytes())  # the Python reading of the same cubin
    assert out["attributes"] == f"{kernel.registers} {kernel.shared_bytes}"
    assert out["missing"] == "500"  # CUDA_ERROR_NOT_FOUND: the cubin has no such kernel
    assert out["data"] == "0 1 1 1023"  # bytes moved; the 4-byte memset wrote 1.0f twice
    assert out["nvml"] == "0 0 1"
    assert out["tensormap"] == "0 1 0"  # CUDA_ERROR_INVALID_VALUE for the misaligned address
    rows = q(trace, "SELECT name, grid_x, block_x, shared_mem, stream_id FROM kernels")
    assert [r[:4] for r in rows] == [("add_one", 4, 256, kernel.shared_bytes)]
    on_stream = q(trace, "SELECT count(*) FROM streams WHERE stream_id = "
                         f"{rows[0][4]} AND NOT is_default")  # fmt: skip
    assert on_stream == [(1,)]
    assert q(trace, "SELECT count(*) FROM memsets") == [(1,)]
    assert q(trace, "SELECT name FROM unsupported_calls") == []


def test_doctor_reads_driver_and_nvml_imports_as_emulated(program: tuple[Path, Path]) -> None:
    exe, _ = program
    report = check_program([str(exe)])
    assert report.runnable
    assert {"cuInit", "cuModuleLoadData", "cuLaunchKernel", "nvmlInit_v2"} <= set(report.emulated)
    assert report.shares["libcuda.so.1"].get("emulated", 0) >= 10
    assert report.shares["libnvidia-ml.so.1"] == {"emulated": 2}
