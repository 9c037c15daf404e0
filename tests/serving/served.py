"""A serving stack under `revati bench`, recorded once, and the checks every such run passes:
each request served with its forced output length, and `revati report` on the trace giving the
figures `revati bench` printed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

from revati.serving.config import LoadConfig
from tests.conftest import run_cli
from tests.serving.test_bench import free_port


@dataclass(frozen=True)
class ServeRun:
    trace: Path
    load: tuple[str, ...]  # the load options given to `revati bench`
    figures: dict[str, float]  # what `revati bench --json` printed


def record_bench(
    work: Path,
    load: tuple[str, ...],
    server: list[str],
    env: dict[str, str],
    timeout: float,
    run_options: tuple[str, ...] = (),
) -> ServeRun:
    """`revati bench --json RUN_OPTIONS LOAD -- SERVER --host 127.0.0.1 --port P` into
    work/serve.duckdb; fails with the server's last output if the bench does."""
    trace, port = work / "serve.duckdb", free_port()
    proc = run_cli(
        "bench", "-o", str(trace), "--quiet", "--json", *run_options, *load,
        "--url", f"http://127.0.0.1:{port}",
        "--", *server, "--host", "127.0.0.1", "--port", str(port),
        env=env, timeout=timeout,
    )  # fmt: skip
    log = Path(f"{trace}.server.log")
    assert proc.returncode == 0, proc.stderr + (log.read_text()[-3000:] if log.exists() else "")
    return ServeRun(trace, load, json.loads(proc.stdout))


def planned_lengths(load: tuple[str, ...]) -> list[tuple[int, int]]:
    """(prompt, output) tokens of every request the load sends (the seed fixes them)."""
    options = dict(zip(load[::2], load[1::2], strict=True))
    config = LoadConfig(
        num_prompts=int(options["--num-prompts"]),
        input_len=options["--input-len"],
        output_len=options["--output-len"],
    )
    planned, _ = config.plan()
    return sorted((r.prompt_tokens, r.output_tokens) for r in planned)


def check_every_request_served_with_its_forced_length(run: ServeRun) -> None:
    lengths = planned_lengths(run.load)
    figures = run.figures
    assert (figures["completed"], figures["failed"]) == (len(lengths), 0)
    with duckdb.connect(str(run.trace), read_only=True) as con:
        rows = con.execute(
            "SELECT prompt_tokens, output_tokens FROM requests WHERE status = 'ok'"
        ).fetchall()
        (streamed,) = con.execute("SELECT count(*) FROM request_tokens").fetchone()
    # output lengths are forced: each request streams exactly max_tokens
    assert sorted(rows) == lengths
    assert streamed == figures["total_output_tokens"] == sum(o for _, o in lengths)
    assert 0 < figures["mean_ttft_ms"] < figures["mean_e2el_ms"]


def check_the_report_from_the_trace_equals_benchs(run: ServeRun) -> None:
    report = run_cli("report", str(run.trace), "--json", check=True)
    assert json.loads(report.stdout) == run.figures
