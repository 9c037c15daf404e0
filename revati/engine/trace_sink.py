"""Rows for the trace, buffered as columns and handed to `TraceWriter` in batches.

The writer runs on a thread of its own: DuckDB inserts release the GIL, so the coordinator keeps
draining rings and answering syncs while the rows of the last batches go to disk. A bounded
queue holds at most `MAX_PENDING` flushed batches; past that, `flush()` waits for the writer
(a run that outpaces the disk slows down rather than filling memory).
"""

from __future__ import annotations

import queue
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from revati.errors import RevatiTraceError
from revati.recorder.writer import TraceWriter

MAX_PENDING = 4
_STOP = None
Batch = list[dict[str, Any]] | dict[str, Any]  # rows one by one, or equal-length columns
Job = list[tuple[str, Batch]] | Callable[[], None] | None  # batches, a call, or _STOP


class TraceSink:
    """Column buffers per table; `flush()` hands them to the writer thread as one batch each;
    `close()` waits until the writer has everything (call it before closing the writer)."""

    def __init__(self, writer: TraceWriter) -> None:
        self.writer = writer
        self._queue: queue.Queue[Job] = queue.Queue(MAX_PENDING)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._ids: dict[str, int] = defaultdict(int)
        self._batches: list[tuple[str, dict[str, Any]]] = []
        self.counts: dict[str, int] = defaultdict(int)

    def new_id(self, kind: str) -> int:
        i = self._ids[kind]
        self._ids[kind] = i + 1
        return i

    def reserve_ids(self, kind: str, n: int) -> int:
        """Reserve `n` consecutive ids; the first."""
        start = self._ids[kind]
        self._ids[kind] = start + n
        return start

    def new_ids(self, kind: str, n: int) -> np.ndarray:
        start = self._ids[kind]
        self._ids[kind] = start + n
        return np.arange(start, start + n, dtype=np.int64)

    def add_columns(self, table: str, columns: dict[str, Any]) -> None:
        """A whole batch of rows as equal-length columns (numpy arrays): the fast path."""
        self._batches.append((table, columns))
        self.counts[table] += len(next(iter(columns.values())))

    def add(self, table: str, **row: Any) -> None:
        """One row (low-rate tables, and records handled one by one): kept as it is; the writer
        thread turns a table's rows into columns."""
        self._rows[table].append(row)
        self.counts[table] += 1

    def flush(self) -> None:
        """Hand everything added so far to the writer thread."""
        self._raise_error()
        batch: list[tuple[str, Batch]] = [
            *((table, rows) for table, rows in self._rows.items() if rows),
            *self._batches,
        ]
        self._rows = defaultdict(list)
        self._batches = []
        self._start()
        self._queue.put(batch)

    def run_on_writer(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the writer thread (the one thread that uses the DuckDB connection) once
        everything added so far is written; wait for it and raise what it raised."""
        self.flush()
        done = threading.Event()
        failed: list[BaseException] = []

        def call() -> None:
            try:
                fn()
            except BaseException as e:  # raised again on the caller's thread below
                failed.append(e)
            finally:
                done.set()

        self._queue.put(call)
        done.wait()
        if failed:
            raise failed[0]

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._write, name="revati-writer", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Flush, wait until the writer thread has written everything, and stop it."""
        if self._thread is not None or any(self._rows.values()) or self._batches:
            self.flush()
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        self._raise_error()

    def _write(self) -> None:
        while (batch := self._queue.get()) is not _STOP:
            if callable(batch):
                batch()
                continue
            if self._error is not None:
                continue  # keep taking batches so that flush() never blocks on a dead writer
            try:
                for table, data in batch:
                    if isinstance(data, list):
                        self.writer.append_rows(table, data)
                    else:
                        self.writer.append(table, data)
                self.writer.flush()
            except BaseException as e:  # handed to the coordinator's thread by _raise_error
                self._error = e

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            if isinstance(error, RevatiTraceError):
                raise error
            raise RevatiTraceError(
                f"{self.writer.path}: writing the trace failed: {error}"
            ) from error
