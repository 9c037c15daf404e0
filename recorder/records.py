"""Plain records the reader returns: tracks, events, processes, barriers, kernel statistics.

They are frozen dataclasses with no behaviour beyond describing themselves, so views (CLI, TUI) and replay never touch DuckDB.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

EVENT_KINDS = ("api_call", "kernel", "copy", "memset", "sync", "jump", "barrier", "nvtx", "marker")


@dataclass(frozen=True)
class Track:
    """A host thread or a device stream: one horizontal lane of a timeline."""

    track_id: str  # "thread:<thread_id>" | "stream:<stream_id>"
    kind: str  # "thread" | "stream"
    pid: int
    rank: int | None
    ref_id: int  # thread_id or stream_id
    label: str  # "rank 0 · thread 1234 (python)" / "rank 0 · stream 7"


@dataclass(frozen=True)
class Event:
    """One event in the global total order of a trace."""

    seq: int  # position in the global order (0..event_count-1)
    kind: str  # one of EVENT_KINDS
    ref_id: int  # id in its table (call_id, kernel_id, copy_id, ...)
    track_id: str | None  # None for run-global events (jumps, barriers)
    pid: int | None
    rank: int | None
    start_ns: int
    end_ns: int  # == start_ns for instants
    name: str

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    rank: int | None
    local_rank: int | None
    world_size: int | None
    argv: list[str]
    started_ns: int | None = None
    ended_ns: int | None = None  # None: still running when the recording ended (or unknown)
    exit_code: int | None = None
    exit_signal: int | None = None
    core_dumped: bool | None = None
    ended_wall_ns: int | None = None
    running_wall_ns: int | None = None  # wall ns it kept the clock flowing (a thread ran)

    @property
    def ending(self) -> str:
        """How it ended, in words: 'exited with code 3', 'killed by SIGKILL', 'running'."""
        if self.ended_ns is None:
            return "running at the end" if self.started_ns is not None else "unknown"
        return exit_text(self.exit_code, self.exit_signal, bool(self.core_dumped))


def exit_text(code: int | None, signum: int | None, core_dumped: bool) -> str:
    """'exited with code 3', 'killed by SIGSEGV (core dumped)', 'ended' (how, unknown)."""
    if signum is not None:
        return f"killed by {signal_name(signum)}{' (core dumped)' if core_dumped else ''}"
    return f"exited with code {code}" if code is not None else "ended"


def signal_name(signum: int) -> str:
    """'SIGTERM' for 15; 'signal 77' for a number with no name."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


@dataclass(frozen=True)
class BarrierArrival:
    rank: int | None
    pid: int
    arrival_ns: int
    wait_ns: int  # release_ns - arrival_ns: how long this rank waited for the last one
    stream_id: int | None
    kernel_id: int | None


@dataclass(frozen=True)
class BarrierDetail:
    barrier_id: int
    collective: str
    communicator: str | None
    bytes: int | None
    world_size: int | None
    release_ns: int
    end_ns: int
    arrivals: list[BarrierArrival]  # sorted by arrival time
    straggler_rank: int | None  # the rank that arrived last (None if no arrivals)
    total_wait_ns: int  # sum of wait_ns over arrivals


@dataclass(frozen=True)
class KernelStat:
    name: str
    count: int
    total_ns: int
    mean_ns: float
    min_ns: int
    max_ns: int
    share: float  # total_ns / total kernel time of the trace (0..1)
