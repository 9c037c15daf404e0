"""Barrier inspector (`i`): every barrier, sortable; for one, who held everyone up and why.

The table lists barriers (at most MAX_ROWS, after sorting) with their total wait and straggler.
The panel below shows, for the highlighted barrier, each rank's arrival, how long it waited,
and what it did just before arriving: the operation before the collective on its stream and
the last API call of its host thread. Enter jumps the timeline's cursor to the barrier.
"""

from __future__ import annotations

from dataclasses import dataclass

from revati.recorder.reader import BarrierDetail, Event, TraceReader
from revati.tui.format import fmt_ns
from revati.tui.session import TraceSession
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from revati.errors import RevatiTraceError

MAX_ROWS = 5000
# sort key -> (ORDER BY of _ROWS_SQL, label)
SORTS = {
    "wait": ("5 DESC, 4, 1", "total wait"),
    "time": ("4, 1", "release time"),
    "straggler": ("6 NULLS LAST, 5 DESC, 1", "straggler"),
}
_ROWS_SQL = """
SELECT b.barrier_id, coalesce(b.collective, 'barrier'), b.bytes, b.release_ns,
       coalesce(sum(b.release_ns - a.arrival_ns), 0), arg_max(a.rank, a.arrival_ns),
       count(a.barrier_id)
FROM barriers b LEFT JOIN barrier_arrivals a USING (barrier_id)
GROUP BY b.barrier_id, b.collective, b.bytes, b.release_ns
ORDER BY {order} LIMIT {limit}"""


@dataclass(frozen=True)
class BarrierRow:
    """One line of the barrier table (computed in SQL, so 100k barriers stay cheap)."""

    barrier_id: int
    collective: str
    bytes: int | None
    release_ns: int
    total_wait_ns: int
    straggler_rank: int | None
    ranks: int


def barrier_rows(
    reader: TraceReader, sort: str, limit: int = MAX_ROWS
) -> tuple[list[BarrierRow], int]:
    """The first `limit` barriers in `sort` order, and how many barriers there are."""
    rows = reader.sql(_ROWS_SQL.format(order=SORTS[sort][0], limit=int(limit)))
    (total,) = reader.sql("SELECT count(*) FROM barriers")[0]
    return [
        BarrierRow(int(r[0]), r[1], r[2], int(r[3] or 0), int(r[4]), r[5], int(r[6])) for r in rows
    ], int(total)


def arrival_story(reader: TraceReader, barrier: BarrierDetail) -> Text:
    """Each rank's arrival, wait and what it did just before arriving."""
    t = Text()
    t.append(f"barrier #{barrier.barrier_id} {barrier.collective}", style="bold bright_magenta")
    t.append(
        f"  {barrier.bytes or 0} bytes, released at {fmt_ns(barrier.release_ns)}, "
        f"ended at {fmt_ns(barrier.end_ns)}, total wait {fmt_ns(barrier.total_wait_ns)}\n"
    )
    first = barrier.arrivals[0].arrival_ns if barrier.arrivals else barrier.release_ns
    dead = failed_rank(reader, barrier.barrier_id)
    if dead is not None:
        t.append(
            f" rank {dead} died before it arrived: the barrier failed, the others got an error\n",
            style="bold red",
        )
    for a in barrier.arrivals:
        last = a.rank == barrier.straggler_rank and dead is None
        t.append(f" rank {a.rank}", style="bold red" if last else "bold")
        t.append(f" arrived +{fmt_ns(a.arrival_ns - first)}, waited {fmt_ns(a.wait_ns)}")
        t.append("  ← straggler\n" if last else "\n", style="bold red")
        device, host = _before_arrival(reader, a.rank, a.stream_id, a.kernel_id, a.arrival_ns)
        if device is not None:
            t.append(
                f"     device before: {device.name[:70]} ({fmt_ns(device.duration_ns)}, "
                f"ended {fmt_ns(device.end_ns)})\n",
                style="green3",
            )
        if host is not None:
            t.append(
                f"     host at arrival: in {host.name} at {fmt_ns(host.start_ns)} "
                f"({fmt_ns(host.duration_ns)})\n",
                style="dodger_blue2",
            )
    if barrier.straggler_rank is not None and len(barrier.arrivals) > 1 and dead is None:
        gap = barrier.release_ns - barrier.arrivals[-2].arrival_ns
        t.append(
            f" rank {barrier.straggler_rank} held everyone up by {fmt_ns(gap)} "
            f"after the second-to-last arrival\n",
            style="bold",
        )
    return t


