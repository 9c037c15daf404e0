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


def test_clock_samples_map_virtual_time_to_wall_time(tmp_path: Path, cpu_burn: Path) -> None:
    """With the discount the clock flows slower than wall time: `clock_samples` (every 50 ms and
    at the end) say when it read what, so a virtual time maps to the wall time it was reached."""
    _, _, trace = burn(tmp_path, cpu_burn)
    samples = q(trace, "SELECT wall_ns, virtual_ns, dilation, frozen FROM clock_samples")
    ((run_wall, run_virtual),) = q(  # wall time as `jumps` count it: from the program's spawn
        trace, "SELECT config.program_wall_ns::BIGINT, virtual_end_ns FROM run"
    )
    assert 0.5 * run_wall / 50e6 < len(samples) < 2 * run_wall / 50e6 + 2, len(samples)
    walls = [s[0] for s in samples]
    assert walls == sorted(walls) and abs(walls[-1] - run_wall) < 100e6  # the last: at the end
    assert samples[-1][1] <= run_virtual
    assert max(s[2] for s in samples) > 1.2  # threads waited for a CPU: host time slowed
    jumps = q(trace, "SELECT wall_ns, to_ns - from_ns FROM jumps")
    for (w0, v0, _, _), (w1, v1, _, _) in zip(samples, samples[1:], strict=False):
        jumped = sum(d for w, d in jumps if w0 <= w <= w1)
        assert 0 <= v1 - v0 <= (w1 - w0) + jumped + 1_000_000, (w0, v0, w1, v1, jumped)
