"""vLLM, unmodified, with tensor parallelism 2 under `revati record --devices 2`: the engine
core and two worker processes (vLLM's MultiprocExecutor, shared-memory broadcast queues between
them) on one virtual node, NCCL through vLLM's own bindings (PyNcclCommunicator). Eager, on the
2-layer Llama-3-8B with dummy weights.

vLLM's custom all-reduce is on (its default): an all-reduce small enough for its IPC buffers is
its kernel `cross_device_reduce_1stage`, which waits for its peer's flags in IPC-shared signal
buffers; under revati each launch is a barrier of the two ranks (an `ipc_group_allreduce`), and the
larger ones (the profiling pass) are NCCL all-reduces. FlashInfer's all-reduce is off
(`VLLM_ALLREDUCE_USE_FLASHINFER=0`: its workspace needs cuda-python's statically linked CUDA
runtime, which fails here with two unsupported `cuGetExportTable` calls per rank before vLLM
falls back; README, "vLLM under revati").

Needs `pip install -e '.[dev,vllm]'`; skips, saying so, where vLLM is not installed.
"""

from __future__ import annotations

import pytest

from tests.integration.torch_helpers import TorchRun, record_python
from tests.integration.vllm_helpers import (
    ALL_REDUCES_PER_FORWARD,
    MODEL_DIR,
    OUTPUT_TOKENS,
    PROMPTS,
    forward_passes,
    hidden_state_all_reduces,
    parallel_env,
    parallel_program,
    require_vllm,
)

TP = 2


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> TorchRun:
    require_vllm()
    program = parallel_program(MODEL_DIR, tp=TP)
    return record_python(tmp_path_factory.mktemp("tp2"), program, "--devices", str(TP),
                         env=parallel_env(), timeout=1800)  # fmt: skip


def test_every_request_produces_its_tokens(run: TorchRun) -> None:
    outputs = run.lines("request")
    assert len(outputs) == PROMPTS, run.proc.stdout
    for line in outputs:
        _, prompt_len, produced = line.split()
        assert int(produced) == OUTPUT_TOKENS and int(prompt_len) > 0, line


def test_nothing_is_unsupported_and_no_nccl_call_fails(run: TorchRun) -> None:
    assert run.q("SELECT DISTINCT name FROM unsupported_calls") == []
    assert run.q("SELECT count(*) FROM api_calls WHERE name LIKE 'nccl%' AND result <> 0") == [(0,)]
    assert run.q("SELECT count(*) FROM kernels WHERE name LIKE 'kernel#%'") == [(0,)]


def test_each_worker_is_a_rank_driving_its_own_gpu(run: TorchRun) -> None:
    devices = run.q(
        "SELECT p.rank, list(DISTINCT k.device_id) FROM kernels k JOIN streams s USING "
        "(stream_id) JOIN processes p ON p.pid = s.pid GROUP BY 1 ORDER BY 1"
    )
    assert devices == [(r, [r]) for r in range(TP)], devices


def test_every_forward_pass_all_reduces_across_both_ranks(run: TorchRun) -> None:
    reduces = hidden_state_all_reduces(run.trace)
    assert all(ranks == list(range(TP)) and pids == TP for _, ranks, pids in reduces), reduces
    # vLLM's scheduler and prefix caching decide how the prompts split into passes
    runs = forward_passes(reduces)
    assert all(n % ALL_REDUCES_PER_FORWARD == 0 for _, n in runs), runs
    # a request gains at most one token per pass: OUTPUT_TOKENS passes at least; and once every
    # prompt is in, the requests decode together (a pass of PROMPTS tokens)
    passes = sum(n for _, n in runs) // ALL_REDUCES_PER_FORWARD
    assert passes >= OUTPUT_TOKENS, runs
    assert any(tokens == PROMPTS for tokens, _ in runs), runs


def test_small_all_reduces_are_custom_all_reduce_barriers_and_large_ones_nccl(
    run: TorchRun,
) -> None:
    rows = run.q(
        """SELECT k.name, max(b.bytes), count(DISTINCT b.barrier_id), count(DISTINCT a.pid)
           FROM barriers b JOIN barrier_arrivals a USING (barrier_id) JOIN kernels k USING (kernel_id)
           WHERE b.collective = 'allreduce' GROUP BY 1 ORDER BY 1"""
    )
    by_name = {name: (largest, count, pids) for name, largest, count, pids in rows}
    assert set(by_name) == {"ipc_group_allreduce", "ncclDevKernel_allreduce"}, rows
    largest, count, pids = by_name["ipc_group_allreduce"]
    # one per all-reduce of a pass of a few tokens (vLLM's IPC buffer: 8 MiB), across both ranks
    assert count % ALL_REDUCES_PER_FORWARD == 0 and largest < 8 << 20 and pids == TP, rows
    # no launch of the kernel stayed a kernel of its own
    assert run.q("SELECT count(*) FROM kernels WHERE name LIKE '%cross_device_reduce%'") == [(0,)]


def test_barriers_release_at_the_last_arrival(run: TorchRun) -> None:
    rows = run.q(
        """SELECT bool_and(a.wait_ns = b.release_ns - a.arrival_ns), bool_and(a.wait_ns >= 0),
                  bool_and(b.end_ns >= b.release_ns), count(DISTINCT b.barrier_id)
           FROM barriers b JOIN barrier_arrivals a USING (barrier_id)
           WHERE b.collective <> 'init'"""
    )
    assert rows[0][:3] == (True, True, True) and rows[0][3] > 0, rows
