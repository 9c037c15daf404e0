"""The barrier inspector on traces of NCCL programs that `revati record` wrote."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from revati.tui.app import RevatiApp
from revati.tui.screens.barriers import BarrierScreen
from revati.tui.screens.timeline import TimelineScreen
from revati.tui.session import TraceSession

from tests.integration.record_helpers import q
from tests.integration.test_nccl import program, record  # noqa: F401 (fixture)
from tests.tui.conftest import SIZE, settle, sync


@pytest.fixture(scope="module")
def straggler_trace(tmp_path_factory, program: Path) -> Path:  # noqa: F811
    base = tmp_path_factory.mktemp("straggler")
    trace, out = record(base, program, "straggler", "2", "2", flags=("--dilation", "100"))
    assert out.strip().endswith("ok"), out
    return trace


async def _story(app: RevatiApp) -> str:
    return str(app.screen.query_one("#barrier-story").render())


@sync
async def test_inspector_lists_recorded_barriers_and_names_the_straggler(straggler_trace):
    (count,) = q(straggler_trace, "SELECT count(*) FROM barriers")[0]
    app = RevatiApp(TraceSession(straggler_trace))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("i")
        await settle(pilot)
        assert isinstance(app.screen, BarrierScreen)
        table = app.screen.query_one("DataTable")
        assert table.row_count == count
        # sorted by total wait, the first rows are the two all-reduces the sleeper held up
        await pilot.press("w")
        await settle(pilot)
        story = await _story(app)
        # the sleeper's 5 ms, give or take host work at real speed / 100
        held = re.search(r"rank 1 held everyone up by (4\.9\d*|5(\.0\d*)?) ms", story)
        assert "allreduce" in story and held, story
        assert "straggler" in story
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, TimelineScreen)
        assert app.screen.cursor.event.kind == "barrier"


@sync
async def test_inspector_names_the_rank_that_died(tmp_path, program: Path):  # noqa: F811
    trace, _ = record(tmp_path, program, "kill", "3", "4", name="killed")
    app = RevatiApp(TraceSession(trace))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("i")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, BarrierScreen)
        table = screen.query_one("DataTable")
        stories = []
        for _ in range(table.row_count):
            stories.append(await _story(app))
            await pilot.press("down")
            await settle(pilot, rounds=2)
        died = [s for s in stories if "rank 1 died before it arrived" in s]
        assert len(died) == 1 and "allreduce" in died[0]
