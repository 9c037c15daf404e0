"""The home screen: timeline, state at the cursor, details of the event, command line.

Every step moves the cursor (a binary search in the event index, on the UI thread), recentres
the timeline if needed, and refreshes the two panels in a worker (their queries run off the UI
thread; a newer step cancels an older refresh).
"""

from __future__ import annotations

from revati.recorder.reader import Event
from revati.tui.command_line import CommandResult, goto_target, run_command
from revati.tui.format import fmt_ns
from revati.tui.session import TraceSession
from revati.tui.widgets.panels import details_text, state_text
from revati.tui.widgets.timeline import Timeline
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from revati.errors import RevatiError

# Prompt modes of the command line: the key that opens it and its placeholder.
PROMPTS = {
    "command": ": break kernel REGEX · break api REGEX · continue · rc · when · goto N · bookmark NAME",
    "search": "/ regex over API calls and kernels",
    "goto": "g event number, time (1.5ms, 200us, @ns) or bookmark",
    "filter": "track filter regex (empty: all tracks)",
}


class TimelineScreen(Screen[None]):
    """Step through a trace like a debugger."""

    BINDINGS = [
        Binding("n", "step(True)", "Next"),
        Binding("p", "step(False)", "Prev"),
        Binding("N", "step_rank(True)", "Next in rank", key_display="N"),
        Binding("P", "step_rank(False)", "Prev in rank", key_display="P", show=False),
        Binding("right_square_bracket", "step_sync(True)", "Next sync", key_display="]"),
        Binding(
            "left_square_bracket", "step_sync(False)", "Prev sync", key_display="[", show=False
        ),
        Binding("right_curly_bracket", "step_jump(True)", "Next jump", key_display="}"),
        Binding("left_curly_bracket", "step_jump(False)", "Prev jump", key_display="{", show=False),
        Binding("b", "step_barrier(True)", "Next barrier"),
        Binding("B", "step_barrier(False)", "Prev barrier", key_display="B", show=False),
        Binding("r", "step_request(True)", "Next request event", show=False),
        Binding("R", "step_request(False)", "Prev request event", key_display="R", show=False),
        Binding("x", "request_kernels", "Kernels of request", show=False),
        Binding("g", "prompt('goto')", "Go to"),
        Binding("colon", "prompt('command')", "Command", key_display=":"),
        Binding("slash", "prompt('search')", "Search", key_display="/"),
        Binding("t", "prompt('filter')", "Track filter", show=False),
        Binding("m", "bookmark", "Bookmark", show=False),
        Binding("i", "barriers", "Barriers"),
        Binding("c", "compare", "Compare"),
        Binding("question_mark", "app.help", "Help", key_display="?"),
        Binding("escape", "close_prompt", "Close prompt", show=False),
    ]

    def __init__(self, session: TraceSession, against: TraceSession | None = None) -> None:
        super().__init__()
        self.session = session
        self.against = against
        self.prompt_mode = "command"
        self.last_search: str | None = None
        self.request_id: int | None = None  # the request last stepped to
        self.request_moment: int | None = None  # and the index of that moment

    @property
    def cursor(self):  # noqa: ANN201 (ReplayCursor; always set once loaded)
        assert self.session.cursor is not None
        return self.session.cursor

    @property
    def ready(self) -> bool:
        """False while only the overview of a big trace is loaded (no cursor yet)."""
        return self.session.cursor is not None

    def compose(self) -> ComposeResult:
        model = self.session.model if self.session.model is not None else self.session.overview
        assert model is not None
        yield Static(id="status")
        yield Timeline(model, title=self.session.name, id="timeline")
        with Horizontal(id="panels"):
            with VerticalScroll(id="state-box"):
                yield Static(id="state")
            with VerticalScroll(id="details-box"):
                yield Static(id="details")
        yield Input(id="prompt")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#prompt", Input).display = False
        self.query_one("#state-box").border_title = "state at cursor"
        self.query_one("#details-box").border_title = "event"
        self.query_one(Timeline).focus()
        if self.ready and self.query_one(Timeline).model is self.session.model:
            self.moved()
        else:
            total = self.session.events_total or 0
            self.query_one("#status", Static).update(
                Text(f" overview · indexing {total:,} events… ", style="bold black on grey70")
            )
            self.call_after_refresh(self.session.overview_shown.set)

    def index_loaded(self) -> None:
        """The worker finished loading: swap in the full timeline and show the cursor."""
        assert self.session.model is not None
        timeline = self.query_one(Timeline)
        timeline.model = self.session.model
        timeline.refresh_model()
        self.moved()

    # Actions that need the cursor (the event index); disabled while only the overview is shown.
    NEEDS_INDEX = frozenset(
        {
            "step",
            "step_rank",
            "step_sync",
            "step_jump",
            "step_barrier",
            "step_request",
            "request_kernels",
            "prompt",
            "bookmark",
            "barriers",
            "compare",
        }
    )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.ready or action not in self.NEEDS_INDEX

    # ---- cursor movement -----------------------------------------------------------------------

    def moved(self, note: str = "") -> None:
        """Show the cursor's event everywhere: status line, timeline, panels."""
        ev = self.cursor.event
        self.query_one(Timeline).follow(ev.start_ns, ev.track_id)
        status = Text()
        if self.session.live:
            status.append(f" {self.session.live} ", style="bold white on red3")
        status.append(f" event {ev.seq}/{self.cursor.count - 1} ", style="bold black on gold1")
        status.append(f" t={fmt_ns(ev.start_ns)} ", style="bold")
        if not ev.name.startswith(ev.kind):  # "sync copy", "jump (copy)" name their kind
            status.append(f"{ev.kind} ", style="grey62")
        status.append(ev.name[:80])
        if note:
            status.append(f"   {note}", style="italic")
        self.query_one("#status", Static).update(status)
        self.refresh_panels(ev)

    def _moved_or_say(self, ev: Event | None, what: str) -> None:
        if ev is None:
            self.notify(f"no {what} in that direction", severity="warning", timeout=2)
        else:
            self.moved()

    def action_step(self, forward: bool) -> None:
        self._moved_or_say(self.cursor.step(forward), "event")

    def action_step_rank(self, forward: bool) -> None:
        self._moved_or_say(self.cursor.step_rank(forward), "event in this rank")

    def action_step_sync(self, forward: bool) -> None:
        self._moved_or_say(self.cursor.step_sync(forward), "sync")

    def action_step_jump(self, forward: bool) -> None:
        self._moved_or_say(self.cursor.step_jump(forward), "jump")

    def action_step_barrier(self, forward: bool) -> None:
        self._moved_or_say(self.cursor.step_barrier(forward), "barrier")

    def action_step_request(self, forward: bool) -> None:
        """To the next (previous) arrival, first token or end of a request."""
        model = self.session.model
        assert model is not None
        here = self.query_one(Timeline).cursor_ns
        t_now = here if here is not None else self.cursor.event.start_ns
        moment = model.requests.step(t_now, forward, self.request_moment)
        if moment is None:
            self.notify("no request event in that direction", severity="warning", timeout=2)
            return
        self.request_moment, t, request_id, what = moment
        self.request_id = request_id
        flight = model.requests.in_flight(request_id)
        self.cursor.goto_time(t)
        self.moved(
            f"request #{request_id} {what} at {fmt_ns(t)}; in flight meanwhile: "
            f"{flight.kernels:,} kernels, {flight.syncs:,} syncs (x: go to them)"
        )
        self.query_one(Timeline).follow(t, model.request_track(request_id))

    def action_request_kernels(self) -> None:
        """From the request last stepped to, to the first kernel that ran while it was in flight."""
        model = self.session.model
        if self.request_id is None or model is None:
            self.notify("step to a request first (r)", severity="warning", timeout=2)
            return
        first = model.requests.in_flight(self.request_id).first_kernel_ns
        if first is None:
            self.notify("no kernel ran while it was in flight", severity="warning", timeout=2)
            return
        self.cursor.goto_time(first)
        ev = self.cursor.event
        if ev.kind != "kernel":
            self.cursor.step(True, kinds=("kernel",))
        self.moved(f"first kernel while request #{self.request_id} was in flight")

    def action_bookmark(self) -> None:
        name = f"m{len(self.cursor.bookmarks) + 1}"
        self.cursor.bookmark(name)
        self.notify(f"bookmark {name} = event {self.cursor.seq}", timeout=2)

    def goto_event(self, seq: int) -> None:
        self.cursor.goto(seq)
        self.moved()

    # ---- panels (worker) -----------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="panels")
    def refresh_panels(self, ev: Event) -> None:
        reader = self.session.reader
        with self.session.lock:
            state = self.cursor.state()
            row = reader.details(ev)
            linked = _launched(reader, ev) if ev.kind == "api_call" else []
        self.app.call_from_thread(
            self._show_panels, state_text(state), details_text(ev, row, linked)
        )

    def _show_panels(self, state: Text, details: Text) -> None:
        if not self.is_attached or not self.is_mounted:
            return  # the screen went away while the worker ran
        self.query_one("#state", Static).update(state)
        self.query_one("#details", Static).update(details)

    # ---- the prompt ----------------------------------------------------------------------------

    def action_prompt(self, mode: str) -> None:
        prompt = self.query_one("#prompt", Input)
        self.prompt_mode = mode
        prompt.placeholder = PROMPTS[mode]
        prompt.value = ""
        prompt.display = True
        prompt.focus()

    def action_close_prompt(self) -> None:
        prompt = self.query_one("#prompt", Input)
        prompt.display = False
        self.query_one(Timeline).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_close_prompt()
        text = event.value.strip()
        if self.prompt_mode == "search":
            self.last_search = text
            result = run_command(self.cursor, f"search {text}")
        elif self.prompt_mode == "goto":
            result = self._safe(lambda: goto_target(self.cursor, text))
        elif self.prompt_mode == "filter":
            result = run_command(self.cursor, f"filter {text}")
        else:
            result = run_command(self.cursor, text)
        self.apply(result)

    def _safe(self, fn) -> CommandResult:  # noqa: ANN001
        try:
            return fn()
        except RevatiError as e:
            return CommandResult(str(e), error=True)

    def apply(self, result: CommandResult) -> None:
        if result.filter is not None:
            model = self.session.model
            assert model is not None
            n = model.set_filter(result.filter or None)
            self.query_one(Timeline).refresh_model()
            result = CommandResult(f"{result.message}: {n} tracks", moved=True)
        if result.moved:
            self.moved(result.message)
        if result.message:
            self.notify(
                result.message, severity="error" if result.error else "information", timeout=4
            )

    # ---- other screens -------------------------------------------------------------------------

    def action_barriers(self) -> None:
        from revati.tui.screens.barriers import BarrierScreen

        self.app.push_screen(BarrierScreen(self.session), self._after_barriers)

    def _after_barriers(self, seq: int | None) -> None:
        if seq is not None:
            self.goto_event(seq)

    def action_compare(self) -> None:
        if self.against is None:
            self.notify(
                "no real trace to compare with; start with `revati tui TRACE --against REAL`",
                severity="warning",
                timeout=4,
            )
            return
        from revati.tui.screens.compare import CompareScreen

        self.app.push_screen(CompareScreen(self.session, self.against))

    def on_timeline_clicked(self, message: Timeline.Clicked) -> None:
        if not self.ready:
            return
        reader = self.session.reader
        tracks = [message.track_id] if message.track_id else None
        hits = reader.events_in_window(message.t_ns, message.t_ns, track_ids=tracks, limit=1)
        ev = hits[0] if hits else reader.first_event_at(message.t_ns)
        if ev is not None:
            self.goto_event(ev.seq)


def _launched(reader, ev: Event) -> list[Event]:  # noqa: ANN001
    """Device operations an API call launched (the link from a launch to its kernel)."""
    rows = reader.sql(
        "SELECT 'kernel', kernel_id FROM kernels WHERE call_id = ? UNION ALL "
        "SELECT 'copy', copy_id FROM copies WHERE call_id = ? UNION ALL "
        "SELECT 'memset', memset_id FROM memsets WHERE call_id = ? LIMIT 8",
        [ev.ref_id] * 3,
    )
    out = []
    for kind, ref in rows:
        try:
            out.append(reader.event_for(kind, int(ref)))
        except KeyError:
            continue
    return out
