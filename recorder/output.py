"""Output paths of commands that write a trace (`revati synth`, `export`, the importers).

`check_output` validates an `-o` path before any work; `atomic_output` makes the write
all-or-nothing: the trace is written to a temporary file in the output's folder and renamed over
the output only once it is complete.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from revati.errors import RevatiUsageError

__all__ = ["atomic_output", "check_output"]


def check_output(out: str | os.PathLike[str], *, force: bool) -> Path:
    """Validate the `-o` path before any work: its folder exists and it is not clobbered."""
    path = Path(out)
    if path.is_dir():
        raise RevatiUsageError(f"{path}: is a directory; give a file name such as real.duckdb")
    if not path.parent.exists():
        raise RevatiUsageError(f"{path.parent}: no such folder for the output; create it first")
    if path.exists() and not force:
        raise RevatiUsageError(
            f"{path}: already exists; pass --force to replace it or choose another -o path"
        )
    return path


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.importing")
    _remove(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def _remove(tmp: Path) -> None:
    for p in (tmp, tmp.with_name(tmp.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
