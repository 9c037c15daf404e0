"""`vllm serve --tensor-parallel-size 2`, unmodified, under `revati bench --devices 2`: the API
server, the engine core and two worker processes on one virtual node, 8 short requests to the
2-layer Llama-3-8B (dummy weights, eager). vLLM's custom all-reduce is on (FlashInfer's off, as
in tests/integration/test_vllm_parallel.py), so the all-reduces of the requests' forward passes
are barriers of both ranks (`ipc_group_allreduce`; NCCL's for any too large for its buffers).

Needs `pip install -e '.[dev,vllm]'`; skips, saying so, where vLLM is not installed.
"""

from __future__ import annotations

import os

import pytest

from tests.integration.record_helpers import q
from tests.integration.vllm_helpers import (
    ALL_REDUCES_PER_FORWARD,
    MODEL_DIR,
    forward_passes,
    hidden_state_all_reduces,
    parallel_env,
    require_vllm,
    serve_command,
)
from tests.serving.served import (
    ServeRun,
    check_every_request_served_with_its_forced_length,
    check_the_report_from_the_trace_equals_benchs,
    planned_lengths,
    record_bench,
)

TP = 2
LOAD = ("--num-prompts", "8", "--input-len", "16:32", "--output-len", "4:8")


@pytest.fixture(scope="module")
def tp_serve_run(tmp_path_factory: pytest.TempPathFactory) -> ServeRun:
    require_vllm()
    serve = serve_command(MODEL_DIR, 512, "--tensor-parallel-size", str(TP))
    env = {**os.environ, **parallel_env()}
    work = tmp_path_factory.mktemp("vllm-serve-tp")
    return record_bench(work, LOAD, serve, env, timeout=1800, run_options=("--devices", str(TP)))


def load_window(run: ServeRun) -> tuple[int, int]:
    """Virtual ns from the first request's arrival to the last one's end."""
    ((first, last),) = q(run.trace, "SELECT min(arrival_ns), max(end_ns) FROM requests")
    return first, last


def test_every_request_is_served_with_its_forced_length(tp_serve_run: ServeRun) -> None:
    check_every_request_served_with_its_forced_length(tp_serve_run)


def test_the_report_from_the_trace_equals_benchs(tp_serve_run: ServeRun) -> None:
    check_the_report_from_the_trace_equals_benchs(tp_serve_run)


def test_nothing_is_unsupported_and_no_nccl_call_fails(tp_serve_run: ServeRun) -> None:
    trace = tp_serve_run.trace
    assert q(trace, "SELECT DISTINCT name FROM unsupported_calls") == []
    nccl_failures = "SELECT count(*) FROM api_calls WHERE name LIKE 'nccl%' AND result <> 0"
    assert q(trace, nccl_failures) == [(0,)]
    assert q(trace, "SELECT count(*) FROM kernels WHERE name LIKE 'kernel#%'") == [(0,)]


def test_both_ranks_ran_kernels_on_their_own_gpu_while_serving(tp_serve_run: ServeRun) -> None:
    first, last = load_window(tp_serve_run)
    devices = q(
        tp_serve_run.trace,
        f"""SELECT p.rank, list(DISTINCT k.device_id ORDER BY k.device_id)
            FROM kernels k JOIN streams s USING (stream_id) JOIN processes p ON p.pid = s.pid
            WHERE k.start_ns BETWEEN {first} AND {last} GROUP BY 1 ORDER BY 1""",
    )
    assert devices == [(r, [r]) for r in range(TP)], devices


def test_every_forward_pass_all_reduces_across_both_ranks(tp_serve_run: ServeRun) -> None:
    reduces = hidden_state_all_reduces(tp_serve_run.trace, load_window(tp_serve_run))
    assert reduces, "no all-reduce while the requests were in flight"
    assert all(ranks == list(range(TP)) and pids == TP for _, ranks, pids in reduces), reduces
    runs = forward_passes(reduces)
    assert all(n % ALL_REDUCES_PER_FORWARD == 0 for _, n in runs), runs
    # a request gains at most one token per pass: the longest output takes that many passes
    longest = max(output for _, output in planned_lengths(tp_serve_run.load))
    assert sum(n for _, n in runs) // ALL_REDUCES_PER_FORWARD >= longest, runs


def test_the_all_reduces_are_barriers_released_at_the_last_arrival(tp_serve_run: ServeRun) -> None:
    trace = tp_serve_run.trace
    first, last = load_window(tp_serve_run)
    rows = q(
        trace,
        f"""SELECT k.name, count(DISTINCT a.pid),
                   bool_and(a.wait_ns = b.release_ns - a.arrival_ns AND b.end_ns >= b.release_ns)
            FROM barriers b JOIN barrier_arrivals a USING (barrier_id)
                 JOIN kernels k USING (kernel_id)
            WHERE b.collective = 'allreduce' AND b.release_ns BETWEEN {first} AND {last}
            GROUP BY 1 ORDER BY 1""",
    )
    # short prompts: the all-reduces fit vLLM's custom all-reduce buffers; NCCL takes any other
    names = {name for name, _, _ in rows}
    assert "ipc_group_allreduce" in names, rows
    assert names <= {"ipc_group_allreduce", "ncclDevKernel_allreduce"}, rows
    assert all(pids == TP and released for _, pids, released in rows), rows
    # no launch of vLLM's custom all-reduce kernel stayed a kernel of its own
    assert q(trace, "SELECT count(*) FROM kernels WHERE name LIKE '%cross_device%'") == [(0,)]
