"""Serving metrics against hand-computed figures, and the same figures from a trace's rows."""

from __future__ import annotations

import pytest
from revati.recorder.reader import open_trace
from revati.recorder.writer import RunInfo, TraceWriter

from revati.errors import RevatiUsageError
from revati.serving.metrics import RequestTimes, compute, format_report, parse_slo
from revati.serving.request_log import (
    STATUS_FAILED,
    RequestLog,
    RequestRecord,
    request_tables,
)
from revati.serving.trace_requests import request_summary, trace_requests

MS = 1_000_000
A = RequestTimes(0, 150 * MS, 10, [100 * MS, 120 * MS, 150 * MS])
B = RequestTimes(50 * MS, 260 * MS, 4, [250 * MS])
FAILED = RequestTimes(10 * MS, 30 * MS, 8, [], ok=False)


def test_figures_of_known_requests():
    f = compute([A, B, FAILED]).figures
    assert (f["completed"], f["failed"]) == (2, 1)
    assert f["duration"] == pytest.approx(0.26)  # last end - first arrival, failures included
    assert (f["total_input_tokens"], f["total_output_tokens"]) == (14, 4)
    assert f["request_throughput"] == pytest.approx(2 / 0.26)
    assert f["output_throughput"] == pytest.approx(4 / 0.26)
    assert f["total_token_throughput"] == pytest.approx(18 / 0.26)
    assert (f["mean_ttft_ms"], f["median_ttft_ms"]) == (150.0, 150.0)
    assert f["p99_ttft_ms"] == pytest.approx(199.0)  # linear interpolation, as numpy/vLLM
    assert f["mean_tpot_ms"] == 25.0  # B has one token: no TPOT
    assert (f["mean_itl_ms"], f["p99_itl_ms"]) == (25.0, pytest.approx(29.9))
    assert f["mean_e2el_ms"] == 180.0
    assert "request_goodput" not in f


def test_goodput_counts_requests_within_every_slo():
    assert compute([A, B], parse_slo("ttft:150")).figures["request_goodput"] == pytest.approx(
        1 / 0.26
    )
    assert compute([A, B], parse_slo("ttft:300,tpot:20")).figures[
        "request_goodput"
    ] == pytest.approx(1 / 0.26)  # A's TPOT is 25 ms
    assert compute([A, B], parse_slo("e2el:100")).figures["request_goodput"] == 0.0


@pytest.mark.parametrize("bad", ["ttft", "ttft:0", "speed:3", "ttft:fast"])
def test_bad_slo_is_refused(bad):
    with pytest.raises(RevatiUsageError, match="--slo"):
        parse_slo(bad)


def test_report_layout_is_vllms():
    text = format_report(compute([A, B], {"ttft": 200.0}))
    lines = text.splitlines()
    assert lines[0] == "============ Serving Benchmark Result ============"
    assert lines[1].startswith("Successful requests:") and lines[1].split()[-1] == "2"
    assert "Request goodput (req/s):" in text
    assert "-----Time per Output Token (excl. 1st token)------" in lines
    assert "Mean TTFT (ms):                          150.00    " in lines
    assert lines[-1] == "=" * 50


def test_trace_rows_give_the_same_report(tmp_path):
    epoch = 5_000_000_000
    log = RequestLog(tmp_path)
    for r in (B, A):  # written out of arrival order: ids follow arrival
        log.write(
            RequestRecord(
                r.arrival + epoch, r.end + epoch, r.prompt_tokens, [t + epoch for t in r.tokens]
            )
        )
    log.write(
        RequestRecord(FAILED.arrival + epoch, FAILED.end + epoch, 8, [], STATUS_FAILED, "HTTP 500")
    )
    log.close()
    with log.path.open("a") as f:
        f.write('{"arrival": 1')  # a line cut short by a killed load generator is skipped
    trace = tmp_path / "t.duckdb"
    tables = request_tables(tmp_path, epoch)
    assert len(tables["requests"]["request_id"]) == 3
    with TraceWriter(trace, RunInfo()) as w:
        for table, columns in tables.items():
            w.append(table, columns)
    with open_trace(trace) as reader:
        rows = trace_requests(reader)
        assert request_summary(reader) == {"ok": 2, "failed": 1}
        ids = reader.sql("SELECT request_id, arrival_ns, error FROM requests ORDER BY 1")
    assert ids == [(0, 0, None), (1, 10 * MS, "HTTP 500"), (2, 50 * MS, None)]
    assert compute(rows).figures == compute([A, B, FAILED]).figures
