"""The debugger on the trace of `transformers serve` under `revati bench` (tests/serving).

The screen of a serving run is not the same from one recording to the next (host code runs at
real speed, so arrivals and batches move), so this test checks what the requests track holds
and where stepping lands rather than comparing a snapshot; the requests track's look is the
snapshot of tests/tui/test_snapshots.py.
"""

from __future__ import annotations

import duckdb
from revati.tui.app import RevatiApp
from revati.tui.session import TraceSession
from revati.tui.widgets.timeline import Timeline

from tests.serving.hf_serve import NUM_PROMPTS
from tests.tui.conftest import SIZE, settle, sync


@sync
async def test_the_requests_track_of_a_transformers_serve_run(transformers_serve_run):
    trace = transformers_serve_run.trace
    with duckdb.connect(str(trace), read_only=True) as con:
        first_arrival, first_id = con.execute(
            "SELECT arrival_ns, request_id FROM requests ORDER BY arrival_ns, request_id LIMIT 1"
        ).fetchone()
    app = RevatiApp(TraceSession(trace))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        model = screen.session.model
        drawn = sorted(b.request_id for lane in model.request_lanes for b in lane)
        assert len(drawn) == NUM_PROMPTS == len(set(drawn))
        labels = [t.label for t in model.tracks[: len(model.request_lanes)]]
        assert all(label.startswith("requests ") for label in labels)
        timeline = screen.query_one(Timeline)
        await pilot.press("r")  # the first request moment: the first arrival
        await settle(pilot, rounds=2)
        assert (timeline.cursor_ns, screen.request_id) == (first_arrival, first_id)
        await pilot.press("x")  # the first kernel that ran while that request was in flight
        await settle(pilot, rounds=2)
        ev = screen.cursor.event
        bar = next(b for lane in model.request_lanes for b in lane if b.request_id == first_id)
        assert ev.kind == "kernel" and ev.start_ns < bar.end_ns and ev.end_ns > bar.arrival_ns
