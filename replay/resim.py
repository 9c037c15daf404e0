"""Re-simulation of a recorded schedule with other durations (DESIGN §8, invariant 5).

Input: every device op (kernel, copy, memset) with its stream, launching thread, launch, start
and end; every sync with its thread, blocked, deadline and resumed times; every barrier. What
is kept from the recording: each thread's host intervals between its calls, and each op's
reason to start when it did. What is re-run: the stream order, the cross-stream dependencies,
the sync deadlines and the barriers, with the new durations.

An op starts at `max(launch' + host_lag, end' of the previous op on its stream, end' of the op
it waited for on another stream)`. The trace does not name event edges, so a dependency on
another stream is read off the recording: an op that started after its stream was free and
exactly when another op of its process ended waited for that op (an event wait, the legacy
default stream, a graph edge). `host_lag` is the launch latency, or, for an op that started
later than everything it is known to wait for, the whole recorded gap from its launch.
A sync resumes at `max(blocked', deadline') + slack`, where the deadline is the end of the op(s)
it waited for and slack is what the recording spent past `max(blocked, deadline)`; a thread's
later calls shift by how much later it resumed. A collective on each rank arrives when its
stream reaches it and ends at `max(arrivals') + duration` on every rank.

With the recorded durations every time comes out exactly as recorded: each formula reduces to
the recorded value by construction. Streams are advanced lazily, in runs of ops with no
dependency of their own, by the max-plus prefix identity `end_i = max(ready_i, end_i-1) + d_i`
(one numpy pass per run); syncs are visited in recorded order.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

import numpy as np

NEVER = np.int64(-(1 << 62))  # "no constraint" in a max
SHORT_RUN = 12  # runs up to this many ops are placed one by one (cheaper than numpy calls)


@dataclass
class DeviceOps:
    """Device ops in any order; all arrays int64 of one length. thread/barrier: -1 if none."""

    stream: np.ndarray
    pid: np.ndarray
    thread: np.ndarray
    launch: np.ndarray
    start: np.ndarray
    end: np.ndarray
    barrier: np.ndarray  # index into Barriers for a collective's kernel, else -1


@dataclass
class Syncs:
    """Blocking calls; deadline -1 = none (an untimed wait). target_op/copy_op: -1 if none."""

    thread: np.ndarray
    pid: np.ndarray
    blocked: np.ndarray
    deadline: np.ndarray
    resumed: np.ndarray
    target_op: np.ndarray  # last op of the awaited stream submitted before the sync
    copy_op: np.ndarray  # the op of a blocking copy


@dataclass
class Barriers:
    release: np.ndarray
    end: np.ndarray


@dataclass
class Resimulated:
    """New times: per op (input order), per sync (input order), per barrier."""

    start: np.ndarray
    end: np.ndarray
    blocked: np.ndarray
    deadline: np.ndarray  # -1 where the recording had none
    resumed: np.ndarray
    release: np.ndarray
    barrier_end: np.ndarray
    host_shift: HostShift


class HostShift:
    """How far each thread's host time moved: a step function of recorded time per thread,
    changing at each of its syncs' resume."""

    def __init__(self, thread: np.ndarray, resumed: np.ndarray, delta: np.ndarray) -> None:
        order = np.lexsort((resumed, thread))
        self._thread = thread[order]
        self._resumed = resumed[order]
        self._delta = delta[order]
        threads, first = np.unique(self._thread, return_index=True)
        self._ranges = {
            int(t): (int(a), int(b))
            for t, a, b in zip(threads, first, [*first[1:], len(order)], strict=True)
        }

    def at(self, thread: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Shift of host time t on each thread (0 before its first sync, or for thread -1)."""
        out = np.zeros(len(t), dtype=np.int64)
        for th, (a, b) in self._ranges.items():
            mask = thread == th
            if not mask.any():
                continue
            k = np.searchsorted(self._resumed[a:b], t[mask], side="right") - 1
            out[mask] = np.where(k >= 0, self._delta[a:b][np.maximum(k, 0)], 0)
        return out


def _governing_sync(
    sync_thread: np.ndarray, sync_resumed: np.ndarray, thread: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """For each (thread, t): index of the thread's last sync resumed at or before t, else -1."""
    order = np.lexsort((sync_resumed, sync_thread))
    st, sr = sync_thread[order], sync_resumed[order]
    out = np.full(len(t), -1, dtype=np.int64)
    threads, first = np.unique(st, return_index=True)
    for th, a, b in zip(threads, first, [*first[1:], len(order)], strict=True):
        mask = thread == th
        if not mask.any():
            continue
        k = np.searchsorted(sr[a:b], t[mask], side="right") - 1
        out[mask] = np.where(k >= 0, order[a + np.maximum(k, 0)], -1)
    return out


class _EndIndex:
    """Ops sorted by (process, end): which op of a process ended at a given time."""

    def __init__(self, pid: np.ndarray, stream: np.ndarray, end: np.ndarray) -> None:
        self.order = np.lexsort((end, pid))
        self.stream = stream
        self.end = end[self.order]
        pids, first = np.unique(pid[self.order], return_index=True)
        bounds = [*first[1:].tolist(), len(self.order)]
        self.ranges = list(zip(pids.tolist(), first.tolist(), bounds, strict=True))

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


class _Streams:
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
        streams, first = np.unique(self.stream, return_index=True)
        bounds = [*first[1:], n]
        self.first = {int(s): int(a) for s, a in zip(streams, first, strict=True)}
        self.last = {int(s): int(b) - 1 for s, b in zip(streams, bounds, strict=True)}
        start, end = ops.start[o], ops.end[o]
        prev_end = np.concatenate([[NEVER], end[:-1]])
        prev_end[first] = NEVER
        self.overlap = np.maximum(prev_end - start, 0)
        stream_ready = prev_end - self.overlap
        self.pid = ops.pid[o]
        self.ends = _EndIndex(self.pid, self.stream, end)  # in stream order
        late = np.flatnonzero(start > stream_ready)
        self.dep = np.full(n, -1, dtype=np.int64)
        self.dep[late] = self.ends.find(start[late], self.pid[late], self.stream[late])
        dep_end = np.where(self.dep >= 0, end[np.maximum(self.dep, 0)], NEVER)
        host_bound = start > np.maximum(stream_ready, dep_end)
        gap = start - self.launch
        self.lag = (
            latency_new - latency_orig + np.where(host_bound, gap, np.minimum(latency_orig, gap))
        )
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

    def _ready(self, a: int, b: int) -> np.ndarray:
        g = self.gov[a:b]
        shift = np.where(g >= 0, self.delta[np.maximum(g, 0)], 0)
        return self.launch[a:b] + shift + self.lag[a:b]

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
        g = self.l_gov[p]
        return self.l_launch[p] + (int(self.delta[g]) if g >= 0 else 0) + self.l_lag[p]

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


def resimulate(
    ops: DeviceOps,
    syncs: Syncs,
    barriers: Barriers,
    duration: np.ndarray,
    *,
    barrier_duration: np.ndarray | None = None,
    latency_orig: int = 0,
    latency_new: int | None = None,
) -> Resimulated:
    """New times of every op, sync and barrier when op i takes duration[i] (see module doc).
    `barrier_duration` defaults to the recorded `end - release`."""
    if barrier_duration is None:
        barrier_duration = barriers.end - barriers.release
    latency_new = latency_orig if latency_new is None else latency_new
    ns = len(syncs.resumed)
    delta = np.zeros(ns, dtype=np.int64)
    gov_op = _governing_sync(syncs.thread, syncs.resumed, ops.thread, ops.launch)
    st = _Streams(ops, duration, barrier_duration, latency_orig, latency_new, delta, gov_op)
    new_blocked, new_deadline, new_resumed = _visit_syncs(st, syncs, delta)
    for s in list(st.first):
        st.advance(s, st.last[s])
    start = np.empty_like(ops.start)
    end = np.empty_like(ops.end)
    start[st.order], end[st.order] = st.new_start, st.new_end
    release = barriers.release.copy()
    bend = barriers.end.copy()
    for b, r in st.release.items():
        release[b], bend[b] = r, st.barrier_end[b]
    return Resimulated(
        start,
        end,
        new_blocked,
        new_deadline,
        new_resumed,
        release,
        bend,
        HostShift(syncs.thread, syncs.resumed, delta),
    )


def _deadline(b0: int, d0: int, b: int, ends: list[int], orig: list[int]) -> int:
    """A sync's new deadline: the new end of what it awaited where the recorded deadline was
    that end, `max(blocked, that)` where it was the blocking time, else moved with the thread."""
    if ends and max(orig) == d0:
        return max(ends)
    if d0 == b0:
        return max([b, *ends])
    return d0 + b - b0


def _visit_syncs(
    st: _Streams, syncs: Syncs, delta: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every sync in recorded order of resume: its new blocked, deadline and resumed times.
    The deadline moves with the latest op it awaited (or with the thread, awaiting none)."""
    ns = len(syncs.resumed)
    order = np.lexsort((np.arange(ns), syncs.blocked, syncs.resumed))
    by_thread = np.lexsort((np.arange(ns), syncs.blocked, syncs.resumed, syncs.thread))
    prev = np.full(ns, -1, dtype=np.int64)
    same = syncs.thread[by_thread][1:] == syncs.thread[by_thread][:-1]
    prev[by_thread[1:][same]] = by_thread[:-1][same]
    has_deadline = syncs.deadline >= 0
    want = np.where(has_deadline & (syncs.deadline > syncs.blocked), syncs.deadline, NEVER)
    no_stream = np.full(ns, -(1 << 40), dtype=np.int64)
    match = st.ends.find(want, syncs.pid, no_stream)
    target = np.where(syncs.target_op >= 0, st.pos_of[np.maximum(syncs.target_op, 0)], -1)
    copy = np.where(syncs.copy_op >= 0, st.pos_of[np.maximum(syncs.copy_op, 0)], -1)
    waits = [
        [x for x in row if x >= 0]
        for row in zip(match.tolist(), target.tolist(), copy.tolist(), strict=True)
    ]
    blocked = syncs.blocked.tolist()
    deadline = syncs.deadline.tolist()
    resumed = syncs.resumed.tolist()
    prev_l = prev.tolist()
    matched = (match >= 0).tolist()
    new_b = np.zeros(ns, dtype=np.int64)
    new_r = np.zeros(ns, dtype=np.int64)
    new_d = np.full(ns, -1, dtype=np.int64)
    orig_end = st.orig_end
    for k in order.tolist():
        b0, d0, r0 = blocked[k], deadline[k], resumed[k]
        b = b0 + (int(delta[prev_l[k]]) if prev_l[k] >= 0 else 0)
        if d0 >= 0:
            ends = [st.end_of(p) for p in waits[k]]
            orig = [int(orig_end[p]) for p in waits[k]]
            if not matched[k] and d0 > b0:
                ends.append(b + d0 - b0)
                orig.append(d0)
            r = max([b, *ends]) + r0 - max(b0, d0)
            new_d[k] = _deadline(b0, d0, b, ends, orig)
        else:
            r = b + r0 - b0
        new_b[k], new_r[k] = b, r
        delta[k] = r - r0
    return new_b, new_d, new_r


__all__ = ["Barriers", "DeviceOps", "HostShift", "Resimulated", "Syncs", "resimulate"]
