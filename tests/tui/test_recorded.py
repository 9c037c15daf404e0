"""The debugger on traces that `revati record` wrote (not synthetic ones).

The snapshot needs a screen that does not change between recordings: a recording's pids, wall
clock and host-side virtual times vary (host code runs at real speed between CUDA calls), but
its device timeline does not — the example's 100 kernels run back to back with predicted
durations. So the snapshot trace keeps the recorded device tables (streams, kernels) with the
pid fixed and times re-based so the first kernel starts at 1 ms.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from revati.recorder.reader import open_trace
from revati.tui.app import RevatiApp
from revati.tui.session import TraceSession

from tests.integration.record_helpers import build_modes, run_cli
from tests.tui.conftest import SIZE, settle, sync
from tests.tui.device_views import BASE_NS, KERNEL_COLUMNS, device_tables, rows, write_view


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    trace = tmp_path_factory.mktemp("recorded") / "example.duckdb"
    rec = run_cli("record", "-o", str(trace), "--example")
    assert rec.returncode == 0, rec.stderr
    return trace


@pytest.fixture(scope="module")
def device_view(recorded, tmp_path_factory) -> Path:
    """The recorded device timeline with the pid fixed and times re-based (see the docstring)."""
    out = tmp_path_factory.mktemp("normalised") / "recorded-device.duckdb"
    with open_trace(recorded) as r:
        (k0,) = r.sql("SELECT min(start_ns) FROM kernels")[0]
        shift = BASE_NS - int(k0)
        tables = device_tables(r)
        kernels = rows(
            r,
            f"SELECT {KERNEL_COLUMNS}, start_ns, end_ns FROM kernels ORDER BY kernel_id",
            f"{KERNEL_COLUMNS}, start_ns, end_ns",
        )
    for k in kernels:
        k["start_ns"] += shift
        k["end_ns"] += shift
        k["launch_ns"] = k["start_ns"]
    return write_view(out, ["vector_add"], {**tables, "kernels": kernels})


def test_recorded_device_timeline(snap_compare, device_view):
    async def run_before(pilot) -> None:
        await settle(pilot)
        for key in ("n", "n", "n", "w", "w"):
            await pilot.press(key)
            await settle(pilot, rounds=2)

    app = RevatiApp(TraceSession(device_view))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


async def _text(screen, panel: str) -> str:
    return str(screen.query_one(panel).render())


@sync
async def test_single_process_trace_reads_right(recorded):
    app = RevatiApp(TraceSession(recorded))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        labels = [t.label for t in screen.session.model.tracks]
        assert labels[0].startswith("pid ") and "thread" in labels[0]
        assert all("rank" not in label for label in labels)
        await pilot.press("n")
        await settle(pilot)
        assert "rank None" not in await _text(screen, "#state")
        # A launch call links to its kernel, the kernel back to its launch call.
        await pilot.press("slash", *"LaunchKernel", "enter")
        await settle(pilot)
        launch = screen.cursor.event
        assert launch.kind == "api_call"
        details = await _text(screen, "#details")
        assert "→ kernel #" in details and "vector_add" in details
        while screen.cursor.event.kind != "kernel":
            await pilot.press("n")
        await settle(pilot)
        assert f"launched by __cudaLaunchKernel #{launch.ref_id}" in await _text(screen, "#details")


def _record_mode(tmp_path: Path, mode: str) -> Path:
    binary = build_modes(tmp_path.parent, "-cudart", "shared")
    trace = tmp_path / f"{mode}.duckdb"
    rec = run_cli("record", "-o", str(trace), "--", str(binary), mode)
    assert rec.returncode == 0, rec.stderr
    return trace


@sync
async def test_sleep_shows_the_blocked_thread_and_the_jump(tmp_path):
    app = RevatiApp(TraceSession(_record_mode(tmp_path, "sleep")))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert screen.cursor.event.kind == "sync"
        state = await _text(screen, "#state")
        # The deadline is V at the call + 30 s; V at the call is program start-up time (host
        # time at real speed), which grows on a loaded machine: 30 s, 30.02 s, 30.5 s, ...
        assert "blocked in nanosleep on sleep" in state
        assert re.search(r"deadline 30(\.\d+)? s", state), state
        await pilot.press("right_curly_bracket")
        await settle(pilot)
        assert screen.cursor.event.kind == "jump"
        details = await _text(screen, "#details")
        assert "the clock jumped" in details and "deadline of sleep" in details
        assert "in nanosleep" in details


@sync
async def test_unsupported_and_failed_calls_are_visible(tmp_path):
    app = RevatiApp(TraceSession(_record_mode(tmp_path, "unsupported")))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        await pilot.press("slash", *"MallocArray", "enter")
        await settle(pilot)
        assert screen.cursor.event.name == "cudaMallocArray"
        details = await _text(screen, "#details")
        assert "unsupported: not emulated by revati (libcudart.so.13)" in details
        assert "returned 801 (cudaErrorNotSupported)" in details

    app = RevatiApp(TraceSession(_record_mode(tmp_path, "memory")))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        await pilot.press("colon", *"break api cudaMalloc$", "enter")
        await settle(pilot)
        for _ in range(6):
            await pilot.press("colon", *"continue", "enter")
            await settle(pilot)
            if "cudaErrorMemoryAllocation" in await _text(screen, "#details"):
                break
        assert "returned 2 (cudaErrorMemoryAllocation)" in await _text(screen, "#details")


@sync
async def test_threads_say_how_their_process_ended(tmp_path):
    """`ends`: three children end with exit code 7, SIGKILL and SIGABRT; at the last event each
    child's thread is shown ended, with how its process ended."""
    app = RevatiApp(TraceSession(_record_mode(tmp_path, "ends")))
    async with app.run_test(size=(200, 60)) as pilot:
        await settle(pilot)
        screen = app.screen
        last = screen.session.reader.event_count() - 1
        await pilot.press("g", *str(last), "enter")
        await settle(pilot)
        assert screen.cursor.seq == last
        state = await _text(screen, "#state")
        assert "(process exited with code 7)" in state, state
        assert "(process killed by SIGKILL)" in state, state


@sync
async def test_the_debugger_follows_a_recording_as_rows_land(tmp_path):
    """`revati tui` on a trace being recorded shows a live snapshot, swaps in newer ones as
    rows land (the cursor stays on its event), and the complete trace once the run ends."""
    from revati.tui.live import LiveFollow

    from tests.integration.test_record_live import start_recording

    binary = build_modes(tmp_path.parent, "-cudart", "shared")
    out = tmp_path / "t.duckdb"
    proc = start_recording(out, binary, steps=500)
    try:
        session, follow = LiveFollow.open(out)
        assert follow is not None and follow.recorder_pid == proc.pid
        app = RevatiApp(session, None, follow)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            first = app.session.reader.event_count()
            assert "LIVE · recorded by pid" in await _text(app.screen, "#status")
            await pilot.press("n", "n", "n")
            await settle(pilot)
            for _ in range(100):  # until a newer snapshot is in
                await pilot.pause(0.2)
                if app.session.reader.event_count() > first:
                    break
            await settle(pilot)
            assert app.session.reader.event_count() > first
            assert app.screen.cursor.seq == 3
            for _ in range(300):  # until the run has ended
                await pilot.pause(0.2)
                if follow.finished and app.session.path == out:
                    break
            await settle(pilot)
            assert app.session.path == out and app.session.reader.counts()["kernels"] == 500
            assert "LIVE" not in await _text(app.screen, "#status")
    finally:
        proc.communicate(timeout=120)
