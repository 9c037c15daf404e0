"""Rows for the trace, buffered as columns and handed to `TraceWriter` in batches."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from revati.recorder.writer import TraceWriter


class TraceSink:
    """Column buffers per table; `flush()` appends them to the writer as one batch each."""

    def __init__(self, writer: TraceWriter) -> None:
        self.writer = writer
        self._cols: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
        self._rows: dict[str, int] = defaultdict(int)
        self._ids: dict[str, int] = defaultdict(int)
        self._batches: list[tuple[str, dict[str, Any]]] = []
        self.counts: dict[str, int] = defaultdict(int)

    def new_id(self, kind: str) -> int:
        i = self._ids[kind]
        self._ids[kind] = i + 1
        return i

    def new_ids(self, kind: str, n: int) -> np.ndarray:
        start = self._ids[kind]
        self._ids[kind] = start + n
        return np.arange(start, start + n, dtype=np.int64)

    def add_columns(self, table: str, columns: dict[str, Any]) -> None:
        """A whole batch of rows as equal-length columns (numpy arrays): the fast path."""
        self._batches.append((table, columns))
        self.counts[table] += len(next(iter(columns.values())))

    def add(self, table: str, **row: Any) -> None:
        cols = self._cols[table]
        n = self._rows[table]
        for k, v in row.items():
            col = cols[k]
            if len(col) < n:  # a column this table's earlier rows did not set
                col.extend([None] * (n - len(col)))
            col.append(v)
        self._rows[table] = n + 1
        self.counts[table] += 1

    def flush(self) -> None:
        for table, cols in self._cols.items():
            n = self._rows[table]
            if not n:
                continue
            for col in cols.values():
                if len(col) < n:
                    col.extend([None] * (n - len(col)))
            self.writer.append(table, dict(cols))
        for table, columns in self._batches:
            self.writer.append(table, columns)
        self._batches.clear()
        self._cols.clear()
        self._rows.clear()
        self.writer.flush()
