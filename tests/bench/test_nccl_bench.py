"""Coordination cost of NCCL barriers: wall time per all-reduce, every rank a thread (of one
traced process, or of 8 processes for 64 ranks) (tests/cuda/nccl_ranks.c `bench`). Prints figures; asserts the barrier count and
that every all-reduce ended at the same virtual time on every rank."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.record_helpers import q
from tests.integration.test_nccl import program, record  # noqa: F401 (fixture)

ITERS = 200


def _recorded(tmp_path: Path, binary: Path, ranks: int, iters: int, procs: int) -> tuple[Path, int]:
    args = ("bench", str(ranks), str(iters), str(procs))
    trace, _ = record(tmp_path, binary, *args, name=f"b{iters}")
    (wall,) = q(trace, "SELECT wall_ns FROM run")[0]
    return trace, int(wall)


@pytest.mark.parametrize("ranks, procs", [(2, 1), (8, 1), (64, 8)])
def test_wall_time_per_allreduce(tmp_path: Path, program: Path, ranks: int, procs: int) -> None:  # noqa: F811
    """Wall time per all-reduce: the difference of two recordings (run.wall_ns), so start-up
    and the program's set-up cancel out."""
    _, short = _recorded(tmp_path, program, ranks, ITERS // 10, procs)
    trace, long = _recorded(tmp_path, program, ranks, ITERS, procs)
    (n,) = q(trace, "SELECT count(*) FROM barriers WHERE collective = 'allreduce'")[0]
    assert n == ITERS
    bad = q(
        trace,
        "SELECT count(*) FROM barriers b JOIN barrier_arrivals a USING (barrier_id) "
        "JOIN kernels k USING (kernel_id) WHERE k.end_ns <> b.end_ns",
    )
    assert bad == [(0,)]
    per = (long - short) / (ITERS - ITERS // 10)
    print(
        f"\n{ranks} ranks in {procs} process(es): {per / 1e3:.0f} µs wall per all-reduce "
        "(64 MiB, virtual buffer)"
    )
