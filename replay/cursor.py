"""ReplayCursor: a debugger's position in a trace, and the state of the run at that position.

The cursor is one event of the trace's global order (`Event.seq`). It moves like rr or gdb:
one event forward or back, within one rank, to the next sync / jump / barrier, to the next
breakpoint hit (`continue`) or the previous one (`reverse_continue`), to a time or an event
number, or to a bookmark. Movement goes through the reader's indexed navigation, so a step costs
a binary search, never a scan.

`state()` reconstructs what the run looked like at the cursor from the trace alone, the same
way forward or backward: the virtual time, every host thread (running, inside which call, or
blocked and on what, with its deadline), every stream (the operation executing, how many are
queued behind it), the last clock jump and why it happened, and the barriers in progress with
the ranks that have arrived so far.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from revati.recorder.reader import BarrierDetail, Event, TraceReader, Track

from revati.errors import RevatiUsageError

# Event kinds a stream runs, and what `]`/`[`, `}`/`{` and `b`/`B` step over.
DEVICE_KINDS = ("kernel", "copy", "memset")
SYNC_KINDS = ("sync",)
JUMP_KINDS = ("jump",)
BARRIER_KINDS = ("barrier",)

# Breakpoint kinds of the command line and the event kinds each one matches.
BREAK_KINDS = {"kernel": ("kernel",), "api": ("api_call",), "copy": ("copy",), "sync": ("sync",)}


@dataclass(frozen=True)
class Breakpoint:
    """Stop `continue` at events of `kinds` whose name matches the regex `pattern`."""

    bp_id: int
    kind: str  # a key of BREAK_KINDS
    pattern: str

    @property
    def kinds(self) -> tuple[str, ...]:
        return BREAK_KINDS[self.kind]

    def describe(self) -> str:
        return f"#{self.bp_id} break {self.kind} /{self.pattern}/"


@dataclass(frozen=True)
class ThreadState:
    """A host thread at the cursor: running host code, inside an API call, or blocked."""

    track: Track
    status: str  # "running" | "in call" | "blocked" | "not started" | "ended"
    call: str | None  # the API call it is inside, if any
    waiting_on: str | None  # what a blocked thread waits for ("stream 3", "event 7", ...)
    wait_kind: str | None  # syncs.kind of the blocking period
    since_ns: int | None  # when the call / block began
    deadline_ns: int | None  # a blocked thread's deadline (None = none or infinite)
    resumed_ns: int | None = None  # when a blocked thread resumed (the end of its sync)
    ending: str | None = None  # an ended thread: how its process ended ("killed by SIGSEGV")


@dataclass(frozen=True)
class StreamState:
    """A device stream at the cursor: the operation executing and the queue behind it."""

    track: Track
    running: str | None  # name of the kernel/copy/memset executing, if any
    running_end_ns: int | None
    queued: int  # operations launched before the cursor time that have not started yet


@dataclass(frozen=True)
class JumpInfo:
    jump_id: int
    from_ns: int
    to_ns: int
    cause_kind: str | None
    cause_object: str | None
    cause_thread_id: int | None

    def describe(self) -> str:
        why = " ".join(x for x in (self.cause_kind, self.cause_object) if x) or "unknown cause"
        return f"jump #{self.jump_id} {self.from_ns} → {self.to_ns} ns ({why})"


@dataclass(frozen=True)
class CursorState:
    """The run at one event, reconstructed from the trace."""

    seq: int
    time_ns: int
    event: Event
    threads: list[ThreadState]
    streams: list[StreamState]
    last_jump: JumpInfo | None
    barriers: list[tuple[BarrierDetail, int]]  # barrier in progress, ranks arrived so far


@dataclass
class ReplayCursor:
    """A position in the global event order of one trace, with breakpoints and bookmarks."""

    reader: TraceReader
    seq: int = 0
    breakpoints: list[Breakpoint] = field(default_factory=list)
    bookmarks: dict[str, int] = field(default_factory=dict)
    _next_bp: int = 1
    _tracks: list[Track] | None = None
    _spans: dict[int, tuple[int | None, int | None, str | None]] | None = None

    def __post_init__(self) -> None:
        self.count = self.reader.event_count()
        if self.count == 0:
            raise RevatiUsageError(f"{self.reader.path}: the trace holds no events to step through")
        self.seq = min(max(self.seq, 0), self.count - 1)

    # ---- where we are ------------------------------------------------------------------------

    @property
    def event(self) -> Event:
        return self.reader.event(self.seq)

    @property
    def tracks(self) -> list[Track]:
        if self._tracks is None:
            self._tracks = self.reader.tracks()
        return self._tracks

    def when(self) -> str:
        ev = self.event
        return f"event {ev.seq} of {self.count}, virtual time {ev.start_ns} ns"

    # ---- absolute moves ----------------------------------------------------------------------

    def goto(self, seq: int) -> Event:
        if not 0 <= seq < self.count:
            raise RevatiUsageError(
                f"event {seq} is out of range; the trace has events 0..{self.count - 1}"
            )
        self.seq = seq
        return self.event

    def goto_time(self, t_ns: int) -> Event:
        """Move to the first event starting at or after `t_ns` (the last event if none)."""
        ev = self.reader.first_event_at(t_ns)
        return self.goto(ev.seq if ev is not None else self.count - 1)

    # ---- relative moves ----------------------------------------------------------------------

    def step(
        self,
        forward: bool = True,
        *,
        rank: int | None = None,
        track_id: str | None = None,
        kinds: tuple[str, ...] | None = None,
        name_pattern: str | None = None,
    ) -> Event | None:
        """Move to the next (or previous) event passing the filter; None (and stay) if none."""
        find = self.reader.next_event if forward else self.reader.prev_event
        ev = find(
            self.seq,
            rank=rank,
            track_id=track_id,
            kinds=list(kinds) if kinds else None,
            name_pattern=name_pattern,
        )
        if ev is not None:
            self.seq = ev.seq
        return ev

    def step_rank(self, forward: bool = True) -> Event | None:
        """Next/previous event of the rank (process) the cursor is in."""
        ev = self.event
        if ev.rank is not None:
            return self.step(forward, rank=ev.rank)
        if ev.track_id is not None:
            tracks = [t.track_id for t in self.tracks if t.pid == ev.pid]
            return self._step_tracks(forward, tracks)
        return self.step(forward)

    def _step_tracks(self, forward: bool, track_ids: list[str]) -> Event | None:
        hits = [
            self.reader.next_event(self.seq, track_id=t)
            if forward
            else self.reader.prev_event(self.seq, track_id=t)
            for t in track_ids
        ]
        found = [h for h in hits if h is not None]
        if not found:
            return None
        best = min(found, key=lambda e: e.seq) if forward else max(found, key=lambda e: e.seq)
        self.seq = best.seq
        return best

    def step_sync(self, forward: bool = True) -> Event | None:
        return self.step(forward, kinds=SYNC_KINDS)

    def step_jump(self, forward: bool = True) -> Event | None:
        return self.step(forward, kinds=JUMP_KINDS)

    def step_barrier(self, forward: bool = True) -> Event | None:
        return self.step(forward, kinds=BARRIER_KINDS)

    def search(self, pattern: str, forward: bool = True) -> Event | None:
        """Next/previous API call or device operation whose name matches the regex."""
        return self.step(forward, kinds=("api_call", *DEVICE_KINDS), name_pattern=pattern)

    # ---- breakpoints -------------------------------------------------------------------------

    def add_breakpoint(self, kind: str, pattern: str) -> Breakpoint:
        if kind not in BREAK_KINDS:
            raise RevatiUsageError(
                f"unknown breakpoint kind {kind!r}; use one of {', '.join(BREAK_KINDS)}"
            )
        _check_regex(pattern)
        bp = Breakpoint(self._next_bp, kind, pattern)
        self._next_bp += 1
        self.breakpoints.append(bp)
        return bp

    def delete_breakpoint(self, bp_id: int | None = None) -> int:
        """Delete one breakpoint (or all when `bp_id` is None); returns how many went."""
        before = len(self.breakpoints)
        self.breakpoints = [b for b in self.breakpoints if bp_id is not None and b.bp_id != bp_id]
        removed = before - len(self.breakpoints)
        if bp_id is not None and removed == 0:
            raise RevatiUsageError(f"no breakpoint #{bp_id}")
        return removed

    def continue_(self, forward: bool = True) -> tuple[Event, Breakpoint] | None:
        """Run forward (or backward) to the nearest breakpoint hit; None (and stay) if none."""
        if not self.breakpoints:
            raise RevatiUsageError(
                "no breakpoints set; use `break kernel REGEX` or `break api REGEX`"
            )
        find = self.reader.next_event if forward else self.reader.prev_event
        best: tuple[Event, Breakpoint] | None = None
        for bp in self.breakpoints:
            ev = find(self.seq, kinds=list(bp.kinds), name_pattern=bp.pattern)
            if ev is None:
                continue
            if best is None or (ev.seq < best[0].seq if forward else ev.seq > best[0].seq):
                best = (ev, bp)
        if best is not None:
            self.seq = best[0].seq
        return best

    def reverse_continue(self) -> tuple[Event, Breakpoint] | None:
        return self.continue_(forward=False)

    # ---- bookmarks ---------------------------------------------------------------------------

    def bookmark(self, name: str) -> int:
        self.bookmarks[name] = self.seq
        return self.seq

    def goto_bookmark(self, name: str) -> Event:
        if name not in self.bookmarks:
            known = ", ".join(sorted(self.bookmarks)) or "none yet"
            raise RevatiUsageError(f"no bookmark {name!r} (bookmarks: {known})")
        return self.goto(self.bookmarks[name])

    # ---- state -------------------------------------------------------------------------------

    def state(self) -> CursorState:
        """The run at the cursor, reconstructed from the trace (same forward and backward)."""
        ev = self.event
        t = ev.start_ns
        return CursorState(
            seq=ev.seq,
            time_ns=t,
            event=ev,
            threads=self._thread_states(t),
            streams=self._stream_states(t),
            last_jump=self._last_jump(),
            barriers=self._barriers_in_progress(t),
        )

    def _active(self, t: int, kinds: list[str]) -> list[Event]:
        """Events of `kinds` in progress at t: started at or before t, not yet ended."""
        evs = self.reader.events_in_window(t, t, kinds=kinds)
        return [e for e in evs if e.start_ns <= t and (e.end_ns > t or e.end_ns == e.start_ns == t)]

    def _thread_states(self, t: int) -> list[ThreadState]:
        calls: dict[str, Event] = {}
        for e in self._active(t, ["api_call"]):
            calls[e.track_id or ""] = e  # the innermost (latest-starting) call wins
        syncs = {e.track_id: e for e in self._active(t, ["sync"])}
        out = []
        for track in self.tracks:
            if track.kind != "thread":
                continue
            sync = syncs.get(track.track_id)
            call = calls.get(track.track_id)
            started, ended, ending = self._thread_spans().get(track.ref_id, (None, None, None))
            if sync is None and call is None and started is not None and t < started:
                out.append(ThreadState(track, "not started", None, None, None, started, None))
            elif sync is None and call is None and ended is not None and t >= ended:
                out.append(ThreadState(track, "ended", None, None, None, ended, None, None, ending))
            elif sync is not None:
                row = self.reader.details(sync)
                out.append(
                    ThreadState(
                        track,
                        "blocked",
                        call.name if call else None,
                        _wait_target(row),
                        row.get("kind"),
                        sync.start_ns,
                        row.get("deadline_ns"),
                        row.get("resumed_ns"),
                    )
                )
            elif call is not None:
                out.append(
                    ThreadState(track, "in call", call.name, None, None, call.start_ns, None)
                )
            else:
                out.append(ThreadState(track, "running", None, None, None, None, None))
        return out

    def _thread_spans(self) -> dict[int, tuple[int | None, int | None, str | None]]:
        """thread_id -> (started_ns, ended_ns, how its process ended) (cached). A thread with no
        end of its own ends with its process."""
        if self._spans is None:
            procs = {p.pid: p for p in self.reader.processes()}
            rows = self.reader.sql("SELECT thread_id, pid, started_ns, ended_ns FROM threads")
            self._spans = {}
            for tid, pid, started, ended in rows:
                proc = procs.get(pid)
                if proc is None or proc.ended_ns is None or (ended or 0) > proc.ended_ns:
                    self._spans[int(tid)] = (started, ended, None)
                else:
                    ending = f"process {proc.ending}"
                    self._spans[int(tid)] = (started, ended or proc.ended_ns, ending)
        return self._spans

    def _stream_states(self, t: int) -> list[StreamState]:
        running = {e.track_id: e for e in self._active(t, list(DEVICE_KINDS)) if e.end_ns > t}
        queued = self._queued(t)
        out = []
        for track in self.tracks:
            if track.kind != "stream":
                continue
            op = running.get(track.track_id)
            out.append(
                StreamState(
                    track,
                    op.name if op else None,
                    op.end_ns if op else None,
                    queued.get(track.ref_id, 0),
                )
            )
        return out

    def _queued(self, t: int) -> dict[int, int]:
        """Per stream id: operations launched at or before t that start after t."""
        rows = self.reader.sql(
            "SELECT stream_id, count(*) FROM ("
            " SELECT stream_id FROM kernels WHERE launch_ns <= ? AND start_ns > ?"
            " UNION ALL SELECT stream_id FROM copies WHERE launch_ns <= ? AND start_ns > ?"
            " UNION ALL SELECT stream_id FROM memsets WHERE launch_ns <= ? AND start_ns > ?"
            ") GROUP BY 1",
            [t, t] * 3,
        )
        return {int(sid): int(n) for sid, n in rows if sid is not None}

    def _last_jump(self) -> JumpInfo | None:
        ev = self.reader.prev_event(self.seq + 1, kinds=list(JUMP_KINDS))
        if ev is None:
            return None
        row = self.reader.details(ev)
        return JumpInfo(
            ev.ref_id,
            int(row.get("from_ns") or ev.start_ns),
            int(row.get("to_ns") or ev.end_ns),
            row.get("cause_kind"),
            row.get("cause_object"),
            row.get("cause_thread_id"),
        )

    def _barriers_in_progress(self, t: int) -> list[tuple[BarrierDetail, int]]:
        out = []
        for ev in self.reader.events_in_window(t, t, kinds=list(BARRIER_KINDS)):
            if not ev.start_ns <= t <= ev.end_ns:
                continue
            detail = self.reader.barrier(ev.ref_id)
            arrived = sum(1 for a in detail.arrivals if a.arrival_ns <= t)
            out.append((detail, arrived))
        return out


def _wait_target(row: dict[str, Any]) -> str | None:
    kind, target = row.get("kind"), row.get("target")
    if kind and target:
        return str(target) if str(target).startswith(str(kind)) else f"{kind} {target}"
    return target or kind


def _check_regex(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as e:
        raise RevatiUsageError(f"bad regular expression {pattern!r}: {e}") from e
