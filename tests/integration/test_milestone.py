"""Milestone 1 end to end, as a user walks it: record the bundled CUDA program with no GPU,
summarise the trace, export it for Perfetto, and step through it in the TUI."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from pathlib import Path

from revati.tui.app import RevatiApp
from revati.tui.screens.timeline import TimelineScreen
from revati.tui.session import TraceSession

from tests.integration.record_helpers import run_cli

SIZE = (140, 40)


async def _settle(pilot, rounds: int = 3) -> None:
    for _ in range(rounds):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def _chrome_flows_link_every_kernel(path: Path, kernels: int) -> None:
    with gzip.open(path, "rt") as f:
        events = json.load(f)["traceEvents"]
    by_ph: dict[str, list[dict]] = {}
    for e in events:
        by_ph.setdefault(e["ph"], []).append(e)
    api = [e for e in by_ph["X"] if e.get("cat") == "api"]
    kern = [e for e in by_ph["X"] if e.get("cat") == "kernel"]
    assert len(kern) == kernels
    starts = {e["id"]: e for e in by_ph["s"]}
    ends = [e for e in by_ph["f"]]
    assert len(starts) == len(ends) >= kernels
    threads = {e["tid"] for e in api}
    for k in kern:
        assert k["tid"] not in threads  # kernels on stream rows, calls on thread rows
        (f,) = [e for e in ends if e["tid"] == k["tid"] and abs(e["ts"] - k["ts"]) < 1e-3]
        s = starts[f["id"]]
        assert s["pid"] == k["pid"] and s["tid"] in threads
        assert any(a["ts"] <= s["ts"] <= a["ts"] + a["dur"] for a in api if a["tid"] == s["tid"])
        assert s["ts"] <= k["ts"]  # launched before it runs


async def _tui_session(trace: Path) -> None:
    app = RevatiApp(TraceSession(trace))
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        screen = app.screen
        assert isinstance(screen, TimelineScreen)
        while screen.cursor.event.kind != "kernel":
            await pilot.press("n")
        kernel = screen.cursor.event
        await _settle(pilot)
        details = str(screen.query_one("#details").render())
        assert "predicted duration 10.01 µs by model" in details
        assert re.search(r"launched by __cudaLaunchKernel #\d+", details)
        await pilot.press("right_square_bracket")
        await _settle(pilot)
        sync = screen.cursor.event
        assert sync.kind == "sync" and sync.start_ns > kernel.start_ns
        state = str(screen.query_one("#state").render())
        assert "blocked in cudaEventSynchronize on event" in state and "deadline" in state
        await pilot.press("right_curly_bracket")
        await _settle(pilot)
        assert screen.cursor.event.kind == "jump"
        details = str(screen.query_one("#details").render())
        assert "the clock jumped" in details and "cudaEventSynchronize" in details
        await pilot.press("colon", *"when", "enter")
        await _settle(pilot)
        said = [n.message for n in app._notifications]
        seq, t = screen.cursor.seq, screen.cursor.event.start_ns
        assert f"event {seq} of {screen.cursor.count}, virtual time {t} ns" in said


def test_record_info_export_tui(tmp_path):
    trace = tmp_path / "t.duckdb"
    rec = run_cli("record", "-o", str(trace), "--example")
    assert rec.returncode == 0, rec.stderr
    assert re.search(
        r"revati: program exited with code 0; virtual .* 100 kernels, .* → ", rec.stderr
    ), rec.stderr

    info = run_cli("info", str(trace), "--json")
    assert info.returncode == 0, info.stderr
    summary = json.loads(info.stdout)
    assert summary["counts"]["kernels"] == 100
    assert summary["run"]["source"] == "emulated"
    assert summary["run"]["predictor"].startswith("revati-predict ")
    assert "device=h100-sxm" in summary["run"]["predictor"]
    assert summary["counts"]["syncs"] >= 1 and summary["events"] > 200

    out = tmp_path / "t.json.gz"
    exp = run_cli("export", str(trace), "--format", "chrome", "-o", str(out))
    assert exp.returncode == 0, exp.stderr
    _chrome_flows_link_every_kernel(out, kernels=100)

    asyncio.run(_tui_session(trace))
