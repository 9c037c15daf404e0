"""A trace being recorded right now: who records it, and live snapshots for those who watch.

`revati record` holds a lock beside its output for the whole run: `.<name>.lock`, flock'd, with
the recorder's pid on its first line and the file it writes on its second. A reader that finds
the lock held says the trace is being recorded, and by whom, instead of taking DuckDB's refusal
to open a file another process writes for a damaged file.

No other process can open a DuckDB file while one writes it, so watchers ask the recorder for
snapshots: a watcher touches `.<name>.follow`; while that file is fresh (touched in the last
`FOLLOW_TTL_S`), the recorder commits what it has, checkpoints and copies the file it writes to
`.<name>.live` (a temporary copy renamed over it, so a watcher never reads half a copy), at most
once per `SNAPSHOT_EVERY_S` and never more than a tenth of the time. Nobody watching costs the
recording nothing; the recorder removes both files when it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from revati.errors import RevatiUsageError

FOLLOW_TTL_S = 10.0
SNAPSHOT_EVERY_S = 1.0
SNAPSHOT_WAIT_S = 10.0  # how long a watcher waits for the first snapshot


def lock_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.lock")


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
    """The recording writing `out` right now, or None."""
    try:
        fd = os.open(lock_path(Path(out)), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_owner(fd)
        return None  # a lock file nobody holds: its recorder has gone
    finally:
        os.close(fd)


def live_recording(path: Path) -> Recording | None:
    """The recording in progress whose output `path` is, unless `path` holds a complete older
    trace that the recording will replace when it ends."""
    rec = recording_of(path)
    if rec is None or (path.exists() and not _same_file(rec.writing, path)):
        return None
    return rec


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _read_owner(fd: int) -> Recording | None:
    try:
        pid, writing = os.pread(fd, 4096, 0).decode().split("\n")[:2]
        return Recording(int(pid), Path(writing))
    except (ValueError, UnicodeDecodeError):
        return None


class RecordingLock:
    """Held by `revati record` for the whole run: one recorder per output, and readers can tell
    who records it."""

    def __init__(self, out: Path, writing: Path) -> None:
        self.path = lock_path(out)
        self._fd: int | None = None
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise RevatiUsageError(
                f"{out}: cannot write in its folder ({e.strerror}); choose another -o path"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(fd)
            os.close(fd)
            who = f"pid {owner.pid}" if owner else "another process"
            raise RevatiUsageError(
                f"{out}: being recorded by {who}; wait for it to finish or choose another -o path"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n{writing.resolve()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None


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
