"""A kernel that is an all-reduce over CUDA IPC (vLLM's custom all-reduce's name and argument
layout, tests/cuda/ipc_allreduce.cu) is a barrier of the two processes that share its signal
buffers: each launch meets the peer's launch of the same count, the straggler's arrival releases
it, and the message's bytes come from the launch's arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.record_helpers import REPO, build_cuda, q, run_cli

SOURCE = REPO / "tests" / "cuda" / "ipc_allreduce.cu"
PACKS = (1024, 2048, 4096)
SLEEP_NS = 20_000_000


@pytest.fixture(scope="module", params=["small", "large"])
def trace(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The signal buffers small (bytes shared through a file) or large (virtual, as vLLM's)."""
    program = build_cuda(tmp_path_factory.getbasetemp(), SOURCE, "-cudart", "shared")
    out = tmp_path_factory.mktemp("ipc_allreduce") / "t.duckdb"
    proc = run_cli("record", "-o", str(out), "--devices", "2", "--", str(program), request.param,
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
