"""CUDA-graph replays: a kernel-only graph's later launches are placed from what its first launch
placed, and the trace holds the same kernels as when every launch sends its nodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.record_helpers import REPO, build_cuda, q, run_cli
from tests.integration.test_record import assert_time_invariants

SOURCE = REPO / "tests" / "cuda" / "engine_load.cu"

# Each kernel relative to its graph launch: everything but absolute times (which move with the
# host time the program spends between launches).
RELATIVE_KERNELS = """
    SELECT kernel_id, graph_id, call_id, device_id, stream_id, name, model, duration_source,
           grid_x, grid_y, grid_z, block_x, block_y, block_z, shared_mem,
           launch_ns - min(start_ns) OVER (PARTITION BY graph_id) AS launch,
           start_ns - min(start_ns) OVER (PARTITION BY graph_id) AS start,
           end_ns - min(start_ns) OVER (PARTITION BY graph_id) AS end
    FROM kernels ORDER BY kernel_id"""


@pytest.fixture(scope="module")
def engine_load(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_cuda(tmp_path_factory.getbasetemp(), SOURCE, "-cudart", "shared")


def _record(tmp_path: Path, program: Path, *args: str, extra: tuple[str, ...] = ()) -> Path:
    out = tmp_path / f"t{len(extra)}.duckdb"
    proc = run_cli("record", "--quiet", "-o", str(out), *extra, "--", str(program), *args)
    assert proc.returncode == 0, proc.stderr
    return out


def test_replayed_graph_gives_the_kernels_of_node_by_node_launches(
    tmp_path: Path, engine_load: Path
) -> None:
    replayed = _record(tmp_path, engine_load, "forkgraph", "6")
    sent = _record(tmp_path, engine_load, "forkgraph", "6", extra=("--graph-nodes-every-launch",))
    rows = q(replayed, RELATIVE_KERNELS)
    assert len(rows) == 30
    assert rows == q(sent, RELATIVE_KERNELS)
    for trace in (replayed, sent):
        assert_time_invariants(trace)
        # a launch starts after the previous one's last kernel, on every stream of the graph
        gaps = q(
            trace,
            """SELECT count(*) FROM (SELECT graph_id, min(start_ns) AS first,
                      lag(max(end_ns)) OVER (ORDER BY graph_id) AS prev_end
                      FROM kernels GROUP BY graph_id) WHERE first < prev_end""",
        )
        assert gaps == [(0,)]


def test_graph_update_replays_the_new_nodes(tmp_path: Path, engine_load: Path) -> None:
    trace = _record(tmp_path, engine_load, "forkgraph", "6")
    # the first three launches ran 1M-element kernels, the last three (after the update) 4M
    grids = q(
        trace,
        "SELECT graph_id, list(grid_x ORDER BY kernel_id) FROM kernels GROUP BY 1 ORDER BY 1",
    )
    assert [g for _, g in grids[:3]] == [[4096, 4096, 16384, 4096, 4096]] * 3
    assert [g for _, g in grids[3:]] == [[16384, 16384, 65536, 16384, 16384]] * 3
    # the branch on the second stream overlaps the two kernels of the first
    forks = q(
        trace,
        """SELECT count(*) FROM kernels a JOIN kernels b USING (graph_id)
           WHERE a.stream_id <> b.stream_id AND a.start_ns < b.end_ns AND b.start_ns < a.end_ns""",
    )
    assert forks[0][0] >= 6 * 2


def test_long_replay_run_holds_every_kernel(tmp_path: Path, engine_load: Path) -> None:
    trace = _record(tmp_path, engine_load, "graph", "300", "200")
    assert q(trace, "SELECT count(*), count(DISTINCT graph_id) FROM kernels") == [(60_000, 300)]
    assert_time_invariants(trace)