def failed_rank(reader: TraceReader, barrier_id: int) -> int | None:
    """The member that died before the barrier was released (traces from before the
    `failed_rank` column have none)."""
    try:
        rows = reader.sql("SELECT failed_rank FROM barriers WHERE barrier_id = ?", [barrier_id])
    except RevatiTraceError:
        return None
    return rows[0][0] if rows else None


def _before_arrival(
    reader: TraceReader,
    rank: int | None,
    stream_id: int | None,
    kernel_id: int | None,
    arrival_ns: int,
) -> tuple[Event | None, Event | None]:
    device = None
    if kernel_id is not None and stream_id is not None:
        try:
            coll = reader.event_for("kernel", kernel_id)
            device = reader.prev_event(coll.seq, track_id=f"stream:{stream_id}")
        except KeyError:
            device = None
    anchor = reader.first_event_at(arrival_ns)
    seq = anchor.seq if anchor is not None else reader.event_count()
    host = reader.prev_event(seq, rank=rank, kinds=["api_call"]) if rank is not None else None
    return device, host


class BarrierScreen(Screen[int | None]):
    """All barriers, sortable; the highlighted one explained below."""

    BINDINGS = [
        Binding("w", "sort('wait')", "Sort by wait"),
        Binding("t", "sort('time')", "Sort by time"),
        Binding("s", "sort('straggler')", "Sort by straggler"),
        Binding("enter", "select", "Go to barrier"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, session: TraceSession) -> None:
        super().__init__()
        self.session = session
        self.rows: list[BarrierRow] = []
        self.sort_key = "wait"

    def compose(self) -> ComposeResult:
        yield Static("loading barriers…", id="barrier-title")
        yield DataTable(id="barrier-table", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="barrier-detail"):
            yield Static(id="barrier-story")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(
            "id", "collective", "bytes", "released", "total wait", "straggler", "ranks"
        )
        self.action_sort("wait")
        table.focus()

    @work(thread=True, exclusive=True, group="barrier-rows")
    def action_sort(self, key: str) -> None:
        with self.session.lock:
            rows, total = barrier_rows(self.session.reader, key)
        self.app.call_from_thread(self._show_rows, key, rows, total)

    def _show_rows(self, key: str, rows: list[BarrierRow], total: int) -> None:
        self.sort_key, self.rows = key, rows
        table = self.query_one(DataTable)
        table.clear()
        for b in rows:
            table.add_row(
                str(b.barrier_id),
                b.collective,
                str(b.bytes or ""),
                fmt_ns(b.release_ns),
                fmt_ns(b.total_wait_ns),
                "" if b.straggler_rank is None else str(b.straggler_rank),
                str(b.ranks),
            )
        shown = f"{len(rows)} of {total}" if total > len(rows) else str(total)
        self.query_one("#barrier-title", Static).update(
            f"[b]Barriers[/b] — {shown}, sorted by {SORTS[key][1]}"
        )
        if rows:
            table.move_cursor(row=0)
            self.explain(rows[0].barrier_id)
        else:
            self.query_one("#barrier-story", Static).update("this trace has no barriers")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self.rows):
            self.explain(self.rows[event.cursor_row].barrier_id)

    @work(thread=True, exclusive=True, group="barrier")
    def explain(self, barrier_id: int) -> None:
        with self.session.lock:
            story = arrival_story(self.session.reader, self.session.reader.barrier(barrier_id))
        self.app.call_from_thread(self._show_story, story)

    def _show_story(self, story: Text) -> None:
        if self.is_attached:
            self.query_one("#barrier-story", Static).update(story)

    def action_select(self) -> None:
        row = self.query_one(DataTable).cursor_row
        if 0 <= row < len(self.rows):
            ev = self.session.reader.event_for("barrier", self.rows[row].barrier_id)
            self.dismiss(ev.seq)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_select()

    def action_back(self) -> None:
        self.dismiss(None)
