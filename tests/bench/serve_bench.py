"""What the serving benchmarks share: run `revati bench` while sampling the emulator's CPU time,
then print, for the whole run and for the load (first arrival to last end): virtual duration,
wall duration and their ratio (the speed-up), and the emulator's share of wall time: the CPU
time of the revati process (coordinator, engine, trace writer) over the run's wall time. The
wall time of a virtual instant is read from the jumps table (each jump records its wall time;
between jumps the clock runs at real speed). Also how much of the load's virtual time the
kernels took and how much the clock jumped.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.record_helpers import q

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process itself (not its children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def wall_at(trace: Path, virtual_ns: int) -> float:
    """Seconds of wall time since the start when the run's clock first read virtual_ns, between
    the two clock samples (every 50 ms) around it."""
    rows = q(trace, "SELECT wall_ns, virtual_ns FROM clock_samples ORDER BY wall_ns")
    before = (0, 0)
    for wall_ns, at_ns in rows:
        if at_ns >= virtual_ns:
            w0, v0 = before
            share = (virtual_ns - v0) / (at_ns - v0) if at_ns > v0 else 1.0
            return (w0 + share * (wall_ns - w0)) / 1e9
        before = (wall_ns, at_ns)
    return before[0] / 1e9


def bench(bench_args: list[str], env: dict[str, str]) -> tuple[dict[str, float], float, float]:
    """Run `revati bench --json ARGS`: (its figures, wall seconds, the revati process's CPU
    seconds). Fails with its stderr if it fails."""
    argv = [sys.executable, "-m", "revati.cli", "bench", "--json", *bench_args]
    started = time.monotonic()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    cpu = 0.0
    while proc.poll() is None:
        with contextlib.suppress(OSError, IndexError):  # it may end between poll and read
            cpu = cpu_seconds(proc.pid)
        time.sleep(0.5)
    wall = time.monotonic() - started
    stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stderr[-5000:]
    return json.loads(stdout), wall, cpu


def print_measures(
    trace: Path, title: str, figures: dict[str, float], wall: float, cpu: float
) -> None:
    ((virtual_ns, run_wall_ns),) = q(trace, "SELECT virtual_end_ns, wall_ns FROM run")
    ((first, last),) = q(trace, "SELECT min(arrival_ns), max(end_ns) FROM requests")
    load_wall = wall_at(trace, last) - wall_at(trace, first)
    ((kernels,),) = q(trace, "SELECT count(*) FROM kernels")
    ((jumped,),) = q(
        trace,
        f"SELECT coalesce(sum(least(to_ns, {last}) - greatest(from_ns, {first})), 0) FROM jumps "
        f"WHERE to_ns > {first} AND from_ns < {last}",
    )
    ((device,),) = q(
        trace,
        f"SELECT coalesce(sum(least(end_ns, {last}) - greatest(start_ns, {first})), 0) "
        f"FROM kernels WHERE end_ns > {first} AND start_ns < {last}",
    )
    print(f"\n{title}, {kernels:,} kernel rows")
    print(f"run:  virtual {virtual_ns / 1e9:.1f} s, wall {run_wall_ns / 1e9:.1f} s "
          f"(revati invoked to exit: {wall:.1f} s), speed-up {virtual_ns / run_wall_ns:.2f}x")  # fmt: skip
    print(f"load: virtual {(last - first) / 1e9:.2f} s, wall {load_wall:.1f} s, "
          f"speed-up {(last - first) / 1e9 / load_wall:.2f}x")  # fmt: skip
    print(f"load: kernels ran {device / 1e9:.2f} s of device time; the clock jumped "
          f"{jumped / 1e9:.2f} s (frozen, no wall time), the rest ran at real speed")  # fmt: skip
    print(f"emulator (revati process) CPU {cpu:.1f} s = {cpu / wall:.0%} of wall; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(json.dumps({k: round(v, 2) for k, v in figures.items()}))
