"""Following a trace while `revati record` writes it (no textual here).

The app shows the recorder's latest live snapshot (see `revati.recorder.live`) and, every
`CHECK_EVERY_S`, asks for a newer one; when one has landed it loads it in a worker and swaps it
in, keeping the cursor at the same event. When the recording ends it loads the complete trace
once and stops following.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from revati.recorder.live import (
    SNAPSHOT_WAIT_S,
    live_path,
    live_recording,
    request_snapshot,
    stop_following,
    wait_snapshot,
)
from revati.recorder.reader import being_recorded
from revati.tui.session import TraceSession

CHECK_EVERY_S = 1.0


@dataclass
class LiveFollow:
    """The trace being followed (the user's path) and the snapshot now shown."""

    path: Path
    recorder_pid: int
    shown_mtime: float = 0.0
    finished: bool = False

    @classmethod
    def open(cls, path: Path) -> tuple[TraceSession, LiveFollow | None]:
        """The session to show first: a live snapshot of `path` if it is being recorded (with
        the follower), else `path` itself (None)."""
        rec = live_recording(path)
        if rec is None:
            return TraceSession(path), None
        snap = wait_snapshot(path, 0.0, SNAPSHOT_WAIT_S)
        if snap is None:
            if live_recording(path) is None:  # it ended meanwhile
                return TraceSession(path), None
            being_recorded(path)  # no snapshot came: say who records it
        follow = cls(path, rec.pid)
        assert snap is not None
        follow.shown_mtime = snap.stat().st_mtime
        return follow._snapshot_session(snap), follow

    def newer(self) -> TraceSession | None:
        """A session on a newer snapshot (or on the complete trace once the recording ended),
        or None if nothing changed. Runs in a worker thread (opens and loads the trace)."""
        if live_recording(self.path) is None:
            stop_following(self.path)
            self.finished = True
            session = TraceSession(self.path)
        else:
            request_snapshot(self.path)
            snap = live_path(self.path)
            mtime = 0.0
            with contextlib.suppress(OSError):
                mtime = snap.stat().st_mtime
            if mtime <= self.shown_mtime:
                return None
            self.shown_mtime = mtime
            session = self._snapshot_session(snap)
        session.load()
        return session

    def _snapshot_session(self, snap: Path) -> TraceSession:
        session = TraceSession(snap, name=self.path.name)
        session.live = f"LIVE · recorded by pid {self.recorder_pid}"
        return session

    def status(self) -> str:
        if self.finished:
            return f"{self.path.name}: the recording has ended; this is the complete trace"
        return f"live: {self.path.name} is being recorded by pid {self.recorder_pid}"
