"""Pilot-driven behaviour of the debugger on a fixed two-rank trace."""

from __future__ import annotations

from revati.tui.app import RevatiApp
from revati.tui.screens.barriers import BarrierScreen
from revati.tui.screens.compare import CompareScreen
from revati.tui.screens.help import HelpScreen
from revati.tui.screens.timeline import TimelineScreen
from revati.tui.session import TraceSession
from revati.tui.widgets.timeline import Timeline

from tests.sample_trace import ELEMENTWISE, GEMM
from tests.tui.conftest import SIZE, settle, sync


def _app(traces, against: bool = False) -> RevatiApp:
    emulated, real = traces
    return RevatiApp(TraceSession(emulated), TraceSession(real) if against else None)


async def _command(pilot, text: str) -> None:
    await pilot.press("colon")
    await pilot.press(*list(text))
    await pilot.press("enter")
    await settle(pilot)


@sync
async def test_steps_land_on_the_right_events(sample_traces):
    app = _app(sample_traces)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, TimelineScreen) and screen.cursor.seq == 0
        await pilot.press("n", "n", "n")
        assert screen.cursor.seq == 3
        await pilot.press("p")
        assert screen.cursor.seq == 2
        await pilot.press("right_square_bracket")
        assert screen.cursor.event.kind == "sync"
        await pilot.press("right_curly_bracket")
        assert screen.cursor.event.kind == "jump"
        await pilot.press("b")
        assert screen.cursor.event.kind == "barrier"
        await pilot.press("B")
        assert screen.cursor.event.kind == "barrier"
        await pilot.press("N")
        assert screen.cursor.event.rank is not None
        timeline = screen.query_one(Timeline)
        assert timeline.cursor_ns == screen.cursor.event.start_ns
        await settle(pilot)
        assert f"event {screen.cursor.seq}" in str(screen.query_one("#state").render())


@sync
async def test_breakpoint_continue_and_reverse_continue(sample_traces):
    app = _app(sample_traces)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        await _command(pilot, "break kernel vectorized_elementwise")
        await _command(pilot, "continue")
        first = screen.cursor.event
        assert first.kind == "kernel" and first.name == ELEMENTWISE
        await _command(pilot, "c")
        second = screen.cursor.event
        assert second.name == ELEMENTWISE and second.seq > first.seq
        await _command(pilot, "rc")
        assert screen.cursor.seq == first.seq
        details = str(screen.query_one("#details").render())
        assert "launched by cudaLaunchKernel" in details and "predicted duration" in details


@sync
async def test_goto_search_filter_and_when(sample_traces):
    app = _app(sample_traces)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        await pilot.press("g", "2", "0", "enter")
        assert screen.cursor.seq == 20
        await pilot.press("g", *"200us", "enter")
        assert screen.cursor.event.start_ns >= 200_000
        await pilot.press("g", "0", "enter", "slash", *"gemm", "enter")
        assert screen.cursor.event.name == GEMM
        await pilot.press("t", *"rank 1", "enter")
        assert [t.rank for t in screen.session.model.tracks] == [1, 1, 1]
        await _command(pilot, "filter")
        assert len(screen.session.model.tracks) == 6
        await _command(pilot, "goto 99999")  # out of range: an error notification, no crash
        assert screen.cursor.event.name == GEMM


@sync
async def test_zoom_pan_fit(sample_traces):
    app = _app(sample_traces)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        timeline = app.screen.query_one(Timeline)
        full = timeline.window
        await pilot.press("w")
        assert timeline.window[1] - timeline.window[0] < full[1] - full[0]
        before = timeline.window
        await pilot.press("d")
        assert timeline.window[0] > before[0]
        await pilot.press("f")
        assert timeline.window == full


