"""TraceReader: the read API every other part of revati uses (CLI, replay, TUI, calibration).

Opening validates the file once (exists, is DuckDB, is a revati trace, has this schema version)
and raises `RevatiTraceError` with one clear line otherwise. The file is opened read-only, so a
reader never modifies what the user has.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb

from revati.errors import RevatiTraceError
from revati.recorder import schema

DUCKDB_MAGIC = b"DUCK"  # bytes 8..12 of every DuckDB database file


def validate_trace_file(path: Path) -> None:
    """Raise RevatiTraceError unless `path` looks like a DuckDB file (cheap checks, no open)."""
    if not path.exists():
        raise RevatiTraceError(f"{path}: no such file")
    if path.is_dir():
        raise RevatiTraceError(f"{path}: is a directory, not a trace file")
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as e:
        raise RevatiTraceError(f"{path}: cannot read: {e.strerror}") from e
    if len(head) < 12 or head[8:12] != DUCKDB_MAGIC:
        raise RevatiTraceError(f"{path}: not a DuckDB file, so not a revati trace")


class TraceReader:
    """Read-only access to one trace."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        validate_trace_file(self.path)
        try:
            self.con = duckdb.connect(str(self.path), read_only=True)
        except duckdb.Error as e:
            raise RevatiTraceError(f"{self.path}: cannot open as a DuckDB database ({_first_line(e)}); "
                                   "the file may be truncated or corrupt") from e
        self._check_identity()

    def _check_identity(self) -> None:
        try:
            rows = dict(self.con.execute(f"SELECT key, value FROM {schema.META_TABLE}").fetchall())
        except duckdb.Error as e:
            self.con.close()
            raise RevatiTraceError(f"{self.path}: a DuckDB file but not a revati trace "
                                   f"(no {schema.META_TABLE} table)") from e
        if rows.get("format") != schema.TRACE_FORMAT:
            self.con.close()
            raise RevatiTraceError(f"{self.path}: a DuckDB file but not a revati trace")
        version = rows.get("schema_version")
        if version != str(schema.SCHEMA_VERSION):
            self.con.close()
            raise RevatiTraceError(
                f"{self.path}: trace schema version {version}, this revati reads version "
                f"{schema.SCHEMA_VERSION}; use the revati release that wrote it or re-record")

    # ---- basics ------------------------------------------------------------------------------

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a read-only query and return all rows (errors become RevatiTraceError)."""
        try:
            return self.con.execute(query, params or []).fetchall()
        except duckdb.Error as e:
            raise RevatiTraceError(f"{self.path}: query failed: {_first_line(e)}") from e

    def run(self) -> dict[str, Any]:
        """The run row as a dict."""
        cur = self.con.execute("SELECT * FROM run")
        names = [d[0] for d in cur.description]
        row = cur.fetchone()
        if row is None:
            raise RevatiTraceError(f"{self.path}: trace has no run row; the file is incomplete")
        return dict(zip(names, row, strict=True))

    def counts(self) -> dict[str, int]:
        """Row count of every table of the schema (meta and run excluded)."""
        out = {}
        for t in schema.TABLES:
            if t.name in (schema.META_TABLE, "run"):
                continue
            out[t.name] = self.con.execute(f"SELECT count(*) FROM {t.name}").fetchone()[0]  # type: ignore[index]
        return out

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> TraceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_trace(path: str | os.PathLike[str]) -> TraceReader:
    """Open and validate a trace; raises RevatiTraceError with one clear line on bad input."""
    return TraceReader(path)


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
