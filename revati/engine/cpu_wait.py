"""How long participant threads waited for a CPU: the part of host time a busy machine adds.

Host work counts in virtual time at wall speed (docs/time-model.md). A thread that is ready to
run but waits for a core (more runnable threads than cores: the program's own, revati's, anyone
else's) stretches its host phases, and with them virtual time. Linux keeps that wait per thread
(`run_delay`, the second field of /proc/PID/task/TID/schedstat, beside the time it ran, the
first); the coordinator samples both over the participant threads every few tens of
milliseconds: the summed wait says in the trace how much host time a busier machine added, and
the share of the threads' CPU demand (ran + waited) that waited slows the clock for the next
interval (`--cpu-wait discount`), so that host phases count about what they take on a machine
with a core for every thread.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

# Waiting for a CPU longer than this share of the run's wall time is worth a warning.
WARN_SHARE = 0.01


# A sample whose threads asked for less CPU than this says too little about the share.
MIN_DEMAND_NS = 1_000_000


# schedstat files kept open between samples (a read is ~4x cheaper than an open and a read);
# the threads beyond this many are opened at each sample, leaving fds for the run's connections.
MAX_OPEN_FILES = 256


class _SchedstatFiles:
    """Open schedstat files of participant threads, by tid."""

    def __init__(self) -> None:
        self._fds: dict[int, int] = {}

    def read(self, pid: int) -> dict[int, tuple[int, int]]:
        """(ran, waited) ns of each thread of `pid` ({} if it is gone or schedstat is missing)."""
        stats: dict[int, tuple[int, int]] = {}
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except (OSError, ValueError):
            return stats
        for tid in tids:
            try:
                fields = self._read(pid, tid).split()
                stats[tid] = (int(fields[0]), int(fields[1]))
            except (OSError, IndexError, ValueError):
                self._forget(tid)
        return stats

    def _read(self, pid: int, tid: int) -> bytes:
        fd = self._fds.get(tid)
        if fd is not None:
            return os.pread(fd, 128, 0)
        path = f"/proc/{pid}/task/{tid}/schedstat"
        if len(self._fds) >= MAX_OPEN_FILES:
            with open(path, "rb") as f:
                return f.read()
        fd = self._fds[tid] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        return os.pread(fd, 128, 0)

    def keep_only(self, tids: set[int]) -> None:
        """Close the files of threads that are gone (not in `tids`)."""
        for tid in [t for t in self._fds if t not in tids]:
            self._forget(tid)

    def _forget(self, tid: int) -> None:
        fd = self._fds.pop(tid, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        for tid in list(self._fds):
            self._forget(tid)


class CpuWait:
    """The summed growth of participant threads' run_delay between samples, and the share of
    their CPU demand that waited in the last one."""

    def __init__(self) -> None:
        self.total_ns = 0
        self._last: dict[int, tuple[int, int]] = {}  # by tid
        self._wake_wait_ns = 0
        self._files = _SchedstatFiles()

    def sample(self, pids: Iterable[int], wake_wait_ns: int = 0) -> float | None:
        """Add what each thread of `pids` waited since the last sample (a new thread: since it
        started, which is when its schedstat began counting); return the share of the threads'
        CPU demand since then that waited, or None if they asked for too little to tell.
        `wake_wait_ns` (the page's running sum) is the part of the waits that woken threads
        spent before they ran: the emulator's, left out of the share."""
        woken = max(0, wake_wait_ns - self._wake_wait_ns)
        self._wake_wait_ns = wake_wait_ns
        waited = demand = 0
        seen: set[int] = set()
        for pid in set(pids):
            for tid, (ran, delay) in self._files.read(pid).items():
                last_ran, last_delay = self._last.get(tid, (0, 0))
                w = max(0, delay - last_delay)
                waited += w
                demand += w + max(0, ran - last_ran)
                self._last[tid] = (ran, delay)
                seen.add(tid)
        self._files.keep_only(seen)
        self._last = {tid: self._last[tid] for tid in seen}  # ended threads' figures go
        self.total_ns += waited
        woken = min(woken, waited)
        waited, demand = waited - woken, demand - woken
        return waited / demand if demand >= MIN_DEMAND_NS else None

    def close(self) -> None:
        self._files.close()

    def warning(self, wall_ns: int, discounted_ns: int | None = None) -> str | None:
        """A line for the user if the threads waited long enough to inflate virtual times
        (`discounted_ns`: what --cpu-wait discount took off virtual host time; None: off)."""
        if wall_ns <= 0 or self.total_ns <= WARN_SHARE * wall_ns:
            return None
        waited = (
            f"participant threads waited {self.total_ns / 1e9:.3g} s for a CPU "
            f"({self.total_ns / wall_ns:.0%} of the run's wall time; {os.cpu_count()} CPUs)"
        )
        if discounted_ns is None:
            return (
                f"{waited}: their host phases took that much longer than on an idle machine, "
                "and virtual host time with them; run on a quieter machine or with more cores"
            )
        return (
            f"{waited}; the clock discounted {discounted_ns / 1e9:.3g} s of host time for it "
            "(--cpu-wait discount), an estimate: a quieter machine or more cores measure host "
            "phases better"
        )
