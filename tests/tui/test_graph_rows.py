"""The debugger on a trace whose CUDA-graph launches are stored as one row each: stepping over
its kernels shows what it shows on the same launches stored kernel by kernel."""

from __future__ import annotations

from pathlib import Path

from revati.tui.app import RevatiApp
from revati.tui.session import TraceSession

from tests.engine_records import FORK_JOIN, fork_join_trace
from tests.tui.conftest import SIZE, settle, sync


async def _kernel_panels(trace: Path, steps: int) -> list[tuple[str, str, str]]:
    """(cursor event, state panel, details panel) after each of `steps` presses of `n`."""
    app = RevatiApp(TraceSession(trace))
    seen = []
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        for _ in range(steps):
            await pilot.press("n")
            await settle(pilot, rounds=2)
            seen.append(
                (
                    repr(screen.cursor.event),
                    str(screen.query_one("#state").render()),
                    str(screen.query_one("#details").render()),
                )
            )
    return seen


@sync
async def test_stepping_over_replayed_kernels_shows_the_kernels_sent_node_by_node(tmp_path):
    launches = 3
    sent = fork_join_trace(tmp_path, "sent", launches, replay=False)
    replayed = fork_join_trace(tmp_path, "replayed", launches, replay=True)
    steps = launches * (len(FORK_JOIN) + 4)  # every event: graph launch, nodes, eager calls
    panels = await _kernel_panels(replayed, steps)
    assert panels == await _kernel_panels(sent, steps)
    kernels = [p for p in panels if "kind='kernel'" in p[0]]
    assert len({p[0] for p in kernels}) >= launches * len(FORK_JOIN)
    assert any("graph" in details for _, _, details in kernels)
