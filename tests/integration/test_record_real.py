"""`revati record --real` without a GPU: CUPTI activity buffers built in a test program (CUPTI's
own struct layouts, from its headers) go through the real collector code and become trace
rows; and on a machine with no GPU the command says so in one line and exits non-zero."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from revati.recorder.writer import RunInfo, TraceWriter

from revati.engine.real_session import catalog_id, gpu_status, write_measured_trace
from revati.native.build import compiler
from revati.native.collector_build import collector_status, ensure_collector, find_cupti
from tests.integration.record_helpers import q, run_cli

SOURCE = Path(__file__).resolve().parents[1] / "cuda" / "cupti_buffer.c"


def test_without_a_gpu_record_real_is_one_line_and_fails(tmp_path: Path) -> None:
    if gpu_status() is None:
        pytest.skip("this machine has an NVIDIA GPU: the no-GPU error path cannot be shown")
    out = tmp_path / "real.duckdb"
    proc = run_cli("record", "--real", "-o", str(out), "--example")
    assert proc.returncode == 6
    assert proc.stderr.count("\n") == 1
    assert "record --real needs an NVIDIA GPU" in proc.stderr and "libcuda" in proc.stderr
    assert not out.exists()


@pytest.fixture(scope="module")
def activity_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = collector_status()
    if reason is not None:
        pytest.skip(f"the CUPTI collector cannot be built here: {reason}")
    collector = ensure_collector()
    paths = find_cupti()
    assert paths is not None
    base = tmp_path_factory.mktemp("cupti")
    exe = base / "cupti_buffer"
    subprocess.run(
        [
            compiler(), "-O1", "-std=gnu11", *(f"-I{d}" for d in paths.include_dirs),
            "-o", str(exe), str(SOURCE), str(collector),
            f"-Wl,-rpath,{collector.parent}", f"-Wl,-rpath,{paths.lib.parent}",
        ],
        check=True, capture_output=True,
    )  # fmt: skip
    out = base / "measured-4242.bin"
    proc = subprocess.run([str(exe), str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "records=6"
    return out


def test_cupti_records_become_measured_rows(tmp_path: Path, activity_file: Path) -> None:
    out = tmp_path / "real.duckdb"
    writer = TraceWriter(out, RunInfo(source="real", argv=["prog"], device="h100-sxm"))
    trace = write_measured_trace(
        [activity_file], writer, wall_ns=1, exit_status=0, gpu="NVIDIA H100 80GB HBM3",
        model=catalog_id("NVIDIA H100 80GB HBM3", "unknown"),
    )  # fmt: skip
    assert (trace.kernels, trace.syncs) == (1, 1)
    call, sync_call = q(out, "SELECT call_id, name, enter_ns, exit_ns FROM api_calls ORDER BY seq")
    assert call[1:] == ("cudaLaunchKernel_v7000", 100, 3100)  # t0 = 1,000,000 ns
    assert sync_call[1:] == ("cudaStreamSynchronize_v3020", 18050, 58300)
    kernel = q(
        out,
        """SELECT call_id, name, launch_ns, start_ns, end_ns, grid_x, grid_y, block_x,
                  shared_mem, registers, correlation, duration_source, model
           FROM kernels LEFT JOIN kernel_features USING (kernel_id)""",
    )
    assert kernel == [
        (
            call[0],
            "vector_add(float const*, float const*, float*, int)",
            100, 5000, 17500, 120, 2, 256, 4096, 40, 11, "measured", "measured",
        )
    ]  # fmt: skip
    assert q(out, "SELECT kind, bytes, start_ns, end_ns, duration_source FROM copies") == [
        ("DtoH", 1 << 20, 18000, 58000, "measured")
    ]
    assert q(out, "SELECT bytes, value, start_ns, end_ns FROM memsets") == [
        (4096, 0xAB, 60000, 61500)
    ]
    assert q(out, "SELECT call_id, kind, target, blocked_ns, resumed_ns FROM syncs") == [
        (sync_call[0], "stream", "stream 0", 18100, 58200)
    ]
    assert q(out, "SELECT count(DISTINCT stream_id) FROM streams") == [(2,)]
    # one process per collector file (its header names the pid), one thread per OS thread
    assert q(out, "SELECT count(*), min(tid) FROM threads JOIN processes USING (pid)") == [(1, 77)]
    assert q(out, "SELECT source FROM run") == [("real",)]
    assert q(out, "SELECT name, model FROM devices") == [("NVIDIA H100 80GB HBM3", "h100-sxm")]
