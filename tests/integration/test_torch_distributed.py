"""torch.distributed under torchrun, under `revati record`: the Llama-shaped decoder split over
ranks (tensor parallelism 2, 4 and 8; a 2-stage pipeline), and a rank killed inside an
all-reduce. Every process of the run (torchrun's agent and its workers) joins one virtual clock;
ranks come from the environment torchrun sets; ProcessGroupNCCL's calls reach revati's NCCL layer.

The time model, checked exactly on each trace: host intervals are as recorded; every kernel
starts at max(launch + launch latency, its stream's tail, the events it waits for); an all-reduce
starts on every rank at the last rank's arrival and lasts the collective model's prediction for
its bytes and world size; the compute stream's next kernel waits for it. `revati replay`
re-derives every time from these rules and must reproduce the trace to the nanosecond."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from revati.engine.barriers import collective_duration
from revati.predict import load_predictor
from tests.integration.record_helpers import REPO, assert_replay_reproduces, q
from tests.integration.torch_helpers import require_torch

LAYERS, STEPS = 2, 3
FORWARDS = 1 + STEPS  # the prefill, then one pass per decode step


def record_llama(base: Path, nproc: int, *example_args: str) -> tuple[dict, Path]:
    """`revati record --example llama --nproc N -- ARGS`: (rank 0's JSON line, the trace)."""
    require_torch()
    trace = base / "llama.duckdb"
    proc = subprocess.run(
        [sys.executable, "-m", "revati.cli", "record", "--quiet", "-o", str(trace),
         "--example", "llama", "--nproc", str(nproc), "--", "--model", "tiny",
         "--layers", str(LAYERS), "--prompt-len", "8", "--decode-steps", str(STEPS),
         *example_args],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, proc.stdout  # rank 0 alone reports
    return json.loads(lines[0]), trace


CONFIGS = {"tp2": (2, 2, 1), "tp4": (4, 4, 1), "tp8": (8, 8, 1), "pp2": (2, 1, 2)}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    nproc, tp, pp = CONFIGS[request.param]
    out, trace = record_llama(tmp_path_factory.mktemp(request.param), nproc, "--tp", str(tp),
                              "--pp", str(pp))  # fmt: skip
    return nproc, tp, pp, out, trace


def test_every_rank_runs_every_step_with_nothing_unsupported(run) -> None:
    nproc, tp, pp, out, trace = run
    assert (out["tp"], out["pp"], out["decode_steps"]) == (tp, pp, STEPS)
    assert out["decode_ms_median"] > 0 and out["prefill_ms"] > 0
    assert q(trace, "SELECT name FROM unsupported_calls") == []
    assert q(trace, "SELECT count(*) FROM api_calls WHERE name LIKE 'nccl%' AND result <> 0") == [
        (0,)
    ]
    # the workers' ranks from torchrun's environment; the agent is a participant without one
    ranks = q(
        trace,
        "SELECT rank, local_rank, world_size FROM processes WHERE rank IS NOT NULL ORDER BY 1",
    )
    assert ranks == [(r, r, nproc) for r in range(nproc)]
    agents = q(trace, "SELECT count(*) FROM processes WHERE rank IS NULL")[0][0]
    assert agents >= 1
    # each rank drove the GPU its LOCAL_RANK names, of the --nproc devices each process sees
    devices = q(
        trace,
        "SELECT p.rank, list(DISTINCT k.device_id) FROM kernels k JOIN streams s USING "
        "(stream_id) JOIN processes p ON p.pid = s.pid WHERE p.rank IS NOT NULL GROUP BY 1",
    )
    assert sorted(devices) == [(r, [r]) for r in range(nproc)]


def test_one_all_reduce_per_block_per_layer_per_forward(run) -> None:
    nproc, tp, pp, _, trace = run
    per_group = q(
        trace,
        "SELECT b.communicator, count(DISTINCT b.barrier_id), list(DISTINCT a.rank ORDER BY "
        "a.rank), min(b.world_size), max(b.world_size) FROM barriers b JOIN barrier_arrivals a "
        "USING (barrier_id) WHERE b.collective = 'allreduce' GROUP BY 1",
    )
    if tp == 1:
        assert per_group == []
    else:  # attention and MLP of each of this stage's layers, every forward; members = ranks
        assert len(per_group) == pp
        for _comm, count, members, lo, hi in per_group:
            assert count == 2 * (LAYERS // pp) * FORWARDS
            assert members == list(range(tp)) and lo == hi == tp
    pairs = q(trace, "SELECT count(*) FROM barriers WHERE collective = 'sendrecv'")[0][0]
    # per step and tensor-parallel rank: hidden states forward, sampled tokens back
    assert pairs == (2 * FORWARDS * tp if pp > 1 else 0)


def test_barriers_and_steps_follow_the_time_model_exactly(run, tmp_path: Path) -> None:
    nproc, tp, pp, _, trace = run
    predictor = load_predictor("h100-sxm", None)
    rows = q(
        trace,
        "SELECT b.barrier_id, b.collective, b.bytes, count(*), max(a.arrival_ns), b.release_ns, "
        "b.end_ns, bool_and(a.wait_ns = b.release_ns - a.arrival_ns), b.model FROM barriers b "
        "JOIN barrier_arrivals a USING (barrier_id) WHERE b.collective IN ('allreduce', "
        "'sendrecv') GROUP BY ALL",
    )
    assert rows
    for _bid, coll, nbytes, members, last, release, end, waits_exact, model in rows:
        # released at the last arrival; ends the collective model's prediction later
        assert release == last and waits_exact
        assert (end - release, model) == collective_duration(predictor, coll, nbytes, members)
    # each rank's next kernel (the residual add) starts after the all-reduce ended
    early = q(
        trace,
        "WITH ar AS (SELECT a.pid, k.kernel_id, k.launch_ns, b.end_ns FROM barriers b "
        "JOIN barrier_arrivals a USING (barrier_id) JOIN kernels k USING (kernel_id) "
        "WHERE b.collective = 'allreduce'), "
        "nxt AS (SELECT ar.kernel_id, ar.end_ns, min(k.start_ns) AS start_ns FROM ar "
        "JOIN streams s ON s.pid = ar.pid JOIN kernels k ON k.stream_id = s.stream_id "
        "AND k.launch_ns > ar.launch_ns GROUP BY ALL) "
        "SELECT count(*), count(*) FILTER (WHERE start_ns < end_ns) FROM nxt",
    )
    assert (early[0][0] > 0) == (tp > 1) and early[0][1] == 0, early
    assert_replay_reproduces(trace, tmp_path / "replayed.duckdb")


def test_a_killed_rank_fails_the_others_within_30_seconds(tmp_path: Path) -> None:
    require_torch()
    trace = tmp_path / "killed.duckdb"
    script = REPO / "tests" / "integration" / "torch_dist_kill.py"
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "revati.cli", "record", "--quiet", "-o", str(trace), "--",
         sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "3",
         str(script)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0  # torchrun reports the failed worker
    ends = q(
        trace,
        "SELECT rank, exit_code, exit_signal, ended_wall_ns FROM processes "
        "WHERE rank IS NOT NULL ORDER BY rank",
    )
    assert [r[0] for r in ends] == [0, 1, 2] and ends[1][2] == 9  # rank 1: SIGKILL
    died_wall = ends[1][3]
    for rank, code, signal, wall in (ends[0], ends[2]):
        # the survivors ended with an error, not a hang: the all-reduce raised NCCL's error (exit
        # 3, or SIGABRT when torch's NCCL watchdog thread, which sees the same error, terminates
        # the process first), or torchrun stopped them (SIGTERM) once rank 1 was gone
        assert code == 3 or signal in (6, 15), (rank, code, signal)
        if code == 3:
            assert f"rank {rank} step 3: DistBackendError" in proc.stdout, proc.stdout
        if signal == 6:
            assert f"[rank{rank}]" in proc.stderr and "remote process exited" in proc.stderr
        assert wall - died_wall < 30e9
    assert time.monotonic() - start < 300
    failed = q(
        trace,
        "SELECT b.collective, b.failed_rank, b.end_ns, list(a.rank ORDER BY a.rank) "
        "FROM barriers b JOIN barrier_arrivals a USING (barrier_id) "
        "WHERE b.failed_rank IS NOT NULL GROUP BY ALL",
    )
    assert failed == [("allreduce", 1, None, [0, 2])]
    info = subprocess.run(
        [sys.executable, "-m", "revati.cli", "info", str(trace)], capture_output=True, text=True
    )
    assert info.returncode == 0 and "rank 1 pid" in info.stdout and "SIGKILL" in info.stdout


def test_every_collective_torch_makes_reaches_the_nccl_layer(tmp_path: Path) -> None:
    require_torch()
    trace = tmp_path / "collectives.duckdb"
    script = REPO / "tests" / "integration" / "torch_dist_collectives.py"
    proc = subprocess.run(
        [sys.executable, "-m", "revati.cli", "record", "--quiet", "-o", str(trace), "--",
         sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(script)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(proc.stdout.split()) == ["0", "1", "ok", "ok"]
    assert q(trace, "SELECT name FROM unsupported_calls") == []
    assert q(trace, "SELECT count(*) FROM api_calls WHERE name LIKE 'nccl%' AND result <> 0") == [
        (0,)
    ]
    kinds = {k for (k,) in q(trace, "SELECT DISTINCT collective FROM barriers")}
    assert kinds == {"init", "split", "allreduce", "allgather", "reducescatter", "broadcast",
                     "reduce", "alltoall", "sendrecv"}  # fmt: skip
