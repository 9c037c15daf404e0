"""The help screen (`?`): every key binding of every screen, and the command-line verbs."""

from __future__ import annotations

from revati.tui.command_line import COMMANDS_HELP
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


def bindings_text(title: str, bindings: list) -> str:  # noqa: ANN001
    """A titled two-column list of key and description (markup)."""
    lines = [f"[b]{title}[/b]"]
    for b in bindings:
        if isinstance(b, Binding):
            key = b.key_display or b.key
            lines.append(f"  [bold]{key:<12}[/] {b.description or b.action}")
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    """Key bindings and commands; any of escape, q or ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        from revati.tui.screens.barriers import BarrierScreen
        from revati.tui.screens.compare import CompareScreen
        from revati.tui.screens.timeline import TimelineScreen
        from revati.tui.widgets.timeline import Timeline

        with VerticalScroll(id="help"):
            yield Static("[b]revati debugger — keys[/b]  (escape closes)")
            yield Static(bindings_text("Stepping (timeline screen)", TimelineScreen.BINDINGS))
            yield Static(
                bindings_text(
                    "Timeline view (also the mouse wheel; click selects)", Timeline.BINDINGS
                )
            )
            yield Static(bindings_text("Barrier inspector", BarrierScreen.BINDINGS))
            yield Static(bindings_text("Compare", CompareScreen.BINDINGS))
            yield Static(
                bindings_text(
                    "Everywhere",
                    [
                        Binding("q", "quit", "Quit"),
                        Binding("question_mark", "help", "Help", key_display="?"),
                        Binding("ctrl+p", "command_palette", "Command palette"),
                    ],
                )
            )
            yield Static("[b]Command line (:)[/b]\n" + "\n".join(f"  {c}" for c in COMMANDS_HELP))
