"""A trace's requests for stepping: their moments (arrival, first token, end) in time order,
the packing of their bars into lanes, and what ran on the devices while one was in flight."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from revati.recorder.reader import TraceReader

MOMENT_NAMES = ("arrives", "first token", "ends")


@dataclass(frozen=True)
class RequestBar:
    request_id: int
    arrival_ns: int
    first_token_ns: int | None
    end_ns: int
    status: str


@dataclass(frozen=True)
class InFlight:
    """What ran while a request was in flight: device ops and syncs overlapping it."""

    kernels: int
    syncs: int
    first_kernel_ns: int | None


class Requests:
    """Every request of a trace (none for a trace without requests)."""

    def __init__(self, reader: TraceReader) -> None:
        self.reader = reader
        rows = reader.sql(
            "SELECT request_id, arrival_ns, first_token_ns, end_ns, status FROM requests "
            "ORDER BY arrival_ns, request_id"
        )
        self.bars = [RequestBar(*r) for r in rows]
        moments = [
            (t, b.request_id, what)
            for b in self.bars
            for what, t in enumerate((b.arrival_ns, b.first_token_ns, b.end_ns))
            if t is not None
        ]
        moments.sort()
        self.moment_ns = np.array([m[0] for m in moments], dtype=np.int64)
        self.moments = moments

    def __len__(self) -> int:
        return len(self.bars)

    def lanes(self) -> list[list[RequestBar]]:
        """Bars packed greedily into as few lanes as never overlap (first fit by arrival)."""
        lanes: list[list[RequestBar]] = []
        for bar in self.bars:
            lane = next((lane for lane in lanes if lane[-1].end_ns < bar.arrival_ns), None)
            if lane is None:
                lanes.append([bar])
            else:
                lane.append(bar)
        return lanes

    def step(
        self, t_ns: int, forward: bool, current: int | None = None
    ) -> tuple[int, int, int, str] | None:
        """The next (or previous) moment after (before) t_ns, or after the moment `current`
        when the cursor still stands on it (moments can share a time): (index, time,
        request, what)."""
        if (
            current is not None
            and 0 <= current < len(self.moments)
            and (self.moment_ns[current] == t_ns)
        ):
            i = current + 1 if forward else current - 1
        elif forward:
            i = int(np.searchsorted(self.moment_ns, t_ns, side="right"))
        else:
            i = int(np.searchsorted(self.moment_ns, t_ns, side="left")) - 1
        if not 0 <= i < len(self.moments):
            return None
        t, request_id, what = self.moments[i]
        return i, t, request_id, MOMENT_NAMES[what]

    def bar(self, request_id: int) -> RequestBar:
        return next(b for b in self.bars if b.request_id == request_id)

    def in_flight(self, request_id: int) -> InFlight:
        b = self.bar(request_id)
        kernels, first = self.reader.sql(
            "SELECT count(*), min(start_ns) FROM kernels WHERE end_ns > ? AND start_ns < ?",
            [b.arrival_ns, b.end_ns],
        )[0]
        (syncs,) = self.reader.sql(
            "SELECT count(*) FROM syncs WHERE resumed_ns > ? AND blocked_ns < ?",
            [b.arrival_ns, b.end_ns],
        )[0]
        return InFlight(int(kernels), int(syncs), first)
