"""A kernel that is an all-reduce over CUDA IPC (vLLM's custom all-reduce's name and argument
layout, tests/cuda/ipc_allreduce.cu) is a barrier of the two processes that share its signal
buffers: each launch meets the peer's launch of the same count, the straggler's arrival releases
it, and the message's bytes come from the launch's arguments. Captured into a CUDA graph, the
kernel is the same barrier at every launch of the graph."""

from __future__ import annotations

from pathlib import Path

import pytest
from revati.replay.invariants import violations

from tests.integration.record_helpers import REPO, assert_replay_reproduces, build_cuda, q, run_cli

SOURCE = REPO / "tests" / "cuda" / "ipc_allreduce.cu"
PACKS = (1024, 2048, 4096)
SLEEP_NS = 20_000_000


@pytest.fixture(scope="module", params=["small", "large"])
def trace(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The signal buffers small (bytes shared through a file) or large (virtual, as vLLM's)."""
    return record(tmp_path_factory, request.param)


def record(tmp_path_factory: pytest.TempPathFactory, mode: str) -> Path:
    """A trace of both ranks of the program run in `mode`."""
    program = build_cuda(tmp_path_factory.getbasetemp(), SOURCE, "-cudart", "shared")
    out = tmp_path_factory.mktemp(f"ipc_allreduce_{mode}") / "t.duckdb"
    proc = run_cli("record", "-o", str(out), "--devices", "2", "--", str(program), mode,
                   timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "rank0_done=1" in proc.stdout and "rank1_status=0" in proc.stdout, proc.stdout
    return out


def test_each_launch_is_an_allreduce_of_both_ranks_on_one_group(trace: Path) -> None:
    rows = q(
        trace,
        """SELECT any_value(b.collective), any_value(b.communicator), any_value(b.bytes),
                  list(a.rank ORDER BY a.rank), count(DISTINCT a.pid)
           FROM barriers b JOIN barrier_arrivals a USING (barrier_id)
           GROUP BY b.barrier_id ORDER BY b.barrier_id""",
    )
    assert [r[0] for r in rows] == ["init", "allreduce", "allreduce", "allreduce"]
    assert len({r[1] for r in rows}) == 1  # one group: the shared buffer of rank 0
    assert [r[2] for r in rows[1:]] == [16 * p for p in PACKS]
    assert all(r[3] == [0, 1] and r[4] == 2 for r in rows)
    # the launches are barriers, no kernel of their own: each member's stream holds the barrier
    assert q(trace, "SELECT DISTINCT name FROM kernels") == [("ipc_group_allreduce",)]


def test_the_straggler_releases_the_barrier_on_both_streams(trace: Path) -> None:
    second = q(
        trace,
        """SELECT a.rank, a.wait_ns, k.start_ns, k.end_ns
           FROM barriers b JOIN barrier_arrivals a USING (barrier_id) JOIN kernels k USING (kernel_id)
           WHERE b.collective = 'allreduce' ORDER BY b.barrier_id, a.rank""",
    )[2:4]
    (rank0, wait0, start0, end0), (rank1, wait1, start1, end1) = second
    # rank 1 slept before its second launch: rank 0's kernel waited about as long (less the
    # host time rank 0 spent meanwhile) on its stream for rank 1's, and both end together
    assert (rank0, rank1) == (0, 1) and wait0 > SLEEP_NS * 9 // 10 and wait1 == 0
    assert start1 - start0 == wait0 and end0 == end1 > start1


REPLAYS = 4  # launches of each graph (tests/cuda/ipc_allreduce.cu, `graph`)
GRAPH_BYTES = 16 * 2048


@pytest.fixture(scope="module")
def graph_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each rank launches a graph [before_reduce, all-reduce, after_reduce] REPLAYS times (rank 1
    sleeps before its third launch), then a graph of the two plain kernels alone as often."""
    return record(tmp_path_factory, "graph")


def test_each_graph_launch_meets_at_its_captured_all_reduce(graph_trace: Path) -> None:
    rows = q(
        graph_trace,
        """SELECT any_value(b.collective), any_value(b.bytes), list(a.rank ORDER BY a.rank),
                  list(k.graph_id IS NOT NULL ORDER BY a.rank)
           FROM barriers b JOIN barrier_arrivals a USING (barrier_id)
           LEFT JOIN kernels k USING (kernel_id)
           GROUP BY b.barrier_id ORDER BY b.barrier_id""",
    )
    assert rows[0] == ("init", 0, [0, 1], [False, False])
    assert rows[1:] == [("allreduce", GRAPH_BYTES, [0, 1], [True, True])] * REPLAYS
    # per rank and launch: the barrier's kernel sits between the two plain nodes, which follow
    # each other and it on the launch stream
    launches = q(
        graph_trace,
        """SELECT graph_id, list(name ORDER BY start_ns), list(start_ns ORDER BY start_ns),
                  list(end_ns ORDER BY start_ns)
           FROM kernels WHERE graph_id IN (SELECT graph_id FROM kernels
                                           WHERE name = 'ipc_group_allreduce')
           GROUP BY graph_id""",
    )
    assert len(launches) == 2 * REPLAYS
    for _graph, names, starts, ends in launches:
        assert names == ["before_reduce(float*)", "ipc_group_allreduce", "after_reduce(float*)"]
        assert starts[1] == ends[0] and starts[2] == ends[1]


def test_the_straggler_of_a_replay_holds_the_other_rank_and_what_follows(
    graph_trace: Path,
) -> None:
    third = q(
        graph_trace,
        """SELECT a.rank, a.wait_ns, b.straggler_rank, k.start_ns, k.end_ns, b.end_ns,
                  (SELECT min(n.start_ns) FROM kernels n WHERE n.graph_id = k.graph_id
                   AND n.name = 'after_reduce(float*)')
           FROM barriers b JOIN barrier_arrivals a USING (barrier_id) JOIN kernels k USING (kernel_id)
           WHERE b.collective = 'allreduce' ORDER BY b.barrier_id, a.rank""",
    )[4:6]
    (
        (rank0, wait0, straggler, start0, end0, bend, after0),
        (rank1, wait1, _, start1, end1, _, after1),
    ) = third
    assert (rank0, rank1, straggler) == (0, 1, 1)
    assert wait0 > SLEEP_NS * 9 // 10 and wait1 == 0 and start1 - start0 == wait0
    assert end0 == end1 == bend == after0 == after1


def test_a_graph_without_barriers_still_replays_as_one_row(graph_trace: Path) -> None:
    # the plain graph: its first launch node by node, the later ones one graph_replays row each
    assert q(graph_trace, "SELECT count(*) FROM graph_replays") == [(2 * (REPLAYS - 1),)]


def test_graph_barriers_keep_the_invariants_and_replay_exactly(
    graph_trace: Path, tmp_path: Path
) -> None:
    assert set(violations(graph_trace).values()) == {0}, violations(graph_trace)
    assert_replay_reproduces(graph_trace, tmp_path / "replayed.duckdb")
