"""Timeline: tracks over a virtual-time axis, drawn line by line from a TimelineModel.

Row 0 is the time axis, row 1 marks clock jumps (↷) and barrier releases (┳); then one row per
track (threads: API calls ▬, blocked periods ░ labelled with what they wait for; streams: device
operations █ coloured by kernel family; barriers: ┃ at the release on every rank taking part, ◆
at each rank's arrival). The cursor is a highlighted column. W/S or ↑/↓ or the wheel zoom, A/D or
←/→ pan, f fits the whole run, PageUp/PageDown scroll the tracks.
"""

from __future__ import annotations

from dataclasses import dataclass

from revati.tui.timeline_model import Cell, TimelineModel
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

HEADER_ROWS = 2
MIN_SPAN_NS = 10

STYLES: dict[str, Style] = {
    "empty": Style(),
    "axis": Style(color="grey62"),
    "label": Style(color="grey85"),
    "label-cursor": Style(color="black", bgcolor="gold1", bold=True),
    "call": Style(color="dodger_blue2"),
    "blocked": Style(color="indian_red", bgcolor="grey15"),
    "sync": Style(color="indian_red"),
    "nvtx": Style(color="grey50"),
    "marker": Style(color="yellow", bold=True),
    "gemm": Style(color="green3"),
    "attention": Style(color="medium_purple1"),
    "collective": Style(color="magenta"),
    "memcpy": Style(color="orange1"),
    "memset": Style(color="tan"),
    "elementwise": Style(color="cyan"),
    "barrier": Style(color="bright_magenta", bold=True),
    "jump": Style(color="yellow", bold=True),
    "request": Style(color="spring_green2"),
    "request-first": Style(color="black", bgcolor="spring_green2", bold=True),
    "request-failed": Style(color="red1"),
}
CURSOR = Style(bgcolor="gold3", color="black")


def _style(name: str) -> Style:
    base = STYLES.get(name.removesuffix("-text"))
    if base is None:
        return STYLES["empty"]
    if name.endswith("-text"):
        return (
            Style(color="black", bgcolor=base.color, bold=True) if name != "blocked-text" else base
        )
    return base


