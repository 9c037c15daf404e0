"""TraceWriter: the single writer of a revati trace.

Rows arrive in columnar batches (a dict of equal-length numpy arrays or lists per table) and are
buffered per table; a table's buffer is inserted into DuckDB in one statement once it holds
`flush_rows` rows, and every buffer is inserted once `flush_interval_s` has passed since the last
flush (checked on each append), so a crash of the writing process loses at most about that much
time of records. `flush()` makes everything appended so far durable (DuckDB commits each insert;
its WAL survives a crash of this process), and `close()` flushes, records the end of the run,
builds the derived tables (the global event order, see `event_order.py`, and the timeline
overview, see `overview.py`) and checkpoints. Nothing is ever written row by row.

String columns with few distinct values (kernel names, models) may be given as `Coded(codes,
values)`: integer codes into a small list of strings. They go into DuckDB as the codes and are
decoded there from the list (far cheaper than building a Python string per row); on disk the
column stays VARCHAR.

The optional kernel columns (`schema.KERNEL_FEATURES`) may come with a `kernels` (or
`graph_kernels`) batch; the writer stores the rows that have any in the features table, keeping
the hot table free of empty columns. `kernels` and `kernel_features` are views since schema
version 3, `copies` and `memsets` since version 4: their batches go to the stored tables
`kernel_rows`, `kernel_feature_rows`, `copy_rows` and `memset_rows` (`schema.STORED_AS`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from revati.recorder import schema
from revati.recorder.event_order import write_event_order
from revati.recorder.overview import write_overview

from revati import __version__
from revati.errors import RevatiTraceError


@dataclass(frozen=True)
class Coded:
    """A string column as integer `codes` into `values` (e.g. 40 kernel names for 1M rows)."""

    codes: np.ndarray
    values: Sequence[str | None]

    def __len__(self) -> int:
        return len(self.codes)

    def decode(self) -> np.ndarray:
        table = np.empty(len(self.values), dtype=object)
        table[:] = list(self.values)
        return table[np.asarray(self.codes)]


class StringCodes:
    """An append-only table of strings for `Coded` columns: codes stay valid as it grows, so
    batches coded against it at different times still concatenate as codes."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self._codes: dict[str, int] = {}

    def code(self, value: str) -> int:
        code = self._codes.get(value)
        if code is None:
            code = self._codes[value] = len(self.values)
            self.values.append(value)
        return code

    def coded(self, values: np.ndarray) -> Coded:
        """A column of strings (any array of them) as codes into this table."""
        uniq, inverse = np.unique(values, return_inverse=True)
        table = np.array([self.code(str(v)) for v in uniq], dtype=np.int32)
        return Coded(table[inverse], self.values)


ColumnData = np.ndarray | Sequence[Any] | Coded

# Measured (tests/bench/test_trace_store_bench.py): DuckDB ingests ~30% faster in inserts of
# 1M rows than of 256k (each insert is one commit); the time-based flush bounds what a crash loses.
DEFAULT_FLUSH_ROWS = 1 << 20
DEFAULT_FLUSH_INTERVAL_S = 1.0


@dataclass
class RunInfo:
    """The `run` row: how the trace was made."""

    source: str = schema.SOURCE_EMULATED
    argv: list[str] = field(default_factory=list)
    cwd: str = field(default_factory=os.getcwd)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    device: str | None = None
    predictor: str | None = None
    profile: str | None = None
    dilation: float = 1.0
    host: str = field(default_factory=socket.gethostname)
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.source not in schema.SOURCES:
            raise ValueError(f"run source must be one of {schema.SOURCES}, not {self.source!r}")