@sync
async def test_barrier_inspector_finds_the_straggler_and_jumps_there(sample_traces):
    app = _app(sample_traces)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("i")
        await settle(pilot)
        assert isinstance(app.screen, BarrierScreen)
        story = str(app.screen.query_one("#barrier-story").render())
        assert "rank 1 held everyone up" in story and "straggler" in story
        await pilot.press("t", "down", "enter")
        await settle(pilot)
        assert isinstance(app.screen, TimelineScreen)
        ev = app.screen.cursor.event
        assert ev.kind == "barrier" and ev.ref_id == 2


@sync
async def test_compare_attributes_the_planted_error(sample_traces):
    app = _app(sample_traces, against=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        assert screen.comparison is not None
        assert screen.comparison.families[0].family == "elementwise"
        top, real = (
            screen.query_one("#tl-emulated", Timeline),
            screen.query_one("#tl-real", Timeline),
        )
        top.focus()
        await pilot.press("w", "d")
        assert real.window[0] - real.model.t_min == top.window[0] - top.model.t_min
        assert real.window[1] - real.window[0] == top.window[1] - top.window[0]


@sync
async def test_help_lists_every_binding(sample_traces):
    app = _app(sample_traces)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = " ".join(str(s.render()) for s in app.screen.query("Static"))
        for b in TimelineScreen.BINDINGS:
            assert b.description in text
        assert "reverse-continue" in text
        await pilot.press("escape")
        assert isinstance(app.screen, TimelineScreen)


@sync
async def test_overview_first_then_steppable(sample_traces):
    """A 'big' trace (threshold 0): the timeline comes up from the overview written at close,
    step keys wait for the index, then the full timeline takes over."""
    session = TraceSession(sample_traces[0], overview_min_events=0)
    app = RevatiApp(session)
    async with app.run_test(size=SIZE) as pilot:
        # Wait until the timeline screen is pushed *and* composed (slow on a loaded machine).
        while not isinstance(app.screen, TimelineScreen) or not app.screen.query(Timeline):
            await pilot.pause(0.01)
        screen = app.screen
        timeline = screen.query_one(Timeline)
        assert session.overview is not None
        body = "".join(timeline.render_line(y).text for y in range(2, 8))
        assert any(ch in body for ch in "█▬░")
        while not screen.ready or timeline.model is not session.model:
            await pilot.pause(0.01)
        await settle(pilot)
        before = screen.cursor.seq
        await pilot.press("n")
        await settle(pilot)
        assert screen.cursor.seq == before + 1


@sync
async def test_requests_track_steps_through_request_moments(serving_trace):
    from tests.tui.conftest import SAMPLE_REQUESTS

    app = RevatiApp(TraceSession(serving_trace))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        model = screen.session.model
        # three lanes: #0, #1 and #2 overlap; #3 and then #4 fit after #0
        assert [[b.request_id for b in lane] for lane in model.request_lanes] == [
            [0, 3, 4],
            [1],
            [2],
        ]
        assert [t.label for t in model.tracks[:3]] == [
            "requests 1/3",
            "requests 2/3",
            "requests 3/3",
        ]
        timeline = screen.query_one(Timeline)
        moments = sorted(
            (t, i) for i, r in enumerate(SAMPLE_REQUESTS) for t in r[:3] if t is not None
        )
        for t, request_id in moments[:4]:
            await pilot.press("r")
            await settle(pilot, rounds=2)
            assert timeline.cursor_ns == t and screen.request_id == request_id
        assert timeline.cursor_track == "requests:2"  # #2's arrival is the 4th moment
        await pilot.press("R")
        await settle(pilot, rounds=2)
        assert (timeline.cursor_ns, screen.request_id) == (moments[2][0], 0)  # #0's first token
        assert timeline.cursor_track == "requests:0"
        await pilot.press("x")  # to the first kernel that ran while #0 was in flight
        await settle(pilot, rounds=2)
        ev = screen.cursor.event
        arrival, _, end, _ = SAMPLE_REQUESTS[0]
        assert ev.kind == "kernel" and ev.start_ns < end and ev.end_ns > arrival
        assert model.requests.in_flight(0).kernels > 0
