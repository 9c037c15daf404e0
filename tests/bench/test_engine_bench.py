"""Benchmarks of the engine at serving rates (run: `pytest tests/bench/test_engine_bench.py -s`).

One CUDA program (tests/cuda/engine_load.cu) launches many tiny kernels, eagerly or as CUDA-graph
replays, under `revati record`. Figures printed, per pattern:
- kernel records per second end to end: kernels / the program's wall time (launches and syncs
  both wait for the engine), and kernels / the coordinator's CPU seconds beyond an empty run
  (CPU time is what a shared machine does not blur);
- wall time per sync against the kernels queued before it;
- start (revati invoked -> the program's main) and close (main returns -> revati exits) of a run,
  of an empty program and of one launching 100 kernels and syncing, with revati's CPU time;
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

from revati import shim
from revati.engine.device_model import DeviceModel
from revati.engine.durations import DurationModel
from revati.engine.ingest import Ingest, ProcessState
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


def record(tmp_path: Path, program: Path, *args: str, options: tuple[str, ...] = ()) -> Run:
    tmp_path.mkdir(parents=True, exist_ok=True)
    trace = tmp_path / "bench.duckdb"
    cmd = [sys.executable, "-m", "revati.cli", "record", "--quiet", *options, "-o", str(trace)]
    cmd.append("--")
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
    empty = [empty_run, *(record(tmp_path / str(i), engine_load, "empty") for i in range(2))]
    tiny = [record(tmp_path / f"tiny{i}", engine_load, "eager", "100", "0") for i in range(3)]
    for run in [*empty, *tiny]:
        assert run.start_ns > 0 and run.close_ns > 0
    assert all(_kernel_count(run.trace) == 100 for run in tiny)
    print()
    for label, runs in (("an empty program", empty), ("100 kernels and a sync", tiny)):
        starts = sorted(r.start_ns for r in runs)
        closes = sorted(r.close_ns for r in runs)
        cpus = sorted(r.revati_cpu_ns for r in runs)
        print(
            f"{label}: start of a run (revati invoked -> program's main) {starts[1] / 1e6:.0f} ms "
            f"median of 3 ({starts[0] / 1e6:.0f}-{starts[-1] / 1e6:.0f}); close (main returns "
            f"-> revati exits) {closes[1] / 1e6:.0f} ms ({closes[0] / 1e6:.0f}-"
            f"{closes[-1] / 1e6:.0f}); revati CPU {cpus[1] / 1e6:.0f} ms ({cpus[0] / 1e6:.0f}-"
            f"{cpus[-1] / 1e6:.0f}); {_load()}"
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
    ingest.write_later()  # the rows of the runs, built once the syncs would have been answered
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


# A decode step's shape: 500 nodes, a 290-byte DtoD copy after every 15 kernels (PyTorch's
# captured step holds one per layer).
CHAIN_WITH_COPIES = [
    ((i - 1,) if i else (), ("copy", 3, 290) if i % 16 == 15 else 16) for i in range(500)
]


def test_engine_cpu_per_graph_replay_with_copies(tmp_path: Path) -> None:
    """Launches of a 500-node graph with copies: 50 sent node by node (what such a graph cost
    before copies joined templates), and 1,000 sent as one replay record after the first."""
    copies = sum(1 for _, what in CHAIN_WITH_COPIES if not isinstance(what, int))
    cpu = {}
    for replay, launches in ((False, 50), (True, 1000)):
        batch = [graph_launch(i * 2_000_000, CHAIN_WITH_COPIES, replay=replay and i > 0)
                 for i in range(launches)]  # fmt: skip
        batches = [np.concatenate(batch[i : i + 250]) for i in range(0, launches, 250)]
        name = "replayed" if replay else "node-by-node"
        path, (ingest, insert, close, _) = _in_process(tmp_path, name, batches)
        with duckdb.connect(str(path), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM copies").fetchone() == (launches * copies,)
            replays = con.execute("SELECT count(*) FROM graph_replays").fetchone()
            assert replays == ((launches - 1) if replay else 0,)
        cpu[replay] = (ingest + insert + close) / launches
    print(
        f"\nengine CPU per launch of a 500-node graph with {copies} copies (in process: ingest, "
        f"insert, close): node by node {cpu[False] * 1e3:.2f} ms (50 launches); replayed "
        f"{cpu[True] * 1e6:.0f} µs (1,000 launches, the first sent node by node); {_load()}"
    )


def _median_step_ns(run: Run, prefix: str = "step_ns_") -> float:
    """The median over workers of their median `prefix` figure (steps, host phases, phase CPU)."""
    steps = [v for k, v in run.values.items() if k.startswith(prefix)]
    return float(np.median(steps))


def _phase_ratio(run: Run) -> float:
    """A host phase's virtual time over its CPU time (1.0: as with a core to itself)."""
    return _median_step_ns(run, "phase_ns_") / _median_step_ns(run, "phase_cpu_ns_")


