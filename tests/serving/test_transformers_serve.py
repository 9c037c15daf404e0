"""HF `transformers serve --continuous-batching`, unmodified, under `revati bench`."""

from __future__ import annotations

import json

import duckdb

from revati.serving.config import LoadConfig
from tests.conftest import run_cli
from tests.serving.hf_serve import LOAD, NUM_PROMPTS


def planned_lengths() -> list[tuple[int, int]]:
    """(prompt, output) tokens of every request the load sends (the seed fixes them)."""
    options = dict(zip(LOAD[::2], LOAD[1::2], strict=True))
    config = LoadConfig(
        num_prompts=NUM_PROMPTS,
        input_len=options["--input-len"],
        output_len=options["--output-len"],
    )
    planned, _ = config.plan()
    return sorted((r.prompt_tokens, r.output_tokens) for r in planned)


def test_every_request_is_served_with_its_forced_length(transformers_serve_run):
    figures = transformers_serve_run.figures
    assert (figures["completed"], figures["failed"]) == (NUM_PROMPTS, 0)
    with duckdb.connect(str(transformers_serve_run.trace), read_only=True) as con:
        rows = con.execute(
            "SELECT prompt_tokens, output_tokens FROM requests WHERE status = 'ok'"
        ).fetchall()
        (streamed,) = con.execute("SELECT count(*) FROM request_tokens").fetchone()
    # no end-of-sequence token in the model folder: each request streams exactly max_tokens
    assert sorted(rows) == planned_lengths()
    assert streamed == figures["total_output_tokens"] == sum(o for _, o in planned_lengths())
    assert 0 < figures["mean_ttft_ms"] < figures["mean_e2el_ms"]


def test_the_report_from_the_trace_equals_benchs(transformers_serve_run):
    report = run_cli("report", str(transformers_serve_run.trace), "--json", check=True)
    assert json.loads(report.stdout) == transformers_serve_run.figures


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
