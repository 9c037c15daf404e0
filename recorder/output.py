"""Output paths of every command that writes a file (record, import, export, synth, calibrate).

`check_output` validates an `-o` path before any work: not a folder, its folder exists and is
writable, an existing file is replaced only with `--force`, and never a file that is also an
input. `OutputFile` makes the write all-or-nothing and exclusive: it takes a lock beside the
output (a second writer of the same path is refused, naming the pid that writes it), the data
goes to a temporary file in the output's folder, and `commit()` renames it over the output only
once it is complete. Errors raised while writing name the user's path, never the temporary one.
`atomic_output` is the context-manager form; `writer_of` tells who is writing a path now.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

from revati.errors import RevatiError, RevatiUsageError

__all__ = [
    "OutputFile",
    "abandoned_write",
    "atomic_output",
    "check_output",
    "same_file",
    "writer_of",
]

PathLike = str | os.PathLike[str]


def check_output(out: PathLike, *, force: bool, inputs: Iterable[PathLike] = ()) -> Path:
    """Validate the `-o` path before any work; `inputs` are files the command reads."""
    path, shown = Path(out), os.fspath(out)
    if path.is_dir():
        raise RevatiUsageError(f"{shown}: is a directory; give a file name inside it")
    folder = path.parent
    if not folder.is_dir():
        raise RevatiUsageError(f"{folder}: no such folder for the output; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RevatiUsageError(
            f"{shown}: cannot write in folder {folder} (permission denied); choose another -o path"
        )
    for source in inputs:
        if same_file(path, source):
            raise RevatiUsageError(
                f"{shown}: is also an input of this command ({source}); "
                "writing it would destroy the input; choose another -o path"
            )
    if path.exists() and not force:
        raise RevatiUsageError(
            f"{shown}: already exists; pass --force to replace it or choose another -o path"
        )
    return path


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether two paths name the same file (same inode, or the same real path)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def writer_of(out: PathLike) -> tuple[int, Path] | None:
    """(pid, temporary file) of the process writing `out` right now, or None."""
    lock = _lock_state(Path(out))
    return lock[1] if lock is not None and lock[0] else None


def abandoned_write(out: PathLike) -> tuple[int, Path] | None:
    """(pid, temporary file) of a writer of `out` that died before renaming it (kill -9): the
    lock file is there but nobody holds it, and the temporary file it names still exists."""
    lock = _lock_state(Path(out))
    if lock is None or lock[0] or lock[1] is None or not lock[1][1].exists():
        return None
    return lock[1]


def _lock_state(out: Path) -> tuple[bool, tuple[int, Path] | None] | None:
    """(held by a live writer, (pid, temporary file) it names) of the lock beside `out`."""
    try:
        fd = os.open(_lock_path(out), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            held = False  # a lock file nobody holds: its writer has gone
        except BlockingIOError:
            held = True
        return held, _read_owner(fd)
    finally:
        os.close(fd)


class OutputFile:
    """The exclusive, all-or-nothing write of one output file (see the module docstring)."""

    def __init__(self, path: PathLike, suffix: str = "partial") -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{suffix}")
        self._lock_fd: int | None = None
        self._lock_file = _lock_path(self.path)

    def __enter__(self) -> OutputFile:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.discard()
        if err is not None and not isinstance(err, RevatiError | OSError):
            return
        if isinstance(err, RevatiError | OSError):
            raise self.user_error(err) from None

    def acquire(self) -> None:
        """Take the lock beside the output, or refuse naming the pid that holds it."""
        while True:
            fd = self._open_lock()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _read_owner(fd)
                os.close(fd)
                who = f"pid {owner[0]}" if owner else "another process"
                raise RevatiUsageError(
                    f"{self.path}: the output is being written by {who}; wait for it to finish "
                    "or choose another -o path"
                ) from None
            if _same_inode(fd, self._lock_file):  # not a lock file its last owner just removed
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n{self.tmp.resolve()}\n".encode())
        self._lock_fd = fd
        _remove(self.tmp)

    def commit(self) -> None:
        """Rename the complete temporary file (and a DuckDB log beside it) over the output;
        release the lock."""
        try:
            _remove_file(_wal(self.path))  # a stale log must never be replayed onto the new file
            os.replace(self.tmp, self.path)
            wal = _wal(self.tmp)
            if wal.exists():
                os.replace(wal, _wal(self.path))
        except OSError as e:
            raise self.user_error(e) from None
        finally:
            self.discard()

    def finish(self, *, keep: bool) -> None:
        """`commit()` if `keep` and the temporary file exists, else `discard()`."""
        if keep and self.tmp.exists():
            self.commit()
        else:
            self.discard()

    def discard(self) -> None:
        """Remove the temporary file (if still there) and release the lock. Idempotent."""
        _remove(self.tmp)
        if self._lock_fd is not None:
            with contextlib.suppress(FileNotFoundError):
                self._lock_file.unlink()
            os.close(self._lock_fd)
            self._lock_fd = None

    def user_error(self, err: BaseException) -> RevatiError:
        """`err` as one line about the user's path (the temporary name replaced by it)."""
        if isinstance(err, OSError) and not isinstance(err, FileNotFoundError):
            reason = err.strerror or str(err)
            if err.errno == errno.ENOSPC:
                reason += "; free some space or choose another -o path"
            return RevatiUsageError(f"{self.path}: cannot write the output: {reason}")
        text = str(err).replace(str(self.tmp), str(self.path))
        if isinstance(err, RevatiError):
            return type(err)(text)
        return RevatiUsageError(f"{self.path}: cannot write the output: {text}")

    def _open_lock(self) -> int:
        try:
            return os.open(self._lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise self.user_error(e) from None


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds."""
    with OutputFile(path) as output:
        yield output.tmp
        output.commit()


def _lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


def _same_inode(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False


def _read_owner(fd: int) -> tuple[int, Path] | None:
    try:
        pid, tmp = os.pread(fd, 4096, 0).decode().split("\n")[:2]
        return int(pid), Path(tmp)
    except (ValueError, UnicodeDecodeError):
        return None


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _remove(tmp: Path) -> None:
    _remove_file(tmp)
    _remove_file(_wal(tmp))


def _remove_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
