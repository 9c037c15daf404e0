"""RevatiApp: the thin Textual app. It loads the trace(s) in a worker, then shows the timeline.

Opening a trace (validation) happens before the app starts, so a missing or non-trace file is a
one-line error on the command line; loading the index and lanes runs in a worker thread behind a
"loading" screen, so the UI never freezes. A big trace shows its timeline at once, drawn from the
overview written at close, and becomes steppable when the worker has loaded the index.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from revati.tui.live import CHECK_EVERY_S, LiveFollow
from revati.tui.session import TraceSession

if TYPE_CHECKING:
    from revati.tui.screens.timeline import TimelineScreen
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from revati.errors import RevatiError


class LoadingScreen(Screen[None]):
    def compose(self) -> ComposeResult:
        yield Static("loading trace…", id="loading")


class RevatiApp(App[None]):
    """Step through a revati trace; optionally compare it with a real-GPU trace."""

    CSS_PATH = "revati.tcss"
    TITLE = "revati"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
    ]

    @dataclass
    class Loaded(Message):
        """The sessions finished loading (or failed with `error`)."""

        error: str | None = None

    class OverviewReady(Message):
        """The coarse overview of a big trace is loaded; the full index is still loading."""

    @dataclass
    class Followed(Message):
        """A newer snapshot of a trace being recorded is loaded (or the complete trace)."""

        session: TraceSession

    def __init__(
        self,
        session: TraceSession,
        against: TraceSession | None = None,
        follow: LiveFollow | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.against = against
        self.follow = follow
        self._overview_screen: TimelineScreen | None = None

    def on_mount(self) -> None:
        self.push_screen(LoadingScreen())
        self.call_after_refresh(self.load)  # paint the first frame before the GIL gets busy

    @work(thread=True, exclusive=True, group="load")
    def load(self) -> None:
        try:
            if self.session.load_overview() is not None:
                self.post_message(self.OverviewReady())
                self.session.overview_shown.wait(timeout=2.0)
            self.session.load()
            if self.against is not None:
                self.against.load()
        except RevatiError as e:
            self.post_message(self.Loaded(str(e)))
            return
        self.post_message(self.Loaded())

    def on_revati_app_overview_ready(self, message: OverviewReady) -> None:
        from revati.tui.screens.timeline import TimelineScreen

        if isinstance(self.screen, LoadingScreen) and self.session.cursor is None:
            self._overview_screen = TimelineScreen(self.session, self.against)
            self.switch_screen(self._overview_screen)

    def on_revati_app_loaded(self, message: Loaded) -> None:
        if message.error is not None:
            self.exit(return_code=3, message=f"revati: error: {message.error}")
            return
        from revati.tui.screens.timeline import TimelineScreen

        overview, self._overview_screen = self._overview_screen, None
        if overview is not None and overview.is_mounted:
            overview.index_loaded()
        else:
            self.switch_screen(TimelineScreen(self.session, self.against))
        if self.follow is not None:
            self.set_interval(CHECK_EVERY_S, self.check_live)

    def check_live(self) -> None:
        if self.follow is not None and not self.follow.finished:
            self.load_newer()

    @work(thread=True, exclusive=True, group="follow")
    def load_newer(self) -> None:
        assert self.follow is not None
        try:
            session = self.follow.newer()
        except RevatiError as e:
            self.call_from_thread(self.notify, str(e), severity="error")
            return
        if session is not None:
            self.post_message(self.Followed(session))

    def on_revati_app_followed(self, message: Followed) -> None:
        """Swap in the newer trace, with the cursor on the same event where it still exists."""
        from revati.tui.screens.timeline import TimelineScreen

        assert self.follow is not None
        screen, new = self.screen, message.session
        if not isinstance(screen, TimelineScreen) or not screen.ready:
            new.close()  # a dialog is open: swap at a later check
            self.follow.shown_mtime, self.follow.finished = 0.0, False
            return
        if new.cursor is not None and screen.cursor.seq < new.reader.event_count():
            new.cursor.goto(screen.cursor.seq)
        # The old session is not closed here: a panel worker may still be reading it; its
        # connection closes when the last reference (the old screen, a worker) goes.
        self.session = new
        self.switch_screen(TimelineScreen(new, self.against))
        if self.follow.finished:
            self.notify(self.follow.status())

    def action_help(self) -> None:
        from revati.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help", "Every key binding and command", self.action_help)
        for title, action in (
            ("Barrier inspector", "barriers"),
            ("Compare with real trace", "compare"),
            ("Fit whole run", "fit"),
        ):
            yield SystemCommand(
                title, f"{title} (timeline screen)", lambda a=action: self._timeline_action(a)
            )

    def _timeline_action(self, action: str) -> None:
        from revati.tui.screens.timeline import TimelineScreen
        from revati.tui.widgets.timeline import Timeline

        screen = self.screen
        if isinstance(screen, TimelineScreen):
            if action == "fit":
                screen.query_one(Timeline).action_fit()
            else:
                getattr(screen, f"action_{action}")()


def run_app(trace: str | Path, against: str | Path | None = None) -> int:
    """Open (and validate) the traces, then run the TUI until the user quits. A trace being
    recorded is followed: the view refreshes as rows land."""
    session, follow = LiveFollow.open(Path(trace))
    other = TraceSession(against) if against is not None else None
    app = RevatiApp(session, other, follow)
    app.run()
    return app.return_code or 0