class Timeline(Widget, can_focus=True):
    """Per-track timeline of one trace with a cursor column."""

    BINDINGS = [
        Binding("w,up", "zoom(0.5)", "Zoom in", show=False),
        Binding("s,down", "zoom(2.0)", "Zoom out", show=False),
        Binding("a,left", "pan(-0.25)", "Pan left", show=False),
        Binding("d,right", "pan(0.25)", "Pan right", show=False),
        Binding("f", "fit", "Fit"),
        Binding("pageup", "scroll_tracks(-1)", "Tracks up", show=False),
        Binding("pagedown", "scroll_tracks(1)", "Tracks down", show=False),
    ]
    DEFAULT_CSS = """
    Timeline { height: 1fr; min-height: 6; }
    Timeline:focus { background: $surface; }
    """

    window: reactive[tuple[int, int]] = reactive((0, 1), layout=False)
    """The visible virtual-time window [start, end) in ns."""
    cursor_ns: reactive[int | None] = reactive(None)
    """Virtual time of the cursor event (drawn as a highlighted column)."""
    cursor_track: reactive[str | None] = reactive(None)
    """Track of the cursor event (its label is highlighted)."""

    @dataclass
    class WindowChanged(Message):
        """The user zoomed or panned; `offset` is the window start minus the trace start."""

        timeline: Timeline
        offset: int
        span: int

    @dataclass
    class Clicked(Message):
        timeline: Timeline
        t_ns: int
        track_id: str | None

    def __init__(self, model: TimelineModel, *, title: str = "", id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = model
        self.title = title
        self.track_offset = 0
        self.set_reactive(
            Timeline.window, (model.t_min, max(model.t_max, model.t_min + MIN_SPAN_NS))
        )

    # ---- geometry ------------------------------------------------------------------------------

    @property
    def label_width(self) -> int:
        return max(12, min(30, self.size.width // 4))

    @property
    def body_width(self) -> int:
        return max(1, self.size.width - self.label_width)

    def visible_rows(self) -> int:
        return max(0, self.size.height - HEADER_ROWS)

    def track_row(self, track_id: str) -> int | None:
        for i, t in enumerate(self.model.tracks):
            if t.track_id == track_id:
                return i
        return None

    # ---- drawing -------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width, lw = self.body_width, self.label_width
        t0, t1 = self.window
        if y == 0:
            label, cells = self.title or "time", self.model.axis_cells(t0, t1, width)
        elif y == 1:
            label, cells = "jumps · barriers", self.model.jump_cells(t0, t1, width)
        else:
            row = y - HEADER_ROWS + self.track_offset
            if row >= len(self.model.tracks):
                return Strip.blank(self.size.width)
            track = self.model.tracks[row]
            label, cells = track.label, self.model.row_cells(track, t0, t1, width)
            if track.track_id == self.cursor_track:
                return self._strip(label, cells, lw, "label-cursor")
        return self._strip(label, cells, lw, "label", header=y < HEADER_ROWS)

    def _strip(
        self, label: str, cells: list[Cell], lw: int, label_style: str, header: bool = False
    ) -> Strip:
        text = (label[: lw - 1] if len(label) >= lw else label).ljust(lw)
        segs = [Segment(text, STYLES[label_style])]
        ccol = None
        if self.cursor_ns is not None:
            t0, t1 = self.window
            ccol = self.model.column_of(self.cursor_ns, t0, t1, len(cells))
        run_text, run_style = [], None
        for c, (ch, style_name) in enumerate(cells):
            style = _style(style_name)
            if c == ccol:
                style = style + CURSOR
                ch = "▼" if header and ch == " " else ch
            if style is not run_style and run_text:
                segs.append(Segment("".join(run_text), run_style))
                run_text = []
            run_style = style
            run_text.append(ch)
        if run_text:
            segs.append(Segment("".join(run_text), run_style))
        return Strip(segs, lw + len(cells))

    def watch_window(self) -> None:
        self.refresh()

    def watch_cursor_ns(self) -> None:
        self.refresh()

    def watch_cursor_track(self) -> None:
        self.refresh()

    # ---- moving the view -----------------------------------------------------------------------

    def set_window(self, t0: int, t1: int, *, announce: bool = True) -> None:
        full = max(self.model.t_max - self.model.t_min, MIN_SPAN_NS)
        span = min(max(t1 - t0, MIN_SPAN_NS), full * 2)
        t0 = min(max(t0, self.model.t_min - span // 2), self.model.t_max - span // 2)
        self.window = (int(t0), int(t0 + span))
        if announce:
            self.post_message(self.WindowChanged(self, self.window[0] - self.model.t_min, span))

    def action_zoom(self, factor: float, around: int | None = None) -> None:
        t0, t1 = self.window
        if around is None:
            around = (
                self.cursor_ns
                if self.cursor_ns is not None and t0 <= self.cursor_ns < t1
                else (t0 + t1) // 2
            )
        span = (t1 - t0) * factor
        frac = (around - t0) / max(t1 - t0, 1)
        start = around - span * frac
        self.set_window(int(start), int(start + span))

    def action_pan(self, fraction: float) -> None:
        t0, t1 = self.window
        shift = int((t1 - t0) * fraction)
        self.set_window(t0 + shift, t1 + shift)

    def action_fit(self) -> None:
        self.set_window(self.model.t_min, max(self.model.t_max, self.model.t_min + MIN_SPAN_NS))

    def action_scroll_tracks(self, pages: int) -> None:
        step = max(1, self.visible_rows() - 1) * pages
        last = max(0, len(self.model.tracks) - self.visible_rows())
        self.track_offset = min(max(0, self.track_offset + step), last)
        self.refresh()

    def follow(self, t_ns: int, track_id: str | None) -> None:
        """Show the cursor at t_ns on `track_id`, recentring / scrolling only if it is off screen."""
        t0, t1 = self.window
        if not t0 <= t_ns < t1:
            span = t1 - t0
            self.set_window(t_ns - span // 2, t_ns - span // 2 + span)
        if track_id is not None:
            row = self.track_row(track_id)
            rows = self.visible_rows()
            if row is not None and rows and not self.track_offset <= row < self.track_offset + rows:
                self.track_offset = max(0, row - rows // 2)
        self.cursor_ns = t_ns
        self.cursor_track = track_id
        self.refresh()

    def refresh_model(self) -> None:
        self.track_offset = 0
        self.refresh()

    # ---- mouse ---------------------------------------------------------------------------------

    def _time_at(self, x: int) -> int:
        t0, t1 = self.window
        return int(t0 + (x - self.label_width) * (t1 - t0) / self.body_width)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.action_zoom(0.5, around=self._time_at(max(event.x, self.label_width)))

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self.action_zoom(2.0, around=self._time_at(max(event.x, self.label_width)))

    def on_click(self, event: events.Click) -> None:
        if event.x < self.label_width or event.y < HEADER_ROWS:
            return
        row = event.y - HEADER_ROWS + self.track_offset
        track = self.model.tracks[row].track_id if row < len(self.model.tracks) else None
        self.post_message(self.Clicked(self, self._time_at(event.x), track))
