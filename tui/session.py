"""TraceSession: one open trace with its cursor and timeline model (no textual here).

Opening validates the file (a clear `RevatiTraceError` for a missing or non-trace file);
`load()` does the heavy work (event index, lanes, barriers) and runs in a worker thread.
DuckDB queries from worker threads go through `lock`; stepping uses only the numpy index.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from revati.recorder.reader import TraceReader, open_trace
from revati.replay.cursor import ReplayCursor
from revati.tui.timeline_model import TimelineModel


class TraceSession:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.reader: TraceReader = open_trace(self.path)
        self.lock = threading.Lock()
        self.cursor: ReplayCursor | None = None
        self.model: TimelineModel | None = None

    def load(self) -> None:
        """Build the event index, the cursor and the timeline lanes (slow on big traces)."""
        with self.lock:
            self.model = TimelineModel(self.reader)
            self.cursor = ReplayCursor(self.reader)

    @property
    def name(self) -> str:
        return self.path.name

    def close(self) -> None:
        self.reader.close()