class TraceWriter:
    """Append-only writer of one trace file. Use as a context manager or call `close()`."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        run: RunInfo,
        *,
        flush_rows: int = DEFAULT_FLUSH_ROWS,
        flush_interval_s: float | None = DEFAULT_FLUSH_INTERVAL_S,
        overwrite: bool = False,
        build_event_order: bool = True,
        block_size: int | None = None,
        shown_as: str | os.PathLike[str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.shown = Path(shown_as) if shown_as is not None else self.path  # named in errors
        self.build_event_order = build_event_order
        if self.path.exists():
            if not overwrite:
                raise RevatiTraceError(
                    f"{self.path}: already exists; choose another -o path or remove it"
                )
            self.path.unlink()
            wal = self.path.with_name(self.path.name + ".wal")
            if wal.exists():
                wal.unlink()
        self.flush_rows = flush_rows
        self.flush_interval_s = flush_interval_s
        self._last_flush = time.monotonic()
        self._buffers: dict[str, list[dict[str, ColumnData]]] = {}
        self._buffered_rows: dict[str, int] = {}
        self._next_ids: dict[str, int] = {}
        self._closed = False
        try:
            config: dict[str, str | bool | int | float | list[str]] = (
                {"default_block_size": str(block_size)} if block_size else {}
            )
            # Rows carry their own ids and every reader orders explicitly, so appends need not
            # keep insertion order; DuckDB then compresses row groups in parallel (~1.5x faster
            # ingest on 2 cores). Derived tables whose row position matters are written with it
            # switched back on (see `close`).
            config["preserve_insertion_order"] = False
            self._con = duckdb.connect(str(self.path), config=config)
        except duckdb.Error as e:
            raise RevatiTraceError(f"{self.shown}: cannot create trace: {e}") from e
        self._con.execute("SET enable_progress_bar = false")
        self._create(run)

    # ---- setup -------------------------------------------------------------------------------

    def _create(self, run: RunInfo) -> None:
        con = self._con
        con.execute("BEGIN")
        for ddl in schema.create_all_ddl():
            con.execute(ddl)
        con.executemany(
            f"INSERT INTO {schema.META_TABLE} VALUES (?, ?)",
            [("format", schema.TRACE_FORMAT), ("schema_version", str(schema.SCHEMA_VERSION))],
        )
        con.execute(
            "INSERT INTO run (source, argv, cwd, started_at, device, predictor, profile, dilation,"
            " revati_version, host, config) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run.source,
                run.argv,
                run.cwd,
                run.started_at,
                run.device,
                run.predictor,
                run.profile,
                run.dilation,
                __version__,
                run.host,
                json.dumps(run.config),
            ],
        )
        con.execute("COMMIT")

    # ---- ids ---------------------------------------------------------------------------------

    def allocate_ids(self, kind: str, count: int) -> np.ndarray:
        """Reserve `count` consecutive ids for `kind` (e.g. 'call', 'kernel') and return them."""
        start = self._next_ids.get(kind, 0)
        self._next_ids[kind] = start + count
        return np.arange(start, start + count, dtype=np.int64)

    # ---- appends -----------------------------------------------------------------------------

    def append(self, table: str, columns: Mapping[str, ColumnData]) -> None:
        """Buffer a batch of rows for `table`; columns missing from the batch become NULL.

        A `kernels` batch may carry the `kernel_features` columns too: the rows that have any go
        to that table (with their kernel_id), the rest of each row to `kernels` (both stored
        under their `schema.STORED_AS` names)."""
        self._check_open()
        spec = schema.TABLE_BY_NAME.get(table)
        if spec is None or table in (schema.META_TABLE, "run"):
            raise ValueError(f"cannot append to table {table!r}")
        unknown = set(columns) - set(schema.appendable_columns(table))
        if unknown:
            raise ValueError(f"{table}: unknown columns {sorted(unknown)}")
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"{table}: columns of unequal length {sorted(lengths)}")
        if not lengths or lengths.pop() == 0:
            return
        table = schema.stored_table(table)
        if table in schema.FEATURES_OF:
            columns = self._split_kernel_features(table, columns)
        self._buffer(table, columns)
        if (
            self.flush_interval_s is not None
            and time.monotonic() - self._last_flush >= self.flush_interval_s
        ):
            self.flush()

    def _buffer(self, table: str, columns: Mapping[str, ColumnData]) -> None:
        n = len(next(iter(columns.values())))
        self._buffers.setdefault(table, []).append(dict(columns))
        self._buffered_rows[table] = self._buffered_rows.get(table, 0) + n
        if self._buffered_rows[table] >= self.flush_rows:
            self._flush_table(table)

    def _split_kernel_features(
        self, table: str, columns: Mapping[str, ColumnData]
    ) -> dict[str, ColumnData]:
        """Buffer the feature columns of the rows that have any, with the keys that join them
        back (`schema.FEATURES_OF`); return the rest, the columns of `table`."""
        kernel = {k: v for k, v in columns.items() if k not in schema.KERNEL_FEATURE_NAMES}
        features = {k: v for k, v in columns.items() if k in schema.KERNEL_FEATURE_NAMES}
        if not features:
            return kernel
        known = np.logical_or.reduce([_present(v) for v in features.values()])
        if not known.any():
            return kernel
        features_table, keys = schema.FEATURES_OF[table]
        if any(k not in kernel for k in keys):
            raise ValueError(f"{table}: rows with features need their {', '.join(keys)}")
        rows = np.flatnonzero(known)
        picked = {k: _take(v, rows) for k, v in features.items()}
        self._buffer(features_table, {**{k: _take(kernel[k], rows) for k in keys}, **picked})
        return kernel

    def append_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Convenience for low-rate tables (processes, streams): a list of row dicts."""
        if not rows:
            return
        names = list(dict.fromkeys(k for r in rows for k in r))
        self.append(table, {k: [r.get(k) for r in rows] for k in names})

    def flush(self) -> None:
        """Make everything appended so far durable."""
        self._check_open()
        for table in list(self._buffers):
            self._flush_table(table)
        self._last_flush = time.monotonic()

    def _flush_table(self, table: str) -> None:
        batches = self._buffers.pop(table, [])
        self._buffered_rows.pop(table, None)
        # Consecutive batches with the same columns go in as one statement.
        run: list[dict[str, ColumnData]] = []
        for batch in batches:
            if run and batch.keys() != run[0].keys():
                self._insert(table, _concat(run))
                run = []
            run.append(batch)
        if run:
            self._insert(table, _concat(run))

    def _insert(self, table: str, batch: Mapping[str, ColumnData]) -> None:
        # Coded string columns go in as their integer codes and are decoded by DuckDB from the
        # (small) list of values, which is far cheaper than building a Python string per row.
        frame: dict[str, np.ndarray] = {}
        selects: list[str] = []
        params: list[list[str | None]] = []
        for name, values in batch.items():
            if isinstance(values, Coded):
                frame[name] = np.asarray(values.codes, dtype=np.int64)
                params.append(list(values.values))
                selects.append(f"list_extract(${len(params)}, {name} + 1)")
            else:
                frame[name] = _as_array(values)
                selects.append(name)
        cols = ", ".join(frame)
        query = f"INSERT INTO {table} ({cols}) SELECT {', '.join(selects)} FROM frame"
        try:
            self._con.execute(query, params or None)
        except duckdb.Error as e:
            raise RevatiTraceError(f"{self.shown}: writing {table} failed: {e}") from e

    def snapshot(self, dest: Path) -> None:
        """Copy everything appended so far to `dest` as a trace file another process can open
        (while this writer holds the file, nobody else can): commit, checkpoint, copy."""
        self.flush()
        self._con.execute("CHECKPOINT")
        shutil.copyfile(self.path, dest)

    # ---- end ---------------------------------------------------------------------------------

    def update_run(self, **fields: Any) -> None:
        """Set columns of the run row (virtual_end_ns, wall_ns, exit_status, device, ...)."""
        self._check_open()
        allowed = set(schema.TABLE_BY_NAME["run"].column_names)
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"run: unknown columns {sorted(bad)}")
        if "config" in fields:
            fields["config"] = json.dumps(fields["config"])
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._con.execute(f"UPDATE run SET {sets}", list(fields.values()))

    def close(self, **run_fields: Any) -> None:
        """Flush every buffer, record `run_fields` on the run row and checkpoint. Idempotent."""
        if self._closed:
            return
        try:
            self.flush()
            if run_fields:
                self.update_run(**run_fields)
            if self.build_event_order:
                self._con.execute("SET preserve_insertion_order = true")  # event_order: rowid = seq
                write_event_order(self._con)
                write_overview(self._con, "event_order", "event_groups")
            self._con.execute("CHECKPOINT")
        except duckdb.Error as e:
            reason = str(e).replace(str(self.path), str(self.shown))
            raise RevatiTraceError(f"{self.shown}: finishing the trace failed: {reason}") from e
        finally:
            self._closed = True
            self._con.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RevatiTraceError(f"{self.shown}: trace writer is already closed")

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _concat(batches: list[dict[str, ColumnData]]) -> dict[str, ColumnData]:
    if len(batches) == 1:
        return batches[0]
    return {k: _concat_column([b[k] for b in batches]) for k in batches[0]}


