"""How long participant threads waited for a CPU: the part of host time a busy machine adds.

Host work counts in virtual time at wall speed (docs/time-model.md). A thread that is ready to
run but waits for a core (more runnable threads than cores: the program's own, revati's, anyone
else's) stretches its host phases, and with them virtual time. Linux keeps that wait per thread
(`run_delay`, the second field of /proc/PID/task/TID/schedstat); the coordinator sums its growth
over the participant threads, so a trace says how much of its host time a busier machine added.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

# Waiting for a CPU longer than this share of the run's wall time is worth a warning.
WARN_SHARE = 0.01


def _run_delays(pid: int) -> dict[int, int]:
    """run_delay (ns) of each thread of `pid` ({} if it is gone or schedstat is missing)."""
    delays: dict[int, int] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return delays
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                fields = f.read().split()
            delays[int(tid)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    return delays


class CpuWait:
    """The summed growth of participant threads' run_delay between samples."""

    def __init__(self) -> None:
        self.total_ns = 0
        self._last: dict[int, int] = {}  # by tid

    def sample(self, pids: Iterable[int]) -> None:
        """Add what each thread of `pids` waited since the last sample (a new thread: since it
        started, which is when its schedstat began counting)."""
        for pid in set(pids):
            for tid, delay in _run_delays(pid).items():
                self.total_ns += max(0, delay - self._last.get(tid, 0))
                self._last[tid] = delay

    def warning(self, wall_ns: int) -> str | None:
        """A line for the user if the threads waited long enough to inflate virtual times."""
        if wall_ns <= 0 or self.total_ns <= WARN_SHARE * wall_ns:
            return None
        return (
            f"participant threads waited {self.total_ns / 1e9:.3g} s for a CPU "
            f"({self.total_ns / wall_ns:.0%} of the run's wall time; {os.cpu_count()} CPUs): "
            "their host phases took that much longer than on an idle machine, and virtual "
            "host time with them; run on a quieter machine or with more cores"
        )
