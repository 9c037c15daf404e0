"""TraceSession: one open trace with its cursor and timeline model (no textual here).

Opening validates the file (a clear `RevatiTraceError` for a missing or non-trace file);
`load()` does the heavy work (event index, lanes, barriers) and runs in a worker thread.
For a big trace (at least `overview_min_events` events) `load_overview()` first reads the coarse
timeline written at close (one small table, tens of milliseconds), so the timeline is on screen
while `load()` runs. DuckDB queries from worker threads go through `lock`; stepping uses only
the numpy index.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from revati.recorder import event_order
from revati.recorder.reader import TraceReader, open_trace
from revati.replay.cursor import ReplayCursor
from revati.tui.timeline_model import OverviewModel, TimelineModel

# Below this many events the full load takes well under a second: no overview frame.
OVERVIEW_MIN_EVENTS = 1_000_000


class TraceSession:
    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        overview_min_events: int = OVERVIEW_MIN_EVENTS,
        name: str | None = None,
    ) -> None:
        self.path = Path(path)
        self._name = name  # shown instead of the file name (a live snapshot's trace)
        self.live: str | None = None  # set on a live snapshot: who is recording it
        self.reader: TraceReader = open_trace(self.path)
        self.lock = threading.Lock()
        self.cursor: ReplayCursor | None = None
        self.model: TimelineModel | None = None
        self.overview: OverviewModel | None = None
        self.overview_min_events = overview_min_events
        self.events_total: int | None = None  # from the meta table, before the index loads
        # Set once the overview frame is painted: the loading worker waits for it, so the
        # index load does not compete with that frame for the GIL.
        self.overview_shown = threading.Event()

    def load_overview(self) -> OverviewModel | None:
        """The coarse first-frame model of a big trace, or None (small trace, no overview)."""
        with self.lock:
            rows = self.events_total = event_order.stored_rows(self.reader.con)
            if rows is None or rows < self.overview_min_events:
                return None
            ov = self.reader.overview()
            if ov is None:
                return None
            self.overview = OverviewModel(ov, self.reader.tracks())
        return self.overview

    def load(self) -> None:
        """Build the event index, the cursor and the timeline lanes (slow on big traces)."""
        with self.lock:
            self.model = TimelineModel(self.reader)
            self.cursor = ReplayCursor(self.reader)

    @property
    def name(self) -> str:
        return self._name or self.path.name

    def close(self) -> None:
        self.reader.close()
