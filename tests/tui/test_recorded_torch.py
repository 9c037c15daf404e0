"""The debugger on a trace of torch.distributed under torchrun that `revati record` wrote: the
Llama-shaped decoder over 2 tensor-parallel ranks. The timeline names its tracks by rank (from
torchrun's environment), the barrier inspector lists every recorded barrier, and a screenshot of
the inspector holds them. (A recording's host-side times vary run to run, so the screen is
checked by what it shows, not against a stored SVG.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from revati.tui.app import RevatiApp
from revati.tui.screens.barriers import BarrierScreen
from revati.tui.screens.timeline import TimelineScreen
from revati.tui.session import TraceSession

from tests.integration.record_helpers import q
from tests.integration.test_torch_distributed import record_llama
from tests.tui.conftest import SIZE, settle, sync


@pytest.fixture(scope="module")
def tp_trace(tmp_path_factory) -> Path:
    _, trace = record_llama(tmp_path_factory.mktemp("tp2"), 2, "--tp", "2")
    return trace


def _screen_text(app: RevatiApp, tmp: Path, name: str) -> str:
    """The screen as an SVG screenshot (kept beside the test's files), as plain text."""
    path = Path(app.save_screenshot(filename=f"{name}.svg", path=str(tmp)))
    return path.read_text().replace("&#160;", " ")


@sync
async def test_ranks_and_recorded_barriers_in_the_debugger(tp_trace: Path, tmp_path: Path):
    (count,) = q(tp_trace, "SELECT count(*) FROM barriers")[0]
    (reduces,) = q(tp_trace, "SELECT count(*) FROM barriers WHERE collective = 'allreduce'")[0]
    assert reduces == 2 * 2 * 4  # attention and MLP, 2 layers, prefill + 3 steps
    app = RevatiApp(TraceSession(tp_trace))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        timeline = _screen_text(app, tmp_path, "timeline")
        assert "rank 0 ·" in timeline and "rank 1 ·" in timeline
        await pilot.press("i")
        await settle(pilot)
        assert isinstance(app.screen, BarrierScreen)
        table = app.screen.query_one("DataTable")
        assert table.row_count == count
        inspector = _screen_text(app, tmp_path, "inspector")
        assert inspector.count("allreduce") >= 5  # the rows on screen, and the story
        story = str(app.screen.query_one("#barrier-story").render())
        assert "rank 0" in story and "rank 1" in story
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, TimelineScreen)
        assert app.screen.cursor.event.kind == "barrier"
