"""Host cost of a launch through the driver layer (run: `pytest tests/bench/test_driver_bench.py -s`).

The driver-API test program launches a cubin's kernel with cuLaunchKernel in batches of 1,000
and times them with an unwarped clock; the figure is real ns per launch, the median batch. It
asserts that every launch was recorded, never a speed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.driver_helpers import build_driver_program
from tests.integration.record_helpers import q, run_cli

pytestmark = pytest.mark.bench


def test_shim_cost_per_driver_launch(tmp_path: Path) -> None:
    exe, cubin = build_driver_program(tmp_path)
    trace = tmp_path / "bench.duckdb"
    proc = run_cli("record", "--quiet", "-o", str(trace), "--", str(exe), str(cubin),
                   "launchcost", "200000", timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    v = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert q(trace, "SELECT count(*) FROM kernels WHERE name = 'add_one'") == [
        (int(v["launches"]) + 1,)
    ]
    print(
        f"\nshim cost per cuLaunchKernel: {float(v['launch_median_ns']):.0f} ns, median of "
        f"{int(v['launches']) // 1000} batches of 1,000 (fastest batch "
        f"{float(v['launch_min_ns']):.0f} ns)"
    )