def _concat_column(parts: list[ColumnData]) -> ColumnData:
    first = parts[0]
    if isinstance(first, Coded) and all(
        isinstance(p, Coded) and (p.values is first.values or list(p.values) == list(first.values))
        for p in parts
    ):
        return Coded(np.concatenate([p.codes for p in parts]), first.values)  # type: ignore[union-attr]
    return np.concatenate([_as_array(p) for p in parts])


def _present(values: ColumnData) -> np.ndarray:
    """Which rows of a column hold a value (not NULL / None / NaN)."""
    if isinstance(values, Coded):
        known = np.array([v is not None for v in values.values], dtype=bool)
        return known[np.asarray(values.codes)]
    arr = _as_array(values)
    if arr.dtype.kind == "f":
        return ~np.isnan(arr)
    if arr.dtype == object:
        return np.array([v is not None for v in arr], dtype=bool)
    return np.ones(len(arr), dtype=bool)


def _take(values: ColumnData, rows: np.ndarray) -> ColumnData:
    if isinstance(values, Coded):
        return Coded(np.asarray(values.codes)[rows], values.values)
    return _as_array(values)[rows]


def _as_array(values: ColumnData) -> np.ndarray:
    """A 1-D numpy array DuckDB can scan (lists stay one object per row, e.g. argv)."""
    if isinstance(values, np.ndarray) and values.ndim == 1:
        return values
    if isinstance(values, Coded):
        return values.decode()
    arr = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        arr[i] = v
    # Let numpy pick a native dtype when the column is homogeneous scalars with no NULLs.
    if len(arr) and all(v is not None and not isinstance(v, list | tuple | dict) for v in arr):
        with contextlib.suppress(ValueError, TypeError):
            native = np.asarray(list(arr))
            if native.ndim == 1 and native.dtype.kind in "biuf":  # strings stay objects (faster)
                arr = native
    return arr
