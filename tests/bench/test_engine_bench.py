"""Benchmarks of the engine at serving rates (run: `pytest tests/bench/test_engine_bench.py -s`).

One CUDA program (tests/cuda/engine_load.cu) launches many tiny kernels, eagerly or as CUDA-graph
replays, under `revati record`. Figures printed, per pattern:
- kernel records per second end to end: kernels / the program's wall time (launches and syncs
  both wait for the engine), and kernels / the coordinator's CPU seconds beyond an empty run
  (CPU time is what a shared machine does not blur);
- wall time per sync against the kernels queued before it;
- start (revati invoked -> the program's main) and close (main returns -> revati exits) of a run;
- trace bytes per kernel.
They assert that every kernel and sync reached the trace, never a speed. The load average at the
time is printed with them: wall figures on a busy 2-core machine move with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pytest
from revati.recorder.reader import open_trace
from revati.recorder.writer import RunInfo, TraceWriter

from revati.engine.trace_sink import TraceSink
from tests.conftest import REPO
from tests.engine_records import engine, graph_launch, launch_batch
from tests.integration.record_helpers import build_cuda

SOURCE = REPO / "tests" / "cuda" / "engine_load.cu"
pytestmark = pytest.mark.bench


@dataclass(frozen=True)
class Run:
    """One `revati record` of engine_load: what the program printed and what revati cost."""

    values: dict[str, int]
    total_ns: int  # revati invoked -> revati exited
    revati_cpu_ns: int  # revati's CPU time, the traced program's own taken out
    trace: Path

    @property
    def kernels(self) -> int:
        return self.values["kernels"]

    @property
    def start_ns(self) -> int:
        return self.values["start_real_ns"] - self.values["invoked_real_ns"]

    @property
    def close_ns(self) -> int:
        return self.values["exited_real_ns"] - self.values["end_real_ns"]


@pytest.fixture(scope="module")
def engine_load(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_cuda(tmp_path_factory.getbasetemp(), SOURCE, "-cudart", "shared")


@pytest.fixture(scope="module")
def empty_run(engine_load: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    record(tmp_path_factory.mktemp("warm"), engine_load, "empty")  # shim build, page cache
    return record(tmp_path_factory.mktemp("empty"), engine_load, "empty")


def record(tmp_path: Path, program: Path, *args: str) -> Run:
    tmp_path.mkdir(parents=True, exist_ok=True)
    trace = tmp_path / "bench.duckdb"
    cmd = [sys.executable, "-m", "revati.cli", "record", "--quiet", "-o", str(trace), "--"]
    invoked = time.time_ns()
    t0 = time.monotonic_ns()
    proc = subprocess.Popen([*cmd, str(program), *args], stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    total = time.monotonic_ns() - t0
    exited = time.time_ns()
    out = proc.stdout.read() if proc.stdout else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, out
    values = {
        k: int(v) for k, v in (line.split("=", 1) for line in out.splitlines() if "=" in line)
    }
    values.update(invoked_real_ns=invoked, exited_real_ns=exited)
    cpu = int((usage.ru_utime + usage.ru_stime) * 1e9) - values["cpu_ns"]
    return Run(values, total, cpu, trace)


def _load() -> str:
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def _kernel_count(trace: Path) -> int:
    with duckdb.connect(str(trace), read_only=True) as con:
        return con.execute("SELECT count(*) FROM kernels").fetchone()[0]


def _sync_count(trace: Path) -> int:
    with duckdb.connect(str(trace), read_only=True) as con:
        return con.execute("SELECT count(*) FROM syncs WHERE kind = 'stream'").fetchone()[0]


def _throughput(label: str, run: Run, empty: Run) -> None:
    wall = run.values["host_wall_ns"]
    engine_cpu = max(run.revati_cpu_ns - empty.revati_cpu_ns, 1)
    size = run.trace.stat().st_size - empty.trace.stat().st_size
    print(
        f"\n{label}: {run.kernels:,} kernels, {run.values['syncs']:,} syncs: "
        f"{run.kernels / wall * 1e3:.3f} M kernel records/s end to end (program wall "
        f"{wall / 1e9:.2f} s, {wall / run.kernels:.0f} ns per kernel); "
        f"{run.kernels / engine_cpu * 1e3:.3f} M per engine CPU second "
        f"({engine_cpu / 1e9:.2f} s); trace {size / run.kernels:.1f} bytes per kernel; {_load()}"
    )


def test_eager_one_sync(tmp_path: Path, engine_load: Path, empty_run: Run) -> None:
    run = record(tmp_path, engine_load, "eager", "200000", "0")
    assert _kernel_count(run.trace) == run.kernels == 200_000
    assert _sync_count(run.trace) == 1
    _throughput("eager, 1 sync", run, empty_run)


def test_eager_sync_every_100(tmp_path: Path, engine_load: Path, empty_run: Run) -> None:
    run = record(tmp_path, engine_load, "eager", "200000", "100")
    assert _kernel_count(run.trace) == run.kernels == 200_000
    assert _sync_count(run.trace) == 2_000
    _throughput("eager, a sync every 100", run, empty_run)


def test_graph_replays(tmp_path: Path, engine_load: Path, empty_run: Run) -> None:
    run = record(tmp_path, engine_load, "graph", "2000", "500")
    assert _kernel_count(run.trace) == run.kernels == 1_000_000
    assert _sync_count(run.trace) == 2_000
    _throughput("graph of 500 kernels replayed 2,000 times, a sync after each", run, empty_run)
    wall = run.values["host_wall_ns"]
    print(f"  per replay (launch + sync): {wall / 2000 / 1e3:.0f} µs wall")


def test_sync_cost_against_queued_kernels(
    tmp_path: Path, engine_load: Path, empty_run: Run
) -> None:
    print(f"\nwall time per sync after N queued kernels ({_load()}):")
    for every in (1, 10, 100, 1000):
        n = min(2000 * every, 200_000)
        run = record(tmp_path / str(every), engine_load, "eager", str(n), str(every))
        assert _sync_count(run.trace) == run.values["syncs"] == n // every
        syncs = run.values["syncs"]
        per_sync = run.values["sync_wall_ns"] / syncs
        cpu = (run.revati_cpu_ns - empty_run.revati_cpu_ns) / syncs
        goal = 50_000 + every * 500
        print(
            f"  N = {every:>4}: {per_sync / 1e3:8.1f} µs wall (goal < {goal / 1e3:.1f} µs); "
            f"engine CPU per sync and its N kernels {cpu / 1e3:.1f} µs"
        )


def test_start_and_close(tmp_path: Path, engine_load: Path, empty_run: Run) -> None:
    runs = [empty_run, *(record(tmp_path / str(i), engine_load, "empty") for i in range(2))]
    for run in runs:
        assert run.start_ns > 0 and run.close_ns > 0
    starts = sorted(r.start_ns for r in runs)
    closes = sorted(r.close_ns for r in runs)
    print(
        f"\nstart of a run (revati invoked -> program's main): {starts[1] / 1e6:.0f} ms median "
        f"of 3 ({starts[0] / 1e6:.0f}-{starts[-1] / 1e6:.0f}); close (main returns -> revati "
        f"exits): {closes[1] / 1e6:.0f} ms ({closes[0] / 1e6:.0f}-{closes[-1] / 1e6:.0f}); "
        f"revati CPU for an empty run {empty_run.revati_cpu_ns / 1e6:.0f} ms; {_load()}"
    )


def _in_process(tmp_path: Path, name: str, batches: list[np.ndarray]) -> tuple[Path, list[float]]:
    """Feed `batches` to an engine in this process, writing a trace as `revati record` does
    (event order left to the reader); CPU seconds of ingest, of the writer's inserts, of the
    close, and of a reader building the event order."""
    path = tmp_path / f"{name}.duckdb"
    writer = TraceWriter(path, RunInfo(), build_event_order=False)
    sink = TraceSink(writer)
    ingest, state = engine(sink, tmp_path)
    t0 = time.process_time()
    first = 0
    for batch in batches:
        ingest.ingest(state, first, batch)
        first += len(batch)
    t1 = time.process_time()
    sink.close()
    t2 = time.process_time()
    writer.close()
    t3 = time.process_time()
    with open_trace(path) as reader:
        assert reader.index.count == reader.event_count()  # the order, sorted
    t4 = time.process_time()
    return path, [t1 - t0, t2 - t1, t3 - t2, t4 - t3]


def test_engine_cpu_per_record(tmp_path: Path) -> None:
    """The engine in this process, without the program or the scheduler: CPU time of ingesting
    ring batches of 65,536 launches (predict, device model, rows) and of writing them."""
    n = 16 * 65_536
    batches = [launch_batch(65_536, i * 65_536 * 2000) for i in range(16)]
    path, (ingest, insert, close, index) = _in_process(tmp_path, "eager", batches)
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT start_ns) FROM kernels").fetchone() == (
            n,
            n,
        )
    print(
        f"\nengine CPU per launch record (in process, {n:,} records): ingest (predict, device "
        f"model, row columns) {ingest / n * 1e9:.0f} ns = {n / ingest / 1e6:.2f} M/s; "
        f"DuckDB insert of its kernel and api_call rows {insert / n * 1e9:.0f} ns; "
        f"close {close / n * 1e9:.0f} ns; together {n / (ingest + insert + close) / 1e6:.2f} M/s; "
        f"trace {path.stat().st_size / n:.1f} bytes per kernel; a reader's event order "
        f"{index / n * 1e9:.0f} ns per kernel (2 events each)"
    )


CHAIN_500 = [((i - 1,) if i else (), 16) for i in range(500)]


def test_engine_cpu_per_graph_replay(tmp_path: Path) -> None:
    """The same for 2,000 launches of a captured graph of 500 kernels: the first sent node by
    node, the others one replay record each (what the shim sends)."""
    replays = 2000
    launches = [graph_launch(i * 2_000_000, CHAIN_500, replay=i > 0) for i in range(replays)]
    batches = [np.concatenate(launches[i : i + 500]) for i in range(0, replays, 500)]
    path, (ingest, insert, close, index) = _in_process(tmp_path, "graph", batches)
    n = replays * len(CHAIN_500)
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT graph_id) FROM kernels").fetchone() == (
            n,
            replays,
        )
        assert con.execute("SELECT count(*) FROM graph_replays").fetchone() == (replays - 1,)
    print(
        f"\nengine CPU per graph replay of 500 kernels (in process, {replays:,} launches): "
        f"ingest {ingest / replays * 1e6:.1f} µs; insert {insert / replays * 1e6:.1f} µs; close "
        f"{close / replays * 1e6:.1f} µs; {n / (ingest + insert + close) / 1e6:.1f} M kernel "
        f"records per CPU second; trace {path.stat().st_size / n:.2f} bytes per kernel; a "
        f"reader's event order {index / n * 1e9:.0f} ns per kernel"
    )
