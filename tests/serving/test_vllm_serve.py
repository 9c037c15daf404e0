"""`vllm serve`, unmodified, under `revati bench`: 32 requests to the 2-layer Llama-3-8B (dummy
weights on the virtual device, eager). The sampled token ids are whatever the device memory held
(kernels write nothing under emulation), so many decode to no text; the load counts them from
vLLM's running usage figures, each at the time its chunk arrived.

Needs `pip install -e '.[dev,vllm]'`; skips, saying so, where vLLM is not installed.
"""

from __future__ import annotations

import os

import duckdb
import pytest

from tests.integration.vllm_helpers import MODEL_DIR, require_vllm, serve_command, vllm_env
from tests.serving.served import (
    ServeRun,
    check_every_request_served_with_its_forced_length,
    check_the_report_from_the_trace_equals_benchs,
    record_bench,
)

LOAD = ("--num-prompts", "32", "--input-len", "32:64", "--output-len", "8:16")


@pytest.fixture(scope="module")
def vllm_serve_run(tmp_path_factory: pytest.TempPathFactory) -> ServeRun:
    require_vllm()
    serve = serve_command(MODEL_DIR, 512)
    env = {**os.environ, **vllm_env()}
    return record_bench(tmp_path_factory.mktemp("vllm-serve"), LOAD, serve, env, timeout=1800)


def test_every_request_is_served_with_its_forced_length(vllm_serve_run: ServeRun) -> None:
    check_every_request_served_with_its_forced_length(vllm_serve_run)


def test_the_report_from_the_trace_equals_benchs(vllm_serve_run: ServeRun) -> None:
    check_the_report_from_the_trace_equals_benchs(vllm_serve_run)


def test_the_server_computed_while_the_requests_were_in_flight(vllm_serve_run: ServeRun) -> None:
    with duckdb.connect(str(vllm_serve_run.trace), read_only=True) as con:

        def count(sql: str) -> int:
            return con.execute(sql).fetchone()[0]

        assert count("SELECT count(*) FROM unsupported_calls") == 0
        first, last = con.execute("SELECT min(arrival_ns), max(end_ns) FROM requests").fetchone()
        during = f"start_ns >= {first} AND end_ns <= {last}"
        assert count(f"SELECT count(*) FROM kernels WHERE {during} AND name ILIKE '%flash%'") > 0
        gemms = "kernels JOIN kernel_features USING (kernel_id) WHERE gemm_m IS NOT NULL"
        assert count(f"SELECT count(*) FROM {gemms} AND {during}") > 0
