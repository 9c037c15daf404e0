"""Re-simulation throughput of `revati replay` (run with `pytest tests/bench -s` for figures).

Two shapes: a launch-bound decode loop (one host thread, a compute and a copy stream, a copy
waited for by the next kernel and a sync every 500 kernels), where streams advance in long
vectorised runs; and a synthetic 4-rank tensor-parallel trace, where an all-reduce barrier
every ~7 kernels per rank and cross-stream waits make most ops a scalar step.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from revati.recorder.synth import synthesize
from revati.replay.resim import Barriers, DeviceOps, Syncs, resimulate
from revati.replay.session import replay_trace

LATENCY = 2500


def decode_loop(kernels: int, per_sync: int = 500, seed: int = 0):
    """A recorded-like schedule: launches 3 us apart, kernels of 2-20 us, a sync per step."""
    rng = np.random.default_rng(seed)
    n = kernels
    dur = rng.integers(2_000, 20_000, n)
    launch = np.cumsum(rng.integers(2_500, 3_500, n))
    stream = np.zeros(n, dtype=np.int64)
    start = np.zeros(n, dtype=np.int64)
    end = np.zeros(n, dtype=np.int64)
    steps = n // per_sync
    blocked = np.zeros(steps, dtype=np.int64)
    resumed = np.zeros(steps, dtype=np.int64)
    shift, tail = 0, 0
    for k in range(steps):  # place each step, then its sync shifts the host
        a, b = k * per_sync, (k + 1) * per_sync
        launch[a:b] += shift
        d = dur[a:b]
        csum = np.cumsum(d)
        e = csum + np.maximum(np.maximum.accumulate(launch[a:b] + LATENCY - (csum - d)), tail)
        start[a:b], end[a:b] = e - d, e
        tail = int(e[-1])
        blocked[k] = launch[b - 1] + 3_000
        resumed[k] = max(int(blocked[k]), tail)
        shift += resumed[k] + 5_000 - int(launch[b - 1] + 3_000 + 3_000)
    minus = np.full(n, -1, dtype=np.int64)
    ops = DeviceOps(stream, np.zeros(n, np.int64), np.zeros(n, np.int64), launch, start, end, minus)
    last = np.arange(steps) * per_sync + per_sync - 1
    syncs = Syncs(
        np.zeros(steps, np.int64),
        np.zeros(steps, np.int64),
        blocked,
        np.maximum(blocked, end[last]),
        resumed,
        last,
        np.full(steps, -1, np.int64),
    )
    empty = np.zeros(0, dtype=np.int64)
    return ops, syncs, Barriers(empty, empty), dur


def test_resimulate_a_million_kernel_decode_loop():
    ops, syncs, barriers, dur = decode_loop(1_000_000)
    same = resimulate(ops, syncs, barriers, dur, latency_orig=LATENCY)
    assert np.array_equal(same.start, ops.start) and np.array_equal(same.resumed, syncs.resumed)
    slower = (dur * 1.3).astype(np.int64)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        res = resimulate(ops, syncs, barriers, slower, latency_orig=LATENCY)
        times.append(time.perf_counter() - t0)
    assert (res.start[1:] >= res.end[:-1]).all()
    assert (res.resumed >= res.end[syncs.target_op]).all()
    assert res.resumed[-1] > syncs.resumed[-1]
    best = min(times)
    print(
        f"\nreplay, decode loop: 1,000,000 kernels, {len(syncs.resumed):,} syncs re-simulated "
        f"in {best:.3f} s = {1e6 / best / 1e6:.2f} M kernels/s (best of 3)"
    )


def test_replay_a_synthetic_tensor_parallel_trace(tmp_path: Path):
    parent = tmp_path / "tp4.duckdb"
    synthesize(parent, ranks=4, events=200_000, seed=0)
    t0 = time.perf_counter()
    s = replay_trace(parent, tmp_path / "slower.duckdb", scale={"gemm": 1.3})
    total = time.perf_counter() - t0
    assert s.end_ns > s.parent_end_ns
    print(
        f"\nreplay, synthetic TP-4: {s.ops:,} ops, {s.barriers:,} barriers: re-simulation "
        f"{s.simulate_s:.2f} s = {s.ops_per_s / 1e6:.2f} M ops/s; read + write + rebuild "
        f"{total - s.simulate_s:.2f} s"
    )
