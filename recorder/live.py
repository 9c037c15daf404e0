"""A trace being recorded right now: who records it, and live snapshots for those who watch.

`revati record` holds the lock beside its output for the whole run (`recorder.output`: the
recorder's pid and the temporary file it writes). A reader that finds the lock held says the
trace is being recorded, and by whom, instead of taking DuckDB's refusal to open a file another
process writes for a damaged file.

No other process can open a DuckDB file while one writes it, so watchers ask the recorder for
snapshots: a watcher touches `.<name>.follow`; while that file is fresh (touched in the last
`FOLLOW_TTL_S`), the recorder commits what it has, checkpoints and copies the file it writes to
`.<name>.live` (a temporary copy renamed over it, so a watcher never reads half a copy), at most
once per `SNAPSHOT_EVERY_S` and never more than a tenth of the time. Nobody watching costs the
recording nothing; the recorder removes both files when it ends.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from revati.recorder.output import same_file, writer_of

FOLLOW_TTL_S = 10.0
SNAPSHOT_EVERY_S = 1.0
SNAPSHOT_WAIT_S = 10.0  # how long a watcher waits for the first snapshot


def follow_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.follow")


def live_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.live")


@dataclass(frozen=True)
class Recording:
    """A recording in progress: the recorder's pid and the file it writes."""

    pid: int
    writing: Path


def recording_of(out: str | os.PathLike[str]) -> Recording | None:
    """The recording writing `out` right now, or None (the output's lock, `recorder.output`)."""
    owner = writer_of(out)
    return Recording(*owner) if owner is not None else None


def live_recording(path: Path) -> Recording | None:
    """The recording in progress whose output `path` is, unless `path` holds a complete older
    trace that the recording will replace when it ends."""
    rec = recording_of(path)
    if rec is None or (path.exists() and not same_file(rec.writing, path)):
        return None
    return rec


class LiveSnapshots:
    """The recorder's side: `tick()` often (cheap); it copies a snapshot when one is wanted."""

    def __init__(self, out: Path, snapshot: Callable[[Path], None]) -> None:
        self.follow = follow_path(out)
        self.live = live_path(out)
        self._snapshot = snapshot
        self._next = 0.0
        self.taken = 0

    def wanted(self) -> bool:
        try:
            return time.time() - self.follow.stat().st_mtime < FOLLOW_TTL_S
        except OSError:
            return False

    def tick(self) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        if not self.wanted():
            self._next = now + 0.25
            return
        tmp = self.live.with_name(self.live.name + ".tmp")
        self._snapshot(tmp)
        os.replace(tmp, self.live)
        self.taken += 1
        cost = time.monotonic() - now
        self._next = now + max(SNAPSHOT_EVERY_S, 10 * cost)

    def close(self) -> None:
        for p in (self.live, self.live.with_name(self.live.name + ".tmp"), self.follow):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def request_snapshot(out: Path) -> None:
    """A watcher's side: ask the recorder of `out` for fresh snapshots (for `FOLLOW_TTL_S`)."""
    follow = follow_path(out)
    with contextlib.suppress(OSError):
        follow.touch()
        os.utime(follow)


def wait_snapshot(out: Path, newer_than: float, timeout: float) -> Path | None:
    """The live snapshot of `out` once it is newer than `newer_than` (an mtime), or None if none
    comes within `timeout` seconds or the recording ends."""
    live, end = live_path(out), time.monotonic() + timeout
    while time.monotonic() < end:
        request_snapshot(out)
        with contextlib.suppress(OSError):
            if live.stat().st_mtime > newer_than:
                return live
        if recording_of(out) is None:
            stop_following(out)
            return None
        time.sleep(0.1)
    return None


def stop_following(out: Path) -> None:
    """A watcher's side, once the recording has ended: take back the request."""
    with contextlib.suppress(FileNotFoundError):
        follow_path(out).unlink()
