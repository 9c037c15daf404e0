"""Randomised multi-rank NCCL programs (tests/cuda/nccl_script.c) under `revati record`,
checked against the time model's invariants on the recorded trace (revati.replay.invariants),
among them "no jump passes a pending collective": ranks, processes, operations, sizes, streams
and host delays are drawn by hypothesis (a few examples: each is one recording)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from revati.replay.invariants import violations

from tests.integration.record_helpers import REPO, q, run_cli
from tests.integration.test_nccl import CUDA, nccl_root

SOURCE = REPO / "tests" / "cuda" / "nccl_script.c"
KINDS = ("ar", "ag", "rs", "bc", "p2p")
NAMES = {"ar": "allreduce", "ag": "allgather", "rs": "reducescatter", "bc": "broadcast"}
DELAY_US = 20_000  # far above the host-time noise of a loaded machine


@pytest.fixture(scope="module")
def script_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    nccl = nccl_root()
    out = tmp_path_factory.mktemp("nccl_script") / "nccl_script"
    lib = nccl / "lib"
    subprocess.run(
        ["gcc", "-O1", "-Wall", f"-I{nccl / 'include'}", f"-I{CUDA / 'include'}", str(SOURCE)]
        + ["-o", str(out), f"-L{lib}", "-l:libnccl.so.2", f"-L{CUDA / 'lib64'}", "-lcudart"]
        + ["-lpthread", f"-Wl,-rpath,{lib}:{CUDA / 'lib64'}"],
        check=True,
        capture_output=True,
    )
    return out


@st.composite
def programs(draw: st.DrawFn) -> tuple[int, int, list[tuple[str, int, int, int, int]]]:
    ranks = draw(st.sampled_from([2, 3, 4, 8]))
    procs = draw(st.sampled_from([p for p in (1, 2) if ranks % p == 0]))
    op = st.tuples(
        st.sampled_from(KINDS),
        st.sampled_from([1, 64, 4096, 1 << 20, 1 << 24]),  # backed and virtual buffers
        st.integers(0, 1),
        st.integers(0, ranks - 1),
        st.sampled_from([0, 0, DELAY_US]),
    )
    return ranks, procs, draw(st.lists(op, min_size=1, max_size=6))


def _record(tmp_path: Path, binary: Path, ranks: int, procs: int, ops: list) -> Path:
    trace = tmp_path / "r.duckdb"
    text = ",".join(":".join(str(x) for x in o) for o in ops)
    cli = ("record", "--quiet", "--devices", "8", "--force", "-o", str(trace), "--", str(binary))
    r = run_cli(*cli, str(ranks), str(procs), text, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stdout + r.stderr
    return trace


def _rank0_barriers(trace: Path) -> list[tuple[int, str]]:
    """Rank 0's barriers in the order it issued them (init first)."""
    return q(
        trace,
        """SELECT b.barrier_id, b.collective FROM barrier_arrivals a JOIN barriers b
           USING (barrier_id) LEFT JOIN kernels k USING (kernel_id) WHERE a.rank = 0
           ORDER BY coalesce(k.launch_ns, -1), b.barrier_id""",
    )


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(program=programs())
def test_random_programs_keep_the_invariants(
    tmp_path: Path, script_program: Path, program: tuple
) -> None:
    ranks, procs, ops = program
    trace = _record(tmp_path, script_program, ranks, procs, ops)
    assert violations(trace) == dict.fromkeys(violations(trace), 0)
    # every operation is one barrier of every rank (a send/recv ring: one pair per rank)
    counts = dict(q(trace, "SELECT collective, count(*) FROM barriers GROUP BY 1"))
    want: dict[str, int] = {"init": 1}
    for kind, *_ in ops:
        name = NAMES.get(kind, "sendrecv")
        want[name] = want.get(name, 0) + (ranks if kind == "p2p" else 1)
    assert counts == want
    full = q(
        trace,
        """SELECT count(*) FROM barriers b JOIN (SELECT barrier_id, count(*) AS n
           FROM barrier_arrivals GROUP BY 1) a USING (barrier_id)
           WHERE a.n <> CASE WHEN b.collective = 'sendrecv' THEN 2 ELSE b.world_size END""",
    )
    assert full == [(0,)]
    # the first late rank is the straggler of its collective, and the others waited for it (later
    # ones need not be: calls return at once, so an earlier delay may already cover theirs)
    collectives = [b for b in _rank0_barriers(trace) if b[1] not in ("init", "sendrecv")]
    issued = [o for o in ops if o[0] != "p2p"]
    assert [NAMES[o[0]] for o in issued] == [name for _, name in collectives]
    late_op = next((o for o in ops if o[4]), None)
    if late_op is None or late_op[0] == "p2p":
        return
    kind, _, _, late, delay = late_op
    bid = collectives[issued.index(late_op)][0]
    (straggler,) = q(trace, f"SELECT straggler_rank FROM barriers WHERE barrier_id = {bid}")[0]
    assert straggler == late, (kind, bid)
    waits = dict(q(trace, f"SELECT rank, wait_ns FROM barrier_arrivals WHERE barrier_id = {bid}"))
    assert waits[late] == 0
    assert all(w >= delay * 1000 // 2 for r, w in waits.items() if r != late)


def test_a_jump_past_a_complete_collective_is_caught(tmp_path: Path, script_program: Path) -> None:
    """The check can fail: a jump put into a sound trace between a collective's last arrival
    and a waiting member's resume is counted."""
    trace = _record(tmp_path, script_program, 4, 2, [("ar", 4096, 0, 3, DELAY_US)])
    assert violations(trace)["jump_passed_collective"] == 0
    bad = tmp_path / "bad.duckdb"
    shutil.copy(trace, bad)
    blocked, resumed = q(
        trace,
        """SELECT s.blocked_ns, s.resumed_ns FROM syncs s WHERE s.kind = 'barrier'
           ORDER BY s.resumed_ns DESC LIMIT 1""",
    )[0]
    assert blocked < resumed
    with duckdb.connect(str(bad)) as con:  # from just before the resume: after the release
        con.execute(
            "INSERT INTO jumps (jump_id, generation, from_ns, to_ns) VALUES (999999, 999999, ?, ?)",
            [resumed - 1, resumed + 1_000_000],
        )
    assert violations(bad)["jump_passed_collective"] >= 1
