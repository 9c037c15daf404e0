"""TUI benchmark: first frame and step latency on a 10-million-event trace.

Run:  .venv/bin/pytest tests/bench/test_tui_bench.py -s
Size: REVATI_BENCH_EVENTS (default 10_000_000 events, `revati synth`), or REVATI_BENCH_TRACE=path
      to reuse an existing trace. Figures are printed; the test asserts that every step lands on
      the right event and that the timeline is drawn, never a speed.

A step, as timed here, is what the UI thread does for one key: the cursor move (index search),
the status line, and redrawing every timeline line (the panels' queries run in a worker).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from revati.recorder.synth import synthesize
from revati.tui.app import RevatiApp
from revati.tui.screens.timeline import TimelineScreen
from revati.tui.session import TraceSession
from revati.tui.widgets.timeline import Timeline

pytestmark = pytest.mark.bench

EVENTS = int(float(os.environ.get("REVATI_BENCH_EVENTS", "1e7")))
SIZE = (160, 48)
REPEATS = 30
STEPS = {
    "n": ("step", True),
    "p": ("step", False),
    "N": ("step_rank", True),
    "P": ("step_rank", False),
    "]": ("step_sync", True),
    "[": ("step_sync", False),
    "}": ("step_jump", True),
    "{": ("step_jump", False),
    "b": ("step_barrier", True),
    "B": ("step_barrier", False),
}


@pytest.fixture(scope="module")
def big_trace(tmp_path_factory) -> Path:
    given = os.environ.get("REVATI_BENCH_TRACE")
    if given:
        return Path(given)
    path = tmp_path_factory.mktemp("tui-bench") / "big.duckdb"
    t0 = time.perf_counter()
    summary = synthesize(path, ranks=4, events=EVENTS, seed=1)
    print(f"\nsynth: {summary.events:,} events in {time.perf_counter() - t0:.1f} s")
    return path


def _draw(timeline: Timeline) -> int:
    return sum(len(timeline.render_line(y)) for y in range(timeline.size.height))


def test_first_frame_and_step_latency(big_trace: Path) -> None:
    asyncio.run(_bench(big_trace))


async def _bench(path: Path) -> None:
    t0 = time.perf_counter()
    app = RevatiApp(TraceSession(path))
    async with app.run_test(size=SIZE) as pilot:
        first_frame = time.perf_counter() - t0  # run_test yields once the first frame is painted
        assert app.screen.query_one("#loading") is not None or isinstance(
            app.screen, TimelineScreen
        )
        while not isinstance(app.screen, TimelineScreen):
            await asyncio.sleep(0.002)
        screen = app.screen
        overview = not screen.ready
        if overview:  # painted: the screen sets this after its first refresh
            while not screen.session.overview_shown.is_set():
                await asyncio.sleep(0.002)
        else:
            await pilot.pause()
        on_screen = time.perf_counter() - t0
        timeline = screen.query_one(Timeline)
        assert _draw(timeline) > 0
        if overview:  # the overview frame: every track row drawn, some of it painted
            body = [timeline.render_line(y).text for y in range(2, timeline.size.height)]
            assert sum(ch in "█▬░" for line in body for ch in line) > 0
        while not (isinstance(app.screen, TimelineScreen) and app.screen.ready):
            await asyncio.sleep(0.005)
        await pilot.pause()
        screen = app.screen
        timeline = screen.query_one(Timeline)
        while timeline.model is not screen.session.model:
            await asyncio.sleep(0.005)
        assert _draw(timeline) > 0
        ready = time.perf_counter() - t0
        count = screen.cursor.count
        print(f"\ntrace: {count:,} events, {len(timeline.model.tracks)} tracks")
        print(f"first frame (loading screen): {first_frame * 1e3:.0f} ms")
        print(
            f"timeline on screen:           {on_screen * 1e3:.0f} ms "
            f"({'overview written at close' if overview else 'full index'})"
        )
        print(f"index loaded, steppable:      {ready * 1e3:.0f} ms")
        screen.cursor.goto(count // 2)
        worst = 0.0
        for key, (action, forward) in STEPS.items():
            times = []
            for _ in range(REPEATS):
                before = screen.cursor.seq
                a = time.perf_counter()
                getattr(screen, f"action_{action}")(forward)
                _draw(timeline)
                times.append(time.perf_counter() - a)
                after = screen.cursor.event
                assert after.seq > before if forward else after.seq < before
                assert timeline.cursor_ns == after.start_ns
            times.sort()
            worst = max(worst, times[-1])
            print(
                f"step {key}: median {times[len(times) // 2] * 1e3:6.2f} ms, "
                f"max {times[-1] * 1e3:6.2f} ms"
            )
        screen.cursor.add_breakpoint("kernel", "flash|attention")
        a = time.perf_counter()
        hit = screen.cursor.continue_()
        screen.moved()
        _draw(timeline)
        cont = time.perf_counter() - a
        assert hit is not None and hit[0].kind == "kernel"
        print(f"continue to breakpoint: {cont * 1e3:.2f} ms")
        a = time.perf_counter()
        state = screen.cursor.state()
        print(
            f"state panel (worker) query: {(time.perf_counter() - a) * 1e3:.1f} ms, "
            f"{len(state.threads)} threads, {len(state.streams)} streams"
        )
        print(f"worst step: {worst * 1e3:.2f} ms")
        app.workers.cancel_all()
