"""SVG snapshots of every screen at a fixed terminal size on a fixed trace.

Update after an intended visual change with `pytest tests/tui --snapshot-update`.
"""

from __future__ import annotations

from revati.tui.app import RevatiApp
from revati.tui.session import TraceSession

from tests.tui.conftest import SIZE, settle


def _app(traces, against: bool = False) -> RevatiApp:
    emulated, real = traces
    return RevatiApp(TraceSession(emulated), TraceSession(real) if against else None)


def _then(*keys: str):
    async def run_before(pilot) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot, rounds=2)

    return run_before


def test_timeline_screen(snap_compare, sample_traces):
    keys = ("n",) * 10 + ("right_square_bracket",)
    assert snap_compare(_app(sample_traces), terminal_size=SIZE, run_before=_then(*keys))


def test_timeline_zoomed_with_prompt(snap_compare, sample_traces):
    keys = ("b", "w", "w", "colon", "b", "r", "e", "a", "k")
    assert snap_compare(_app(sample_traces), terminal_size=SIZE, run_before=_then(*keys))


def test_barrier_screen(snap_compare, sample_traces):
    assert snap_compare(_app(sample_traces), terminal_size=SIZE, run_before=_then("i"))


def test_compare_screen(snap_compare, sample_traces):
    assert snap_compare(
        _app(sample_traces, against=True), terminal_size=SIZE, run_before=_then("c")
    )


def test_help_screen(snap_compare, sample_traces):
    assert snap_compare(_app(sample_traces), terminal_size=SIZE, run_before=_then("question_mark"))


def test_requests_track(snap_compare, serving_trace):
    app = RevatiApp(TraceSession(serving_trace))
    assert snap_compare(app, terminal_size=SIZE, run_before=_then("r", "r", "r"))
