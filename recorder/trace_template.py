"""An empty trace of the current schema, made once per schema and DuckDB version and copied into
place for each new trace: creating its tables and views one statement at a time costs a run
~25-30 ms of CPU, copying the file ~1 ms.

The template lives in the user's cache (`$XDG_CACHE_HOME/revati`, else `~/.cache/revati`), named
by a hash of the DDL, the trace format and version and DuckDB's version, so a schema change or a
DuckDB upgrade makes a new one. It is written beside its final name and renamed into place:
a crash never leaves a partial template, and two runs making it at once both succeed."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

import duckdb
from revati.recorder import schema


def copy_empty_trace(dest: Path) -> bool:
    """Put an empty trace of the current schema (tables, views and meta rows) at `dest`, which
    does not exist. False when no template could be had (an unwritable cache): then `dest` is
    left absent and the caller creates the tables itself."""
    try:
        shutil.copyfile(_template(), dest)
    except (OSError, duckdb.Error):
        with contextlib.suppress(OSError):
            dest.unlink(missing_ok=True)
        return False
    return True


def meta_rows() -> list[tuple[str, str]]:
    """The rows of the meta table every trace starts with."""
    return [("format", schema.TRACE_FORMAT), ("schema_version", str(schema.SCHEMA_VERSION))]


def _template() -> Path:
    ddl = schema.create_all_ddl()
    key = "\n".join([*ddl, *map(repr, meta_rows()), duckdb.__version__])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "revati"
    path = cache / f"empty-trace-{hashlib.sha256(key.encode()).hexdigest()[:16]}.duckdb"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        _make(path, ddl)
    return path


def _make(path: Path, ddl: list[str]) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with duckdb.connect(str(tmp)) as con:
            con.execute(";\n".join(ddl))
            con.executemany(f"INSERT INTO {schema.META_TABLE} VALUES (?, ?)", meta_rows())
            con.execute("CHECKPOINT")
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            with contextlib.suppress(OSError):
                leftover.unlink(missing_ok=True)
