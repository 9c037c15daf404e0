"""The stream side of a re-simulation (`replay/resim.py`): ops in stream order, the
cross-stream dependencies read off the recording, and the lazy advance of every stream.

A stream is advanced up to an op only when something needs that op's end (a sync, another
stream's op, a barrier), in runs of ops with no dependency of their own: one numpy pass per
long run (`end_i = max(ready_i, end_i-1) + d_i` by prefix sums), op by op for short ones.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from revati.replay.resim import DeviceOps

NEVER = np.int64(-(1 << 62))  # "no constraint" in a max
SHORT_RUN = 12  # runs up to this many ops are placed one by one (cheaper than numpy calls)


def group_ranges(keys: np.ndarray) -> list[tuple[int, int, int]]:
    """(key, first, end) of each run of equal values in sorted `keys`; [] when empty."""
    if not len(keys):
        return []
    uniq, first = np.unique(keys, return_index=True)
    return list(zip(uniq.tolist(), first.tolist(), [*first[1:].tolist(), len(keys)], strict=True))


class EndIndex:
    """Ops sorted by (process, end): which op of a process ended at a given time."""

    def __init__(self, pid: np.ndarray, stream: np.ndarray, end: np.ndarray) -> None:
        self.order = np.lexsort((end, pid))
        self.stream = stream
        self.end = end[self.order]
        self.ranges = group_ranges(pid[self.order])

    def find(self, want: np.ndarray, want_pid: np.ndarray, not_stream: np.ndarray) -> np.ndarray:
        """For each query: an op of process want_pid, on a stream other than not_stream,
        ending exactly at `want` (-1 if none)."""
        out = np.full(len(want), -1, dtype=np.int64)
        for p, a, b in self.ranges:
            q = np.flatnonzero(want_pid == p)
            if not len(q):
                continue
            ends = self.end[a:b]
            hi = np.searchsorted(ends, want[q], side="right") - 1
            lo = np.searchsorted(ends, want[q], side="left")
            for pick in (hi, lo):
                at = np.clip(pick, 0, b - a - 1)
                cand = self.order[a + at]
                ok = (pick >= lo) & (pick >= 0) & (pick < b - a) & (ends[at] == want[q])
                ok &= self.stream[cand] != not_stream[q]
                take = ok & (out[q] < 0)
                out[q[take]] = cand[take]
        return out


class StreamAdvance:
    """Ops in stream order and the lazy, run-by-run advance of every stream."""

    def __init__(
        self,
        ops: DeviceOps,
        duration: np.ndarray,
        barrier_duration: np.ndarray,
        latency_orig: int,
        latency_new: int,
        delta: np.ndarray,
        gov: np.ndarray,
    ) -> None:
        n = len(ops.start)
        self.order = np.lexsort((np.arange(n), ops.end, ops.start, ops.stream))
        o = self.order
        self.stream = ops.stream[o]
        self.launch = ops.launch[o]
        self.dur = np.maximum(duration[o], 0)
        self.gov = gov[o]
        self.delta = delta  # per sync, filled as syncs are visited
        self.barrier = ops.barrier[o]
        self.barrier_duration = barrier_duration
        self.pos_of = np.empty(n, dtype=np.int64)
        self.pos_of[o] = np.arange(n)
        ranges = group_ranges(self.stream)
        first = np.array([a for _, a, _ in ranges], dtype=np.int64)
        self.first = {s: a for s, a, _ in ranges}
        self.last = {s: b - 1 for s, _, b in ranges}
        start, end = ops.start[o], ops.end[o]
        self.pid = ops.pid[o]
        self._read_dependencies(start, end, first, latency_orig, latency_new)
        special = (self.dep >= 0) | (self.barrier >= 0) | (self.overlap > 0)
        self.specials = {
            s: (np.flatnonzero(special[a : self.last[s] + 1]) + a).tolist()
            for s, a in self.first.items()
        }
        self._lists_made = False
        self.orig_end = end
        self.new_start = start.copy()
        self.new_end = end.copy()
        self.ptr = dict(self.first)
        self.tail = {s: int(NEVER) for s in self.first}
        self.busy: set[int] = set()
        self.arrived = bytearray(n)
        self.participants: dict[int, list[int]] = {}
        for p in np.flatnonzero(self.barrier >= 0):
            self.participants.setdefault(int(self.barrier[p]), []).append(int(p))
        self.release: dict[int, int] = {}  # barrier -> new release
        self.barrier_end: dict[int, int] = {}

    def _read_dependencies(
        self,
        start: np.ndarray,
        end: np.ndarray,
        first: np.ndarray,
        latency_orig: int,
        latency_new: int,
    ) -> None:
        """Why each op started when it did: its stream (minus any recorded overlap), an op of
        another stream that ended exactly then, or its launch (`lag` after it)."""
        prev_end = np.concatenate([[NEVER], end[:-1]])
        prev_end[first] = NEVER
        self.overlap = np.maximum(prev_end - start, 0)
        stream_ready = prev_end - self.overlap
        self.ends = EndIndex(self.pid, self.stream, end)  # in stream order
        late = np.flatnonzero(start > stream_ready)
        self.dep = np.full(len(start), -1, dtype=np.int64)
        self.dep[late] = self.ends.find(start[late], self.pid[late], self.stream[late])
        dep_end = np.where(self.dep >= 0, end[np.maximum(self.dep, 0)], NEVER)
        host_bound = start > np.maximum(stream_ready, dep_end)
        gap = start - self.launch
        self.lag = (
            latency_new - latency_orig + np.where(host_bound, gap, np.minimum(latency_orig, gap))
        )

    def last_launched(self, pid: int, t: int) -> list[int]:
        """Per stream of process pid: the position of its last op launched at or before t."""
        out = []
        for s, a in self.first.items():
            if self.pid[a] != pid:
                continue
            k = int(np.searchsorted(self.launch[a : self.last[s] + 1], t, side="right")) - 1
            if k >= 0:
                out.append(a + k)
        return out

    def _ready(self, a: int, b: int) -> np.ndarray:
        return self.launch[a:b] + self.delta[self.gov[a:b]] + self.lag[a:b]

    def _make_lists(self) -> None:
        """The columns as lists, for the op-by-op paths (numpy scalars cost ~10x more); made
        on first need, since a trace of long runs never needs them."""
        self.l_stream, self.l_gov, self.l_launch = (
            self.stream.tolist(),
            self.gov.tolist(),
            self.launch.tolist(),
        )
        self.l_lag, self.l_dur, self.l_dep = self.lag.tolist(), self.dur.tolist(), self.dep.tolist()
        self.l_overlap, self.l_barrier = self.overlap.tolist(), self.barrier.tolist()
        self._lists_made = True

    def _ready_one(self, p: int) -> int:
        return self.l_launch[p] + int(self.delta[self.l_gov[p]]) + self.l_lag[p]

    def _run(self, s: int, a: int, b: int) -> None:
        """Plain ops [a, b) of stream s: one by one if few, else in one vectorised step."""
        if b - a <= SHORT_RUN:
            if not self._lists_made:
                self._make_lists()
            tail = self.tail[s]
            for p in range(a, b):
                start = max(self._ready_one(p), tail)
                tail = start + self.l_dur[p]
                self.new_start[p], self.new_end[p] = start, tail
            self.tail[s], self.ptr[s] = tail, b
            return
        d = self.dur[a:b]
        csum = np.cumsum(d)
        term = self._ready(a, b) - (csum - d)
        end = csum + np.maximum(np.maximum.accumulate(term), self.tail[s])
        self.new_end[a:b] = end
        self.new_start[a:b] = end - d
        self.tail[s] = int(end[-1])
        self.ptr[s] = b

    def end_of(self, p: int) -> int:
        """New end of the op at stream position p, advancing its stream as needed."""
        s = int(self.stream[p])
        if self.ptr[s] <= p:
            self.advance(s, p)
        return int(self.new_end[p])

    def advance(self, s: int, upto: int) -> None:
        """Place the ops of stream s up to position `upto` (inclusive)."""
        if s in self.busy:
            return
        self.busy.add(s)
        try:
            specials = self.specials[s]
            while self.ptr[s] <= upto:
                a = self.ptr[s]
                k = bisect_left(specials, a)
                nxt = specials[k] if k < len(specials) else upto + 1
                if nxt > a:
                    self._run(s, a, min(nxt, upto + 1))
                    continue
                if not self._special(s, a):
                    return
        finally:
            self.busy.discard(s)

    def _special(self, s: int, p: int) -> bool:
        """An op with a dependency, a collective or an overlap; False if it cannot be placed."""
        if not self._lists_made:
            self._make_lists()
        if not self.arrived[p]:
            ready = self._ready_one(p)
            dep = self.l_dep[p]
            if dep >= 0:
                ready = max(ready, self.end_of(dep))
            start = max(ready, self.tail[s] - self.l_overlap[p])
            self.new_start[p] = start
            self.arrived[p] = 1
            if self.l_barrier[p] < 0:
                end = start + self.l_dur[p]
                self.new_end[p] = end
                self.tail[s] = end
                self.ptr[s] = p + 1
                return True
        return self._collective(self.l_barrier[p])

    def _collective(self, b: int) -> bool:
        parts = self.participants[b]
        for q in parts:
            if not self.arrived[q]:
                self.advance(self.l_stream[q], q)
        if b in self.barrier_end:
            return True
        if not all(self.arrived[q] for q in parts):
            return False
        release = max(int(self.new_start[q]) for q in parts)
        end = release + int(self.barrier_duration[b])
        self.release[b], self.barrier_end[b] = release, end
        for q in parts:
            qs = self.l_stream[q]
            self.new_end[q] = end
            self.tail[qs] = end
            self.ptr[qs] = q + 1
        return True
