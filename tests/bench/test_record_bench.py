"""Benchmarks of `revati record` (run: `pytest tests/bench/test_record_bench.py -s`).

Figures printed: shim cost per intercepted launch (real ns, measured inside the traced program
with an unwarped clock), engine cost per synchronisation round trip, and the speed-up (virtual
time / wall time) of a GPU-bound program. They assert correctness, never speed.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO, run_cli
from tests.integration.record_helpers import build_cuda

SOURCE = REPO / "tests" / "cuda" / "record_modes.cu"
pytestmark = pytest.mark.bench


@pytest.fixture(scope="module")
def modes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_cuda(tmp_path_factory.getbasetemp(), SOURCE, "-cudart", "shared")


def _record(tmp_path: Path, *cmd: str) -> tuple[dict[str, str], Path]:
    out = tmp_path / "bench.duckdb"
    proc = run_cli("record", "--quiet", "-o", str(out), "--", *cmd, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line), out


def test_shim_cost_per_launch(tmp_path: Path, modes: Path) -> None:
    v, out = _record(tmp_path, str(modes), "launchcost", "200000")
    with duckdb.connect(str(out), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM kernels").fetchone() == (int(v["launches"]) + 1,)
    print(
        f"\nshim cost per intercepted launch: {float(v['launch_median_ns']):.0f} ns, median of "
        f"{int(v['launches']) // 1000} batches of 1,000 (fastest batch "
        f"{float(v['launch_min_ns']):.0f} ns, mean over all {float(v['launch_ns']):.0f} ns; "
        "target < 100)"
    )


def test_engine_cost_per_sync(tmp_path: Path, modes: Path) -> None:
    v, out = _record(tmp_path, str(modes), "synccost", "2000")
    with duckdb.connect(str(out), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM syncs WHERE kind = 'stream'").fetchone()[0] >= 2000
    print(
        f"\nengine cost per sync (round trip to the coordinator): {float(v['sync_ns']) / 1e3:.1f} µs"
    )


def test_speedup_gpu_bound(tmp_path: Path, modes: Path) -> None:
    _, out = _record(tmp_path, str(modes), "gpubound")
    with duckdb.connect(str(out), read_only=True) as con:
        virtual_ns, wall_ns = con.execute("SELECT virtual_end_ns, wall_ns FROM run").fetchone()
    assert virtual_ns >= 60e9
    print(
        f"\nGPU-bound speed-up: virtual {virtual_ns / 1e9:.1f} s in {wall_ns / 1e9:.2f} s wall "
        f"= {virtual_ns / wall_ns:.0f}× (target > 20×)"
    )
