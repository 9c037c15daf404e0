"""Host time on a busy machine: threads that burn the same CPU work at once, twice as many as
the machine has cores, recorded with `--cpu-wait count` (host time at wall speed: each waits
for a core half the time, so the whole takes about twice one thread's CPU time) and with the
default `--cpu-wait discount` (the clock slowed by the share of their demand that waited: about
one thread's CPU time, what a machine with a core per thread takes)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.record_helpers import REPO, q, run_cli

SOURCE = REPO / "tests" / "cuda" / "cpu_burn.c"
ITERATIONS = "300000000"  # ~0.5 s of CPU per thread on this machine


@pytest.fixture(scope="module")
def cpu_burn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    program = tmp_path_factory.mktemp("cpu_burn") / "cpu_burn"
    subprocess.run(
        ["gcc", "-O1", "-Wall", str(SOURCE), "-o", str(program), "-lpthread"], check=True
    )
    return program


def burn(tmp_path: Path, program: Path, *options: str) -> tuple[float, float, Path]:
    """(virtual seconds the burn took, one thread's CPU seconds, the trace)."""
    out = tmp_path / "t.duckdb"
    threads = str(2 * (os.cpu_count() or 1))
    proc = run_cli(
        "record", "--quiet", *options, "-o", str(out), "--", str(program), threads, ITERATIONS,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    v = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return float(v["total_s"]), float(v["thread_s"]), out


def test_counted_cpu_waits_stretch_host_time(tmp_path: Path, cpu_burn: Path) -> None:
    total, thread, trace = burn(tmp_path, cpu_burn, "--cpu-wait", "count")
    assert total > 1.5 * thread  # two threads per core: each ran about half the time
    config = q(trace, "SELECT config.cpu_wait, config.cpu_wait_discount_ns::BIGINT FROM run")[0]
    assert config == ('"count"', 0)


def test_discounted_cpu_waits_leave_host_time_at_its_cpu_time(
    tmp_path: Path, cpu_burn: Path
) -> None:
    total, thread, trace = burn(tmp_path, cpu_burn)
    assert 0.8 * thread < total < 1.3 * thread
    waited, discounted, flowed = q(
        trace,
        "SELECT config.cpu_wait_ns::BIGINT, config.cpu_wait_discount_ns::BIGINT, "
        "config.unfrozen_wall_ns::BIGINT FROM run",
    )[0]
    assert waited > 0 and 0.3 * flowed < discounted < flowed


def test_info_says_how_long_threads_waited_and_what_was_discounted(
    tmp_path: Path, cpu_burn: Path
) -> None:
    _, _, trace = burn(tmp_path, cpu_burn)
    proc = run_cli("info", str(trace))
    assert proc.returncode == 0, proc.stderr
    (clock,) = [line for line in proc.stdout.splitlines() if line.startswith("clock")]
    assert "for a CPU" in clock and "of host time discounted" in clock
