"""Trace-store benchmarks: writer ingest rate and interactive reader latency.

Run:  .venv/bin/pytest tests/bench/test_trace_store_bench.py -s
Size: REVATI_BENCH_EVENTS (default 10_000_000 events for the reader benchmark) and
      REVATI_BENCH_KERNEL_ROWS (default 6_000_000 rows for the writer benchmark).
Figures are printed; the tests assert correctness of what they time, never speed.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
from revati.recorder.reader import open_trace
from revati.recorder.synth import synthesize
from revati.recorder.synth_workload import NAMES
from revati.recorder.writer import Coded, RunInfo, TraceWriter

pytestmark = pytest.mark.bench

EVENTS = int(float(os.environ.get("REVATI_BENCH_EVENTS", "1e7")))
KERNEL_ROWS = int(float(os.environ.get("REVATI_BENCH_KERNEL_ROWS", "6e6")))
BATCH = 65_536
SAMPLES = 200


MODELS = ["gemm", "attention", "bandwidth", "collective", "roofline:unmodelled"]


def _kernel_batch(
    n: int, start: int, rng: np.random.Generator, *, coded: bool = False
) -> dict[str, object]:
    """Kernel rows as the engine writes them (revati/engine/ingest.py, a run of launches): every
    column it fills, names from a small set; no kernel features (a plain launch has none)."""
    names = np.array(list(NAMES.values()), dtype=object)
    t = start * 1000 + np.cumsum(rng.integers(500, 5000, n))
    name_codes = rng.integers(0, len(names), n).astype(np.int32)
    model_codes = rng.integers(0, len(MODELS), n).astype(np.int8)
    return {
        "kernel_id": np.arange(start, start + n),
        "call_id": np.arange(start, start + n),
        "device_id": np.zeros(n, np.int32),
        "stream_id": rng.integers(0, 4, n),
        "launch_ns": t,
        "start_ns": t + 2500,
        "end_ns": t + 2500 + rng.integers(1000, 90000, n),
        "duration_source": Coded(np.zeros(n, np.int8), ["predicted"])
        if coded
        else np.full(n, "predicted", dtype=object),
        "model": Coded(model_codes, MODELS) if coded else np.array(MODELS, object)[model_codes],
        "name": Coded(name_codes, list(names)) if coded else names[name_codes],
        "grid_x": rng.integers(1, 1024, n).astype(np.int32),
        "grid_y": np.ones(n, np.int32),
        "grid_z": np.ones(n, np.int32),
        "block_x": np.full(n, 256, np.int32),
        "block_y": np.ones(n, np.int32),
        "block_z": np.ones(n, np.int32),
        "shared_mem": np.zeros(n, np.int32),
    }


@pytest.mark.parametrize("coded", [False, True], ids=["object-strings", "coded-strings"])
def test_writer_ingest_rate(tmp_path: Path, coded: bool) -> None:
    rng = np.random.default_rng(0)
    batches = [_kernel_batch(BATCH, i, rng, coded=coded) for i in range(0, KERNEL_ROWS, BATCH)]
    rows = sum(len(b["kernel_id"]) for b in batches)  # type: ignore[arg-type]
    path = tmp_path / "ingest.duckdb"
    t0, c0 = time.perf_counter(), time.process_time()
    w = TraceWriter(path, RunInfo(), build_event_order=False)
    for b in batches:
        w.append("kernels", b)  # type: ignore[arg-type]
    w.close()
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"\n[writer] {rows:,} kernel rows ({len(batches[0])} columns, batches of {BATCH:,}, "
        f"{'coded' if coded else 'object'} strings) appended + closed in {took:.2f} s = "
        f"{rows / took:,.0f} rows/s ({rows / cpu:,.0f} rows per CPU second, "
        f"load average {os.getloadavg()[0]:.1f})"
    )
    with open_trace(path) as r:
        assert r.counts()["kernels"] == rows
        names = dict(r.sql("SELECT name, count(*) FROM kernels GROUP BY name"))
        assert set(names) <= set(NAMES.values()) and sum(names.values()) == rows
        assert r.sql("SELECT typeof(name), typeof(model) FROM kernels LIMIT 1") == [
            ("VARCHAR", "VARCHAR")
        ]


@pytest.fixture(scope="module")
def big_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "synth.duckdb"
    t0 = time.perf_counter()
    summary = synthesize(path, ranks=4, events=EVENTS, seed=1)
    took = time.perf_counter() - t0
    print(
        f"\n[synth] {summary.events:,} events ({summary.iterations} iterations, 4 ranks) "
        f"written in {took:.1f} s = {summary.events / took:,.0f} events/s, "
        f"{path.stat().st_size / 2**20:.0f} MiB"
    )
    return path


def _report(label: str, times: list[float]) -> None:
    ms = np.array(times) * 1e3
    print(
        f"[reader] {label:<34} p50 {np.percentile(ms, 50):7.3f} ms  "
        f"p99 {np.percentile(ms, 99):7.3f} ms  max {ms.max():7.3f} ms  (n={len(ms)})"
    )


def test_reader_latency(big_trace: Path) -> None:
    t0 = time.perf_counter()
    r = open_trace(big_trace)
    n = r.event_count()
    print(f"[reader] open + load index of {n:,} events: {time.perf_counter() - t0:.2f} s")
    rng = np.random.default_rng(2)
    seqs = rng.integers(0, n, SAMPLES)
    cases = {
        "next (global)": lambda s: r.next_event(s),
        "prev (global)": lambda s: r.prev_event(s),
        "next rank 2": lambda s: r.next_event(s, rank=2),
        "prev rank 3": lambda s: r.prev_event(s, rank=3),
        "next kind=sync": lambda s: r.next_event(s, kinds=["sync"]),
        "prev kind=barrier": lambda s: r.prev_event(s, kinds=["barrier"]),
        "next rank 1 kind=kernel": lambda s: r.next_event(s, rank=1, kinds=["kernel"]),
        "next name ~ flash_fwd_kernel": lambda s: r.next_event(s, name_pattern="flash_fwd_kernel"),
        "prev name ~ ^ncclDev": lambda s: r.prev_event(s, name_pattern="^ncclDev"),
        "next name ~ no match": lambda s: r.next_event(s, name_pattern="no_such_kernel"),
    }
    for label, fn in cases.items():
        times, found = [], []
        for s in seqs:
            t = time.perf_counter()
            found.append(fn(int(s)))
            times.append(time.perf_counter() - t)
        _report(label, times)
        _check(label, seqs, found)
    t_lo, t_hi = r.time_range()
    tracks = [t.track_id for t in r.tracks()]
    times, sizes = [], []
    for s in seqs:
        start = int(r.event(int(s)).start_ns)
        t = time.perf_counter()
        evs = r.events_in_window(start, start + 2_000_000, track_ids=tracks[:6], limit=5000)
        times.append(time.perf_counter() - t)
        sizes.append(len(evs))
        assert all(e.start_ns <= start + 2_000_000 and e.end_ns >= start for e in evs)
    _report(f"window 2 ms, 6 tracks (~{int(np.mean(sizes))} ev)", times)
    assert t_lo < t_hi
    r.close()


def _check(label: str, seqs: np.ndarray, found: list) -> None:
    forward = label.startswith("next")
    for s, e in zip(seqs, found, strict=True):
        if e is None:
            continue
        assert (e.seq > s) if forward else (e.seq < s)
        if "rank 2" in label or "rank 3" in label or "rank 1" in label:
            assert e.rank == int(re.search(r"rank (\d)", label).group(1))  # type: ignore[union-attr]
        if "kind=" in label:
            assert e.kind == label.split("kind=")[1]
        if "flash_fwd_kernel" in label:
            assert "flash_fwd_kernel" in e.name
    if "no match" in label:
        assert all(e is None for e in found)
