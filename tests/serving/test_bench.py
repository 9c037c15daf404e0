"""`revati bench` against a small OpenAI-compatible server with fixed virtual delays."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import run_cli

SERVER = Path(__file__).resolve().parent / "openai_server.py"
PREFILL_MS, DECODE_MS = 100, 20
# Host CPU work counts 1/DILATION: a second of real work is a microsecond of virtual time, so
# the client's latencies are the server's sleeps.
DILATION = "1e6"
EXACT_MS = 1e-3  # one virtual microsecond


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_args(out: Path, port: int, *load: str, server: tuple[str, ...] = ()) -> list[str]:
    cmd = server or (sys.executable, str(SERVER), str(port), str(PREFILL_MS), str(DECODE_MS))
    return [
        "bench", "-o", str(out), "--quiet", "--dilation", DILATION,
        "--url", f"http://127.0.0.1:{port}", *load, "--", *cmd,
    ]  # fmt: skip


def test_latencies_are_the_servers_delays_and_the_trace_holds_the_report(tmp_path):
    out = tmp_path / "run.duckdb"
    load = ("--num-prompts", "6", "--input-len", "8:32", "--output-len", "5", "--json")
    proc = run_cli(*bench_args(out, free_port(), *load), timeout=300)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    assert (figures["completed"], figures["failed"]) == (6, 0)
    for key in ("mean_ttft_ms", "median_ttft_ms", "p99_ttft_ms"):
        assert figures[key] == pytest.approx(PREFILL_MS, abs=EXACT_MS)
    for key in ("mean_tpot_ms", "p99_tpot_ms", "mean_itl_ms", "p99_itl_ms"):
        assert figures[key] == pytest.approx(DECODE_MS, abs=EXACT_MS)
    assert figures["mean_e2el_ms"] == pytest.approx(PREFILL_MS + 4 * DECODE_MS, abs=EXACT_MS)
    assert figures["total_output_tokens"] == 30
    # `revati report` gives the same figures from the trace alone ...
    report = run_cli("report", str(out), "--json", check=True)
    assert json.loads(report.stdout) == figures
    # ... and they are those of the trace's rows
    with duckdb.connect(str(out), read_only=True) as con:
        ttft, span, tokens, prompt = con.execute(
            "SELECT avg(first_token_ns - arrival_ns), max(end_ns) - min(arrival_ns), "
            "sum(output_tokens), sum(prompt_tokens) FROM requests WHERE status = 'ok'"
        ).fetchone()
        (per_request,) = con.execute(
            "SELECT count(DISTINCT request_id) FROM request_tokens"
        ).fetchone()
    assert figures["mean_ttft_ms"] == pytest.approx(ttft / 1e6)
    assert figures["duration"] == pytest.approx(span / 1e9)
    assert (figures["total_output_tokens"], figures["total_input_tokens"]) == (tokens, prompt)
    assert per_request == 6 and 6 * 8 <= prompt <= 6 * 32
    info = run_cli("info", str(out), check=True)
    assert "requests  6 ok" in info.stdout


def test_chat_endpoint_paced_with_one_request_in_flight(tmp_path):
    out = tmp_path / "run.duckdb"
    load = ("--endpoint", "/v1/chat/completions", "--num-prompts", "4", "--output-len", "3",
            "--request-rate", "50", "--max-concurrency", "1")  # fmt: skip
    proc = run_cli(*bench_args(out, free_port(), *load), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Successful requests:                     4" in proc.stdout
    with duckdb.connect(str(out), read_only=True) as con:
        rows = con.execute(
            "SELECT arrival_ns, first_token_ns, end_ns FROM requests ORDER BY request_id"
        ).fetchall()
    for (_, _, end), (arrival, _, _) in zip(rows, rows[1:], strict=False):
        assert arrival >= end  # never two in flight
    for arrival, first, end in rows:
        assert first - arrival == pytest.approx(PREFILL_MS * 1e6, abs=1e3)
        assert end - first == pytest.approx(2 * DECODE_MS * 1e6, abs=1e3)


def _one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("revati: error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_a_server_that_exits_at_once(tmp_path):
    out = tmp_path / "run.duckdb"
    server = (sys.executable, "-c", "print('no model here'); raise SystemExit(3)")
    proc = run_cli(*bench_args(out, free_port(), server=server), timeout=300)
    assert proc.returncode != 0
    line = _one_error_line(proc.stderr)
    assert "exited with status 3" in line and "no model here" in line
    assert out.exists()  # the trace is kept


def test_a_server_that_never_becomes_healthy(tmp_path):
    out, port = tmp_path / "run.duckdb", free_port()
    server = (sys.executable, str(SERVER), str(port), "1", "1", "--never-ready")
    proc = run_cli(*bench_args(out, port, "--ready-timeout", "20", server=server), timeout=300)
    assert proc.returncode != 0
    line = _one_error_line(proc.stderr)
    assert "did not answer" in line and "20 s of virtual time" in line
    assert "serving on port" in line  # the server's last output
    assert out.exists()


def test_a_server_that_rejects_extensions_gets_plain_openai_requests(tmp_path):
    out, port = tmp_path / "run.duckdb", free_port()
    server = (sys.executable, str(SERVER), str(port), "1", "1", "--strict")
    load = ("--num-prompts", "3", "--output-len", "4", "--json")
    proc = run_cli(*bench_args(out, port, *load, server=server), timeout=300)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    assert (figures["completed"], figures["total_output_tokens"]) == (3, 12)


def _token_times(trace: Path) -> list[list[int]]:
    with duckdb.connect(str(trace), read_only=True) as con:
        rows = con.execute(
            "SELECT list(at_ns ORDER BY token_index) FROM request_tokens "
            "GROUP BY request_id ORDER BY request_id"
        ).fetchall()
    return [times for (times,) in rows]


def test_tokens_without_text_or_sent_together_count_from_the_usage_figures(tmp_path):
    out, port = tmp_path / "run.duckdb", free_port()
    server = (sys.executable, str(SERVER), str(port), str(PREFILL_MS), str(DECODE_MS), "--terse")
    load = ("--num-prompts", "3", "--output-len", "5", "--json")
    proc = run_cli(*bench_args(out, port, *load, server=server), timeout=300)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    assert (figures["completed"], figures["total_output_tokens"]) == (3, 15)
    assert figures["mean_ttft_ms"] == pytest.approx(PREFILL_MS, abs=EXACT_MS)
    # TPOT spans the whole decode; ITL counts each token, the last two received together
    assert figures["mean_tpot_ms"] == pytest.approx(DECODE_MS, abs=EXACT_MS)
    assert figures["mean_itl_ms"] == pytest.approx(DECODE_MS, abs=EXACT_MS)
    for times in _token_times(out):
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert gaps[:2] == pytest.approx([DECODE_MS * 1e6] * 2, abs=1e3)
        assert gaps[2:] == pytest.approx([2 * DECODE_MS * 1e6, 0], abs=1e3)
    report = run_cli("report", str(out), "--json", check=True)
    assert json.loads(report.stdout) == figures


def test_a_server_without_running_usage_figures_adds_the_rest_with_its_last_count(tmp_path):
    out, port = tmp_path / "run.duckdb", free_port()
    server = (sys.executable, str(SERVER), str(port), "1", "1", "--strict", "--terse")
    load = ("--num-prompts", "2", "--output-len", "5", "--json")
    proc = run_cli(*bench_args(out, port, *load, server=server), timeout=300)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    assert (figures["completed"], figures["total_output_tokens"]) == (2, 10)
    # chunks of tokens 0, 2 and 3-4 had text (one token each); 1 and 4 came with the last count
    for times in _token_times(out):
        assert times[0] < times[1] < times[2] <= times[3] == times[4]


def test_a_server_that_fails_the_test_request(tmp_path):
    out, port = tmp_path / "run.duckdb", free_port()
    server = (sys.executable, str(SERVER), str(port), "1", "1", "--fail")
    proc = run_cli(*bench_args(out, port, server=server), timeout=300)
    assert proc.returncode != 0
    line = _one_error_line(proc.stderr)
    assert "failed the test request" in line and "HTTP 400" in line and "no such model" in line
    assert out.exists()  # the trace is kept
    with duckdb.connect(str(out), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM requests").fetchone() == (0,)


def test_a_malformed_dataset_fails_before_anything_starts(tmp_path):
    out = tmp_path / "run.duckdb"
    out.write_bytes(b"an earlier trace")
    dataset = tmp_path / "d.jsonl"
    dataset.write_text('{"prompt_len": 4, "output_len": 4}\n{"prompt_len": }\n')
    proc = run_cli(*bench_args(out, free_port(), "--dataset", str(dataset), "--force"))
    assert proc.returncode == 2
    line = _one_error_line(proc.stderr)
    assert str(dataset) in line and "line 2" in line
    assert out.read_bytes() == b"an earlier trace"  # nothing touched


def test_ctrl_c_stops_the_server_and_keeps_the_finished_requests(tmp_path):
    out, port = tmp_path / "run.duckdb", free_port()
    dataset = tmp_path / "d.jsonl"  # one short request, one that would stream for hours
    dataset.write_text(
        '{"prompt_len": 4, "output_len": 2}\n{"prompt_len": 4, "output_len": 999999}\n'
    )
    args = bench_args(out, port, "--dataset", str(dataset), "--num-prompts", "2")
    proc = subprocess.Popen(
        [sys.executable, "-m", "revati.cli", *args],
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    log = Path(str(out) + ".server.log")
    deadline = time.monotonic() + 120
    while "serving on port" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    time.sleep(3)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C on the terminal does
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    with duckdb.connect(str(out), read_only=True) as con:
        rows = con.execute("SELECT status, output_tokens FROM requests ORDER BY 2").fetchall()
    assert rows[0] == ("ok", 2)
    assert rows[1][0] == "cancelled" and rows[1][1] > 2
    assert "Traceback" not in stderr


def test_no_launch_loads_a_server_another_process_of_the_run_started(tmp_path):
    out, port = tmp_path / "run.duckdb", free_port()
    revati = f"{sys.executable} -m revati.cli"
    script = (
        f"{sys.executable} {SERVER} {port} {PREFILL_MS} {DECODE_MS} & "
        f"{revati} bench --no-launch --url http://127.0.0.1:{port} --num-prompts 3 "
        f"--output-len 4 --json > {tmp_path / 'report.json'}; kill $!"
    )
    # dilation 1: bash waiting for its children is a wait revati does not see, so time flows
    proc = run_cli("record", "-o", str(out), "--quiet", "--", "bash", "-c", script, timeout=300)
    assert proc.returncode == 0, proc.stderr
    printed = json.loads((tmp_path / "report.json").read_text())
    assert printed["completed"] == 3 and printed["mean_ttft_ms"] >= PREFILL_MS
    report = run_cli("report", str(out), "--json", check=True)
    assert json.loads(report.stdout) == printed  # the trace's rows are what the client saw
