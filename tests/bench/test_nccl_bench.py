"""Coordination cost of NCCL barriers and jumps (tests/cuda/nccl_ranks.c `bench` and `jumps`):
every rank a thread, 8 per process (8 ranks: one process; 64: 8; 256: 32). Wall time per
all-reduce and per jump from the difference of two recordings (run.wall_ns), so start-up and
set-up cancel out. Prints figures; asserts the barrier count, that every all-reduce ended at
the same virtual time on every rank, and the time model's invariants."""

from __future__ import annotations

from pathlib import Path

import pytest
from revati.replay.invariants import violations

from tests.integration.record_helpers import q
from tests.integration.test_nccl import program, record  # noqa: F401 (fixture)

ITERS = {8: 200, 64: 200, 256: 40}


def _recorded(tmp_path: Path, binary: Path, mode: str, ranks: int, iters: int) -> tuple[Path, int]:
    args = (mode, str(ranks), str(iters), str(max(ranks // 8, 1)))
    trace, _ = record(tmp_path, binary, *args, name=f"{mode}{ranks}-{iters}")
    (wall,) = q(trace, "SELECT wall_ns FROM run")[0]
    return trace, int(wall)


@pytest.mark.parametrize("ranks", [8, 64, 256])
def test_wall_time_per_allreduce(tmp_path: Path, program: Path, ranks: int) -> None:  # noqa: F811
    iters = ITERS[ranks]
    _, short = _recorded(tmp_path, program, "bench", ranks, iters // 10)
    trace, long = _recorded(tmp_path, program, "bench", ranks, iters)
    (n,) = q(trace, "SELECT count(*) FROM barriers WHERE collective = 'allreduce'")[0]
    assert n == iters
    bad = q(
        trace,
        "SELECT count(*) FROM barriers b JOIN barrier_arrivals a USING (barrier_id) "
        "JOIN kernels k USING (kernel_id) WHERE k.end_ns <> b.end_ns",
    )
    assert bad == [(0,)]
    assert set(violations(trace).values()) == {0}
    (virtual,) = q(trace, "SELECT avg(end_ns - release_ns) FROM barriers WHERE bytes > 0")[0]
    per = (long - short) / (iters - iters // 10)
    print(
        f"\n{ranks} ranks ({max(ranks // 8, 1)} process(es)): {per / 1e3:.0f} µs wall per "
        f"all-reduce (64 MiB, virtual buffer; {virtual / 1e3:.0f} µs of virtual time each)"
    )


@pytest.mark.parametrize("ranks", [8])
def test_wall_time_per_jump(tmp_path: Path, program: Path, ranks: int) -> None:  # noqa: F811
    """Every rank sleeps 100 µs before each all-reduce: the clock jumps to the sleepers'
    deadlines while the others wait. (At 64 ranks on 2 cores some rank nearly always runs, so
    the sleeps end in real time and there are too few jumps to measure.)"""
    iters = 100
    short_trace, short = _recorded(tmp_path, program, "jumps", ranks, iters // 10)
    trace, long = _recorded(tmp_path, program, "jumps", ranks, iters)
    (j0,) = q(short_trace, "SELECT count(*) FROM jumps")[0]
    (j1,) = q(trace, "SELECT count(*) FROM jumps")[0]
    assert j1 > j0 >= 1
    assert set(violations(trace).values()) == {0}
    per = (long - short) / (j1 - j0)
    print(
        f"\n{ranks} ranks: {j1 / iters:.1f} jumps per iteration, {per / 1e3:.0f} µs wall per jump"
    )