def _cpu_wait_ns(trace: Path) -> tuple[int, int]:
    with duckdb.connect(str(trace), read_only=True) as con:
        wait, cpus = con.execute(
            "SELECT config->>'cpu_wait_ns', config->>'host_cpus' FROM run"
        ).fetchone()
    return int(wait), int(cpus)


@pytest.mark.parametrize("cpu_wait", ["count", "discount"])
@pytest.mark.parametrize(
    ("procs", "threads", "steps"), [(1, 1, 100), (1, 4, 50), (2, 2, 50)], ids=str
)
def test_virtual_time_under_load(
    tmp_path: Path, engine_load: Path, procs: int, threads: int, steps: int, cpu_wait: str
) -> None:
    """The same decode-like steps (a fixed host phase, 20 launches, a sync) recorded as the
    machine is and with a process spinning on another core: how far the virtual step moves,
    with CPU waits counted at wall speed and discounted (`--cpu-wait`)."""
    args = ("steps", str(procs), str(threads), str(steps))
    options = ("--cpu-wait", cpu_wait)
    quiet = record(tmp_path / "quiet", engine_load, *args, options=options)
    spinner = subprocess.Popen([sys.executable, "-c", "while 1: pass"])
    try:
        busy = record(tmp_path / "busy", engine_load, *args, options=options)
    finally:
        spinner.kill()
        spinner.wait()
    workers = procs * threads
    for run in (quiet, busy):
        assert sum(k.startswith("step_ns_") for k in run.values) == workers
        assert _sync_count(run.trace) == workers * (steps + 1)
        assert _cpu_wait_ns(run.trace)[1] == os.cpu_count()
    a, b = _median_step_ns(quiet), _median_step_ns(busy)
    print(
        f"\n--cpu-wait {cpu_wait}, {procs} process(es) x {threads} thread(s), {steps} steps: "
        "median virtual step "
        f"{a / 1e3:.0f} µs as is, {b / 1e3:.0f} µs with another core busy ({(b - a) / a:+.1%}; "
        f"goal within 1%); participants waited for a CPU {_cpu_wait_ns(quiet.trace)[0] / 1e6:.0f}"
        f" / {_cpu_wait_ns(busy.trace)[0] / 1e6:.0f} ms; host phase virtual / CPU time "
        f"{_phase_ratio(quiet):.2f} as is, {_phase_ratio(busy):.2f} busy (1.00: a core to "
        f"itself); {_load()}"
    )


def _sync_batch(n: int, first_enter_ns: int, stream: int) -> np.ndarray:
    """n launches on `stream` (as `launch_batch`) followed by a stream sync on it."""
    r = np.concatenate([launch_batch(n, first_enter_ns), np.zeros(1, dtype=shim.RECORD_DTYPE)])
    shim.launch_view(r)["stream"][:n] = stream
    r["fn"][:n] = shim.FN_NAMES.index("cudaLaunchKernel")
    sync = r[n:]
    sync["type"], sync["kind"], sync["a"], sync["d"] = shim.REC_SYNC, shim.SYNC_STREAM, stream, 2
    sync["fn"] = shim.FN_NAMES.index("cudaStreamSynchronize")
    sync["enter_ns"] = sync["exit_ns"] = first_enter_ns + 2000 * n
    return r


