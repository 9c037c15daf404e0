"""Compare (`c`, with `--against REAL`): why the emulated run's time differs from the real one.

Top: end-to-end deltas (total, per iteration, TTFT/TPOT where marked, host and barrier time).
Middle: kernel families sorted by their share of the gap. Bottom: the two timelines, one above
the other, relative to each trace's start; zooming or panning one moves the other the same way.
The alignment and attribution run in a worker (`revati.replay.attribution.compare_traces`).
"""

from __future__ import annotations

from revati.replay.attribution import Comparison, compare_traces
from revati.tui.format import fmt_ns, fmt_pct
from revati.tui.session import TraceSession
from revati.tui.widgets.timeline import Timeline
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static


class CompareScreen(Screen[None]):
    """Emulated trace (top) against a real-GPU trace (bottom)."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("tab", "focus_next", "Next pane", show=False),
    ]

    def __init__(self, emulated: TraceSession, real: TraceSession) -> None:
        super().__init__()
        self.emulated = emulated
        self.real = real
        self.comparison: Comparison | None = None

    def compose(self) -> ComposeResult:
        assert self.emulated.model is not None and self.real.model is not None
        yield Static("aligning the two traces…", id="compare-title")
        yield DataTable(id="compare-summary", cursor_type="row")
        yield DataTable(id="families", cursor_type="row", zebra_stripes=True)
        yield Timeline(
            self.emulated.model, title=f"emulated: {self.emulated.name}", id="tl-emulated"
        )
        yield Timeline(self.real.model, title=f"real: {self.real.name}", id="tl-real")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#compare-summary", DataTable).add_columns(
            "figure", "emulated", "real", "delta", "error"
        )
        self.query_one("#families", DataTable).add_columns(
            "family",
            "matched",
            "extra",
            "missing",
            "predicted mean",
            "measured mean",
            "error",
            "gap",
            "share",
        )
        self.compute()

    @work(thread=True, exclusive=True, group="compare")
    def compute(self) -> None:
        with self.emulated.lock, self.real.lock:
            comparison = compare_traces(self.emulated.reader, self.real.reader)
        self.app.call_from_thread(self.show, comparison)

    def show(self, c: Comparison) -> None:
        self.comparison = c
        self.query_one("#compare-title", Static).update(
            f"[b]Compare[/b] {self.emulated.name} (emulated) vs {self.real.name} (real) — "
            f"{c.matched} device ops matched, {c.extra} extra, {c.missing} missing, "
            f"{len(c.alignments)} stream pairs"
        )
        summary = self.query_one("#compare-summary", DataTable)
        for d in c.deltas:
            summary.add_row(
                d.label,
                fmt_ns(d.emulated_ns),
                fmt_ns(d.real_ns),
                fmt_ns(d.delta_ns, signed=True),
                fmt_pct(d.error_pct),
            )
        families = self.query_one("#families", DataTable)
        for f in c.families:
            families.add_row(
                f.family,
                str(f.count),
                str(f.extra),
                str(f.missing),
                fmt_ns(f.emulated_mean_ns),
                fmt_ns(f.real_mean_ns),
                fmt_pct(f.error_pct),
                fmt_ns(f.delta_ns, signed=True),
                f"{100 * f.share:+.1f}%",
            )
        families.focus()

    def on_timeline_window_changed(self, message: Timeline.WindowChanged) -> None:
        """Keep the two timelines in step (same offset from each trace's start, same span)."""
        for tl in self.query(Timeline):
            if tl is not message.timeline:
                start = tl.model.t_min + message.offset
                tl.set_window(start, start + message.span, announce=False)

    def action_back(self) -> None:
        self.dismiss(None)
