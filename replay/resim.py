"""Re-simulation of a recorded schedule with other durations (docs/design.md §8, invariant 5).

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

from dataclasses import dataclass

import numpy as np
from revati.replay.stream_advance import NEVER, StreamAdvance, group_ranges


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
    device_wide: np.ndarray | None = None  # bool: waits for every stream of its process


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
        self._ranges = {t: (a, b) for t, a, b in group_ranges(self._thread)}

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
    for th, a, b in group_ranges(st):
        mask = thread == th
        if not mask.any():
            continue
        k = np.searchsorted(sr[a:b], t[mask], side="right") - 1
        out[mask] = np.where(k >= 0, order[a + np.maximum(k, 0)], -1)
    return out


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
    delta = np.zeros(ns + 1, dtype=np.int64)  # per sync; the last entry (index -1) stays 0
    gov_op = _governing_sync(syncs.thread, syncs.resumed, ops.thread, ops.launch)
    gov_op[gov_op < 0] = ns
    st = StreamAdvance(ops, duration, barrier_duration, latency_orig, latency_new, delta, gov_op)
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
        HostShift(syncs.thread, syncs.resumed, delta[:ns]),
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
    st: StreamAdvance, syncs: Syncs, delta: np.ndarray
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
    if syncs.device_wide is not None:
        for k in np.flatnonzero(syncs.device_wide).tolist():
            waits[k] += st.last_launched(int(syncs.pid[k]), int(syncs.blocked[k]))
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
