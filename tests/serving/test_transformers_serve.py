"""HF `transformers serve --continuous-batching`, unmodified, under `revati bench`."""

from __future__ import annotations

import duckdb

from tests.conftest import run_cli
from tests.serving.hf_serve import NUM_PROMPTS
from tests.serving.served import (
    check_every_request_served_with_its_forced_length,
    check_the_report_from_the_trace_equals_benchs,
)


def test_every_request_is_served_with_its_forced_length(transformers_serve_run):
    # no end-of-sequence token in the model folder: each request streams exactly max_tokens
    check_every_request_served_with_its_forced_length(transformers_serve_run)


def test_the_report_from_the_trace_equals_benchs(transformers_serve_run):
    check_the_report_from_the_trace_equals_benchs(transformers_serve_run)


def test_the_trace_holds_the_servers_kernels_syncs_and_graphs(transformers_serve_run):
    with duckdb.connect(str(transformers_serve_run.trace), read_only=True) as con:

        def count(sql: str) -> int:
            return con.execute(sql).fetchone()[0]

        assert count("SELECT count(*) FROM unsupported_calls") == 0
        assert count("SELECT count(*) FROM kernels WHERE name LIKE '%gemm%'") > 0
        assert count("SELECT count(*) FROM syncs WHERE kind = 'stream'") > 0
        # --cb-use-cuda-graph: decode steps are captured once and replayed
        assert count("SELECT count(*) FROM api_calls WHERE name = 'cudaStreamBeginCapture'") > 0
        assert count("SELECT count(*) FROM api_calls WHERE name = 'cudaGraphLaunch'") > 0
        # every request was in flight while the device worked
        (first, last) = con.execute("SELECT min(arrival_ns), max(end_ns) FROM requests").fetchone()
        during = count(
            f"SELECT count(*) FROM kernels WHERE start_ns >= {first} AND end_ns <= {last}"
        )
        assert during > 0
    info = run_cli("info", str(transformers_serve_run.trace), check=True)
    assert f"requests  {NUM_PROMPTS} ok" in info.stdout
