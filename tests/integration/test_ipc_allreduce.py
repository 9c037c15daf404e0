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


def record(tmp_path_factory: pytest.TempPathFactory, mode: str, *options: str) -> Path:
    """A trace of both ranks of the program run in `mode` (`options`: revati record's)."""
    program = build_cuda(tmp_path_factory.getbasetemp(), SOURCE, "-cudart", "shared")
    out = tmp_path_factory.mktemp(f"ipc_allreduce_{mode}") / "t.duckdb"
    proc = run_cli("record", "-o", str(out), "--devices", "2", *options, "--", str(program),
                   mode, timeout=120)  # fmt: skip
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
    # rank 1 slept before its second launch: rank 0's kernel waited for rank 1's on its stream,
    # as long as the sleep less the host time rank 0 spent meanwhile (at wall speed: on a loaded
    # machine a descheduled rank 0 once spent 2+ ms of it), and both end together
    assert (rank0, rank1) == (0, 1) and wait0 > SLEEP_NS // 2 and wait1 == 0
    assert start1 - start0 == wait0 and end0 == end1 > start1


REPLAYS = 4  # launches of each graph (tests/cuda/ipc_allreduce.cu, `graph`)
GRAPH_BYTES = 16 * 2048
BEFORE, AFTER, BESIDE = "before_reduce(float*)", "after_reduce(float*)", "beside_reduce(float*)"
BARRIER = "ipc_group_allreduce"


@pytest.fixture(scope="module", params=["replayed", "sent"])
def graph_trace(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each rank launches REPLAYS times a graph [before_reduce, all-reduce, after_reduce] on one
    stream (chain), the same with beside_reduce on a second stream beside the all-reduce
    (forked), each with rank 1 sleeping before the third launch, then two all-reduces alone
    (bare), then the two plain kernels alone (plain). Launches after a graph's first are replayed where they can be, or all sent
    node by node (`--graph-nodes-every-launch`)."""
    sent = request.param == "sent"
    return record(tmp_path_factory, "graph", *(["--graph-nodes-every-launch"] if sent else []))


def launches(trace: Path) -> list[tuple[list[str], list[int], list[int], list[int]]]:
    """The launches of the graphs holding the all-reduce, in order: kernel names, starts, ends
    and streams, by start."""
    return q(
        trace,
        f"""SELECT list(name ORDER BY start_ns, name), list(start_ns ORDER BY start_ns, name),
                   list(end_ns ORDER BY start_ns, name), list(stream_id ORDER BY start_ns, name)
            FROM kernels WHERE graph_id IN (SELECT graph_id FROM kernels WHERE name = '{BARRIER}')
            GROUP BY graph_id ORDER BY min(start_ns), graph_id""",
    )


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
    assert rows[1:] == [("allreduce", GRAPH_BYTES, [0, 1], [True, True])] * 4 * REPLAYS
    chain = [x for x in launches(graph_trace) if BEFORE in x[0] and BESIDE not in x[0]]
    forked = [x for x in launches(graph_trace) if BESIDE in x[0]]
    bare = [x for x in launches(graph_trace) if BEFORE not in x[0]]
    assert len(chain) == len(forked) == len(bare) == 2 * REPLAYS
    for names, starts, ends, _streams in chain:  # each node starts where the one before ends
        assert names == [BEFORE, BARRIER, AFTER]
        assert starts[1] == ends[0] and starts[2] == ends[1]
    for names, starts, ends, streams in forked:  # the branch beside the barrier overlaps it
        assert names == [BEFORE, BESIDE, BARRIER, AFTER]  # the two in the middle start together
        assert starts[1] == starts[2] == ends[0] and streams[1] != streams[2]
        assert starts[3] == max(ends[1], ends[2])
    for names, starts, ends, _streams in bare:  # back to back, the second from the first's end
        assert names == [BARRIER, BARRIER] and starts[1] == ends[0]


@pytest.mark.parametrize("graph", [0, 1], ids=["chain", "forked"])
def test_the_straggler_of_a_launch_holds_the_other_rank_and_what_follows(
    graph_trace: Path, graph: int
) -> None:
    third = q(
        graph_trace,
        f"""SELECT a.rank, a.wait_ns, b.straggler_rank, k.start_ns, k.end_ns, b.end_ns,
                  (SELECT min(n.start_ns) FROM kernels n WHERE n.graph_id = k.graph_id
                   AND n.name = '{AFTER}')
           FROM barriers b JOIN barrier_arrivals a USING (barrier_id) JOIN kernels k USING (kernel_id)
           WHERE b.collective = 'allreduce' ORDER BY b.barrier_id, a.rank""",
    )[2 * (graph * REPLAYS + 2) :][:2]
    (
        (rank0, wait0, straggler, start0, end0, bend, after0),
        (rank1, wait1, _, start1, end1, _, after1),
    ) = third
    assert (rank0, rank1, straggler) == (0, 1, 1)
    # (as in the eager case: rank 0's host time meanwhile, at wall speed, shortens its wait)
    assert wait0 > SLEEP_NS // 2 and wait1 == 0 and start1 - start0 == wait0
    assert end0 == end1 == bend == after0 == after1


def test_a_launch_is_replayed_in_segments_where_its_barriers_cut_the_graph(
    graph_trace: Path,
) -> None:
    # after each graph's first launch: a chain launch is two rows (the kernels before and after
    # its barrier), a plain one one row; the forked graph is sent node by node at every launch
    rows = q(graph_trace, "SELECT count(*), count(DISTINCT replay_id) FROM graph_replays")
    [(replayed,)] = q(graph_trace, "SELECT config->>'graph_replay' = 'true' FROM run")
    assert rows == ([(2 * (REPLAYS - 1) * 3, 2 * (REPLAYS - 1) * 2)] if replayed else [(0, 0)])


def test_graph_barriers_keep_the_invariants_and_replay_exactly(
    graph_trace: Path, tmp_path: Path
) -> None:
    assert set(violations(graph_trace).values()) == {0}, violations(graph_trace)
    assert_replay_reproduces(graph_trace, tmp_path / "replayed.duckdb")
