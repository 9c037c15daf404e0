"""NCCL under `revati record`: C programs built at test time with gcc against the real nccl.h,
linked to the real libnccl.so.2 and libcudart.so (the DT_NEEDED entries real applications have).

The program (tests/cuda/nccl_ranks.c) checks the bytes every collective hands back on backed
buffers and exits non-zero on a mismatch; these tests check the barriers the trace holds."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from revati.elfinfo import read_elf
from revati.native.entry_table import read_table
from tests.integration.record_helpers import REPO, assert_replay_reproduces, q, run_cli

SOURCE = REPO / "tests" / "cuda" / "nccl_ranks.c"
CUDA = Path("/usr/local/cuda")


def nccl_root() -> Path:
    import nvidia.nccl  # the pip package nvidia-nccl-cu13 (a dependency of torch)

    return Path(next(iter(nvidia.nccl.__path__)))


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    nccl = nccl_root()
    lib = nccl / "lib"
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    out = tmp_path_factory.mktemp("nccl") / f"nccl_ranks-{digest}"
    subprocess.run(
        [
            "gcc",
            "-O1",
            "-Wall",
            f"-I{nccl / 'include'}",
            f"-I{CUDA / 'include'}",
            str(SOURCE),
            "-o",
            str(out),
            f"-L{lib}",
            "-l:libnccl.so.2",
            f"-L{CUDA / 'lib64'}",
            "-lcudart",
            "-lpthread",
            f"-Wl,-rpath,{lib}:{CUDA / 'lib64'}",
        ],
        check=True,
        capture_output=True,
    )
    return out


def record(
    tmp_path: Path, program: Path, *args: str, name: str = "t", flags: tuple[str, ...] = ()
) -> tuple[Path, str]:
    trace = tmp_path / f"{name}.duckdb"
    cli = ("record", "--quiet", "--devices", "8", *flags, "-o", str(trace), "--", str(program))
    r = run_cli(*cli, *args)
    assert r.returncode == 0, r.stdout + r.stderr
    return trace, r.stdout


def test_program_links_the_real_nccl(program: Path) -> None:
    needed = subprocess.run(["ldd", str(program)], capture_output=True, text=True).stdout
    assert "libnccl.so.2" in needed and "libcudart.so.13" in needed


@pytest.mark.parametrize(
    "mode, ranks", [("threads", 2), ("threads", 8), ("group", 4), ("fork", 3), ("fork", 4)]
)
def test_collectives_move_real_bytes_and_leave_barriers(
    tmp_path: Path, program: Path, mode: str, ranks: int
) -> None:
    iters = 3
    trace, out = record(tmp_path, program, mode, str(ranks), str(iters))
    assert out.strip().endswith("ok"), out
    # per iteration: all-reduce, all-gather, broadcast, and one send/recv pair per rank
    per_kind = dict(q(trace, "SELECT collective, count(*) FROM barriers GROUP BY 1"))
    assert per_kind == {
        "init": 1,
        "allreduce": iters,
        "allgather": iters,
        "broadcast": iters,
        "sendrecv": iters * ranks,
    }
    # one api_calls row per call: an all-reduce's arrival and its wait are one call
    (calls,) = q(trace, "SELECT count(*) FROM api_calls WHERE name = 'ncclAllReduce'")[0]
    assert calls == iters * ranks
    waits = q(
        trace,
        "SELECT count(*), bool_and(c.exit_ns = s.resumed_ns AND c.enter_ns <= s.blocked_ns) "
        "FROM syncs s JOIN api_calls c USING (call_id) WHERE s.kind = 'barrier'",
    )
    assert waits[0][0] > 0 and waits[0][1]
    # every collective has one arrival per rank, waits = release - arrival, none negative
    rows = q(
        trace,
        "SELECT b.barrier_id, b.world_size, count(*), min(a.wait_ns), "
        "bool_and(a.wait_ns = b.release_ns - a.arrival_ns), max(a.arrival_ns) = any_value(b.release_ns), "
        "bool_and(b.end_ns >= b.release_ns) FROM barriers b JOIN barrier_arrivals a "
        "USING (barrier_id) WHERE b.collective <> 'sendrecv' GROUP BY b.barrier_id, b.world_size",
    )
    for _bid, world, n, min_wait, exact, released_last, ends_after in rows:
        assert world == ranks and n == ranks and min_wait >= 0 and exact and released_last
        assert ends_after
    # the collective's kernel on every rank's stream ends at the barrier's end
    bad = q(
        trace,
        "SELECT count(*) FROM barriers b JOIN barrier_arrivals a USING (barrier_id) "
        "JOIN kernels k USING (kernel_id) WHERE k.end_ns <> b.end_ns OR k.start_ns <> a.arrival_ns",
    )
    assert bad == [(0,)]
    # a stream sync after a barrier resumes no earlier than the barrier ended on that stream
    late = q(
        trace,
        "SELECT count(*) FROM syncs s JOIN barriers b ON s.kind = 'stream' "
        "AND s.blocked_ns >= b.end_ns WHERE s.resumed_ns < s.blocked_ns",
    )
    assert late == [(0,)]


def test_straggler_makes_every_other_rank_wait_its_delay(tmp_path: Path, program: Path) -> None:
    ranks = 4
    # host work runs in real time; --dilation 100 keeps a loaded machine's scheduling noise
    # (milliseconds with 4 threads on 2 cores) out of the comparison
    flags = ("--dilation", "100")
    trace, out = record(tmp_path, program, "straggler", str(ranks), "4", flags=flags)
    assert out.strip().endswith("ok"), out
    rows = q(
        trace,
        "SELECT b.barrier_id, b.straggler_rank, a.rank, a.wait_ns FROM barriers b "
        "JOIN barrier_arrivals a USING (barrier_id) WHERE b.collective = 'allreduce' ORDER BY 1, 3",
    )
    assert len(rows) == 4 * ranks
    for _bid, straggler, rank, wait in rows:
        assert straggler == ranks - 1
        if rank == ranks - 1:
            assert wait == 0
        else:  # 5 ms of virtual sleep, give or take the loop's host work
            assert abs(wait - 5_000_000) < 250_000, wait


def test_a_killed_rank_fails_the_others_with_an_error(tmp_path: Path, program: Path) -> None:
    start = time.monotonic()
    trace, out = record(tmp_path, program, "kill", "3", "5", name="killed")
    wall = time.monotonic() - start
    assert wall < 30
    # the survivors saw ncclRemoteError from the call and from ncclCommGetAsyncError
    failures = [line for line in out.splitlines() if "failed" in line]
    assert len(failures) == 2 and all("remote process exited" in f for f in failures), out
    assert out.strip().endswith("ok")  # the parent checked: rank 1 died of SIGKILL
    dead = q(trace, "SELECT collective, failed_rank, end_ns FROM barriers WHERE failed_rank >= 0")
    assert dead == [("allreduce", 1, None)]
    arrived = q(
        trace,
        "SELECT list(a.rank ORDER BY a.rank) FROM barriers b JOIN barrier_arrivals a "
        "USING (barrier_id) WHERE b.failed_rank = 1",
    )
    assert arrived == [([0, 2],)]
    ranks = q(trace, "SELECT list(rank ORDER BY rank) FROM processes WHERE rank IS NOT NULL")
    assert ranks == [([0, 1, 2],)]


def test_doctor_knows_every_nccl_import(program: Path) -> None:
    r = run_cli("doctor", "--json", str(program))
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["runnable"] and report["unintercepted"] == {}
    nccl = [n for n in report["imports"] if n.startswith("nccl")]
    assert len(nccl) == 18 and set(nccl) <= set(report["emulated"])


def test_every_nccl_function_torch_imports_is_in_the_table() -> None:
    import torch

    lib = Path(torch.__file__).parent / "lib" / "libtorch_cuda.so"
    wanted = {s.name for s in read_elf(lib).undefined if s.name.startswith("nccl")}
    rows = {row.name: row.status for row in read_table() if row.library == "libnccl.so.2"}
    assert len(wanted) >= 50 and wanted <= set(rows)
    core = {"ncclAllReduce", "ncclAllGather", "ncclReduceScatter", "ncclBroadcast", "ncclSend"}
    assert all(rows[n] == "emulated" for n in core)


def test_shim_definitions_win_over_the_real_nccl(tmp_path: Path, program: Path) -> None:
    env = dict(os.environ, LD_DEBUG="bindings", LD_DEBUG_OUTPUT=str(tmp_path / "ld"))
    trace = tmp_path / "bind.duckdb"
    r = subprocess.run(
        [
            *(sys.executable, "-m", "revati.cli", "record", "--quiet", "--devices", "8"),
            *("-o", str(trace), "--", str(program), "threads", "2", "1"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    logs = "".join(p.read_text() for p in tmp_path.glob("ld.*"))
    bound = [line for line in logs.splitlines() if "normal symbol `ncclAllReduce'" in line]
    assert bound and all("revati/native" in line for line in bound), bound[:3]


# After `import torch` (which loads the real libnccl.so.2 by its path), a program that opens NCCL
# by name with ctypes, as vLLM's own NCCL bindings do, gets revati's functions.
DLOPEN_BY_NAME = """
import ctypes, torch
by_name = ctypes.CDLL("libnccl.so.2").ncclCommInitRank
anywhere = ctypes.CDLL(None).ncclCommInitRank
print("same", ctypes.cast(by_name, ctypes.c_void_p).value == ctypes.cast(anywhere, ctypes.c_void_p).value)
"""


def test_a_dlopen_of_nccl_by_name_finds_the_shim(tmp_path: Path) -> None:
    r = run_cli("record", "--quiet", "-o", str(tmp_path / "t.duckdb"), "--",
                sys.executable, "-c", DLOPEN_BY_NAME, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["same", "True"], r.stdout


def test_replay_with_own_durations_reproduces_the_barriers(tmp_path: Path, program: Path) -> None:
    trace, _ = record(tmp_path, program, "fork", "2", "2")
    assert_replay_reproduces(trace, tmp_path / "replayed.duckdb")