def test_engine_cpu_on_a_sync_path(tmp_path: Path) -> None:
    """The engine in this process: CPU time from a sync's batch (N launches and the sync) to its
    deadline, and of the rows built after the answer (what a coordinator step does between a
    WAIT and its WAKE, without sockets or the scheduler)."""
    names = tmp_path / "names.txt"
    names.write_text("K\t1\t_Z4tinyPfi\nT\t0\t1\tmain\n")
    writer = TraceWriter(tmp_path / "sync.duckdb", RunInfo())
    sink = TraceSink(writer)
    ingest = Ingest(sink, DeviceModel(2500), DurationModel("h100-sxm", None), "h100")
    state = ProcessState(1, (1, 0), shim.NamesFile(names))
    stream, index, enter = 0x5000, 0, 0
    ingest.model.create_stream(1, stream, 1, 0, 0)
    print("\nengine CPU on a sync's path (in process; median of 200 batches):")
    for n in (1, 10, 100, 1000):
        to_answer, rows = [], []
        for _ in range(200):
            batch = _sync_batch(n, enter, stream)
            t0 = time.thread_time_ns()
            ingest.ingest(state, index, batch)
            answer = ingest.resolutions.pop((1, 0, index + n))
            t1 = time.thread_time_ns()
            ingest.write_later()
            rows.append(time.thread_time_ns() - t1)
            to_answer.append(t1 - t0)
            assert answer.deadline_ns == state.last_op_end[0]  # waits for its last kernel
            index, enter = index + n + 1, int(batch["enter_ns"][-1]) + 2000
        sink.flush()
        goal = 50_000 + n * 500
        print(
            f"  N = {n:>4}: {np.median(to_answer) / 1e3:7.1f} µs to the answer (a sync's whole "
            f"wall goal: {goal / 1e3:.1f} µs), then {np.median(rows) / 1e3:7.1f} µs of rows; "
            f"{_load()}"
        )
    sink.close()
    writer.close()
    with duckdb.connect(str(tmp_path / "sync.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM kernels").fetchone()[0] == 200 * 1111


def _layer_batch(layers: int, first_enter_ns: int, stream: int) -> np.ndarray:
    """Per layer, as cuBLAS and PyTorch write them: a GEMM's shape record (REC_GEMM), its
    kernel's launch (kernel 2), then three elementwise launches (kernel 1); one thread."""
    kinds = np.tile([shim.REC_GEMM, *[shim.REC_LAUNCH] * 4], layers)
    r = np.zeros(len(kinds), dtype=shim.RECORD_DTYPE)
    r["type"] = kinds
    r["enter_ns"] = first_enter_ns + 2000 * np.arange(len(r))
    r["exit_ns"] = r["enter_ns"] + 50
    launch, gemm = kinds == shim.REC_LAUNCH, kinds == shim.REC_GEMM
    r["enter_ns"][gemm] = r["exit_ns"][gemm] = 0  # a shape record has strides there, no times
    lv = shim.launch_view(r)
    lv["kernel"][launch] = np.tile([2, 1, 1, 1], layers)
    lv["grid_x"][launch], lv["block_x"][launch], lv["stream"][launch] = 16, 256, stream
    g = shim.gemm_view(r)
    g["m"][gemm] = g["n"][gemm] = g["k"][gemm] = 4096
    g["batch"][gemm], g["compute"][gemm], g["epilogue"][gemm] = 1, 68, 1
    g["a_type"][gemm] = g["b_type"][gemm] = g["c_type"][gemm] = 14  # bf16
    return r


def test_engine_cpu_per_gemm_layer(tmp_path: Path) -> None:
    """Library GEMMs inside runs of launches: engine CPU per layer of a GEMM and three
    elementwise launches (predict, place, rows), in process."""
    names = tmp_path / "names.txt"
    names.write_text("K\t1\t_Z4tinyPfi\nK\t2\tcublas_gemm_bf16_nn\nT\t0\t1\tmain\n")
    writer = TraceWriter(tmp_path / "gemm.duckdb", RunInfo())
    sink = TraceSink(writer)
    ingest = Ingest(sink, DeviceModel(2500), DurationModel("h100-sxm", None), "h100")
    state = ProcessState(1, (1, 0), shim.NamesFile(names))
    ingest.model.create_stream(1, 0x5000, 1, 0, 0)
    batches = [_layer_batch(200, i * 10**8, 0x5000) for i in range(30)]
    index = 0
    t0 = time.thread_time_ns()
    for batch in batches:
        ingest.ingest(state, index, batch)
        ingest.write_later()
        index += len(batch)
    per_layer = (time.thread_time_ns() - t0) / (30 * 200)
    sink.close()
    writer.close()
    with duckdb.connect(str(tmp_path / "gemm.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM kernels").fetchone()[0] == 30 * 200 * 4
        gemms = con.execute(
            "SELECT count(*), count(DISTINCT k.name) FROM kernel_features f "
            "JOIN kernels k USING (kernel_id) WHERE f.gemm_m = 4096 AND f.dtype = 'bf16'"
        ).fetchone()
    assert gemms == (30 * 200, 1)  # every GEMM's launch carries its shape, no other kernel does
    print(
        f"\nengine CPU per layer of a cuBLAS GEMM and 3 launches (in process, 6,000 layers): "
        f"{per_layer / 1e3:.1f} µs ({per_layer / 4e3:.2f} µs per kernel); {_load()}"
    )
