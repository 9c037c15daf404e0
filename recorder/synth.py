"""Deterministic synthetic traces: a tensor-parallel LLM serving loop on N ranks.

`synthesize(path, ranks=4, events=100_000, seed=0)` writes a trace that looks like an emulated
vLLM run: each rank has a Python host thread launching a transformer layer stack (RMSNorm, QKV
GEMM, rotary, flash attention, output GEMM, NCCL all-reduce, MLP GEMMs), a compute stream, an
NCCL stream and a copy stream. Iterations alternate one prefill with several decode steps; each
ends with a device-to-host copy of the sampled tokens and a stream sync whose deadline is the
copy's end, and the clock jumps when every rank is blocked. Every all-reduce is a barrier, and
the last rank's host is slower, so it straggles and the others wait. Markers record request
arrival, first and last token, and each iteration. The same seed gives the same trace.

Times are built segment by segment (the kernels between two all-reduces), vectorised across
ranks and kernels with the max-plus identity end_i = max(end_{i-1}, ready_i) + d_i.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from revati.recorder.synth_columns import ColumnSink, IterationTemplate
from revati.recorder.synth_workload import LAUNCH_LATENCY_NS, Phase, iteration_phases
from revati.recorder.writer import RunInfo, TraceWriter

EVENTS_PER_RANK_LAYER = 24  # calls + kernels + nvtx per rank and layer (for sizing)


@dataclass(frozen=True)
class SynthSummary:
    path: str
    ranks: int
    layers: int
    iterations: int
    events: int


def synthesize(
    path: str | os.PathLike[str],
    *,
    ranks: int = 4,
    events: int = 100_000,
    seed: int = 0,
    overwrite: bool = False,
    small_blocks: bool = False,
) -> SynthSummary:
    """Write a synthetic trace of about `events` events to `path` and return what it holds.
    `small_blocks` stores it in 16 KiB DuckDB blocks: a much smaller file for a small trace."""
    if ranks < 1 or events < 1:
        raise ValueError("ranks and events must be positive")
    layers = int(np.clip(events // (ranks * EVENTS_PER_RANK_LAYER * 8), 2, 32))
    per_iter = ranks * (layers * EVENTS_PER_RANK_LAYER + 12) + 2 * layers
    iterations = max(1, round(events / per_iter))
    run = RunInfo(
        argv=["python", "-m", "vllm.entrypoints.openai.api_server", "--tp", str(ranks)],
        cwd="/srv",
        device="h100-sxm",
        predictor="synthetic",
        host="synth",
        started_at=datetime(2025, 1, 1, tzinfo=UTC),
        config={"synth": {"ranks": ranks, "events": events, "seed": seed, "layers": layers}},
    )
    writer = TraceWriter(path, run, overwrite=overwrite, block_size=16384 if small_blocks else None)
    try:
        gen = _Generator(writer, ranks, layers, np.random.default_rng(seed))
        gen.write_topology()
        for i, phase in enumerate(iteration_phases(iterations)):
            gen.iteration(i, phase)
            if gen.sink.rows >= 2_000_000:
                gen.sink.drain(writer)
        gen.sink.drain(writer)
        writer.close(virtual_end_ns=int(gen.host.max()), wall_ns=0, exit_status=0)
    except BaseException:
        writer.close()
        raise
    with _count(path) as n:
        return SynthSummary(str(path), ranks, layers, iterations, n)


class _count:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        from revati.recorder.reader import open_trace

        self.reader = open_trace(path)

    def __enter__(self) -> int:
        return self.reader.event_count()

    def __exit__(self, *exc: object) -> None:
        self.reader.close()


class _Generator:
    """Per-rank clocks and the code that lays out one iteration."""

    def __init__(
        self, writer: TraceWriter, ranks: int, layers: int, rng: np.random.Generator
    ) -> None:
        self.ranks, self.layers, self.rng = ranks, layers, rng
        self.pids = 4000 + np.arange(ranks, dtype=np.int64) * 17
        self.threads = np.arange(ranks, dtype=np.int64) + 1
        self.compute = 100 + np.arange(ranks, dtype=np.int64) * 3
        self.nccl, self.copy = self.compute + 1, self.compute + 2
        self.host = np.full(ranks, 2_000_000, dtype=np.int64)  # 2 ms of start-up
        self.tail = {
            "compute": np.zeros(ranks, np.int64),
            "nccl": np.zeros(ranks, np.int64),
            "copy": np.zeros(ranks, np.int64),
        }
        # the last rank's Python is slower: it arrives last at every all-reduce
        self.host_speed = np.ones(ranks)
        if ranks > 1:
            self.host_speed[-1] = 1.35
        self.sink = ColumnSink(ranks)
        self.writer = writer
        self.streams = np.stack([self.compute, self.nccl, self.copy])
        self._templates: dict[str, IterationTemplate] = {}
        self._layer_names = np.array([f"layer {i}" for i in range(layers)], dtype=object)

    def write_topology(self) -> None:
        r = np.arange(self.ranks)
        w = self.writer
        w.append_rows(
            "processes",
            [
                {
                    "pid": int(self.pids[i]),
                    "parent_pid": 1,
                    "rank": i,
                    "local_rank": i,
                    "world_size": self.ranks,
                    "host": "synth",
                    "started_ns": 0,
                    "argv": ["python", "-m", "vllm.worker", f"--rank={i}"],
                }
                for i in r
            ],
        )
        w.append_rows(
            "threads",
            [
                {
                    "thread_id": int(self.threads[i]),
                    "pid": int(self.pids[i]),
                    "tid": int(self.pids[i]),
                    "name": "python",
                    "started_ns": 0,
                }
                for i in r
            ],
        )
        w.append_rows(
            "devices",
            [
                {
                    "device_id": i,
                    "pid": int(self.pids[i]),
                    "ordinal": i,
                    "name": "NVIDIA H100 80GB HBM3",
                    "model": "h100-sxm",
                    "memory_bytes": 85520809984,
                }
                for i in r
            ],
        )
        streams = []
        for i in r:
            for sid, name in ((self.compute, "compute"), (self.nccl, "nccl"), (self.copy, "copy")):
                streams.append(
                    {
                        "stream_id": int(sid[i]),
                        "pid": int(self.pids[i]),
                        "device_id": i,
                        "handle": int(sid[i]) * 4096,
                        "flags": 1,
                        "priority": 0,
                        "is_default": False,
                        "name": name,
                        "created_ns": 1_000_000,
                    }
                )
        w.append_rows("streams", streams)

    # ---- one iteration -----------------------------------------------------------------------

    def iteration(self, index: int, phase: Phase) -> None:
        s, t = self.sink, self._template(phase)
        start = self.host.copy()
        s.markers(self.pids, self.threads, "iteration", f"{phase.name} {index}", start, None)
        for req in phase.arrivals:
            at = start[:1] - self.rng.integers(50_000, 2_000_000, 1)
            s.markers(self.pids[:1], None, "request_arrival", req, at, req)
        times = self._host_times(t)
        arrival, release, end = self._device_times(t, times)
        ids = s.iteration_ops(t, self.threads, self.streams, times)
        nccl_slots = np.array([b for _, b in t.segments])
        s.barriers(
            phase.allreduce_bytes,
            release,
            end,
            self.pids,
            self.streams[1],
            ids[:, nccl_slots],
            arrival,
        )
        first, last = np.array(t.layer_slots).T
        s.nvtx(
            self.threads,
            self._layer_names,
            times["enter"][:, first],
            times["exit"][:, last],
            depth=1,
        )
        self._sync_and_jump()
        s.nvtx(
            self.threads,
            np.array([phase.name], dtype=object),
            start[:, None],
            self.host[:, None].copy(),
            depth=0,
        )
        for kind, reqs in (("first_token", phase.first_tokens), ("last_token", phase.last_tokens)):
            for req in reqs:
                s.markers(self.pids[:1], None, kind, req, self.host[:1].copy(), req)
        self.host += self._jitter(phase.scheduler_ns, (self.ranks,))

    def _template(self, phase: Phase) -> IterationTemplate:
        if phase.name not in self._templates:
            self._templates[phase.name] = IterationTemplate.build(phase, self.layers)
        return self._templates[phase.name]

    def _host_times(self, t: IterationTemplate) -> dict[str, np.ndarray]:
        """Host calls back to back on each rank's thread (launches never block)."""
        shape = (self.ranks, len(t.specs))
        cost = t.host_ns * self.rng.lognormal(0.0, 0.08, shape) * self.host_speed[:, None]
        cost = cost.astype(np.int64)
        step = cost + self.rng.integers(300, 1500, shape)
        enter = self.host[:, None] + np.cumsum(step, axis=1) - step
        self.host = enter[:, -1] + step[:, -1]
        launch = enter + cost // 2
        return {
            "enter": enter,
            "exit": enter + cost,
            "launch": launch,
            "start": np.zeros(shape, np.int64),
            "end": np.zeros(shape, np.int64),
        }

    def _device_times(
        self, t: IterationTemplate, times: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stream schedule: each op starts at max(launch + latency, its stream's tail); an
        all-reduce starts on each rank when it arrives and ends release + duration on all."""
        d = np.maximum(1, t.duration * self.rng.lognormal(0.0, 0.08, times["enter"].shape))
        d = d.astype(np.int64)
        ready = times["launch"] + LAUNCH_LATENCY_NS
        tail = self.tail
        tail["copy"] = self._chain(tail["copy"], ready, d, times, 0, 1)
        tail["compute"] = np.maximum(tail["compute"], tail["copy"])
        tail["compute"] = self._chain(tail["compute"], ready, d, times, 1, t.head)
        n = len(t.segments)
        arrival = np.zeros((self.ranks, n), np.int64)
        release, end = np.zeros(n, np.int64), np.zeros(n, np.int64)
        for i, (a, b) in enumerate(t.segments):
            compute = self._chain(tail["compute"], ready, d, times, a, b)
            arrival[:, i] = np.maximum(ready[:, b], np.maximum(compute, tail["nccl"]))
            release[i] = arrival[:, i].max()
            end[i] = release[i] + d[0, b]
            times["start"][:, b] = arrival[:, i]
            times["end"][:, b] = end[i]
            tail["compute"] = tail["nccl"] = np.full(self.ranks, end[i])
        k = len(t.specs)
        tail["compute"] = self._chain(tail["compute"], ready, d, times, k - 3, k)
        return arrival, release, end

    @staticmethod
    def _chain(
        tail: np.ndarray,
        ready: np.ndarray,
        d: np.ndarray,
        times: dict[str, np.ndarray],
        a: int,
        b: int,
    ) -> np.ndarray:
        """Ops a..b-1 in order on one stream: end_i = max(end_{i-1}, ready_i) + d_i."""
        cum = np.cumsum(d[:, a:b], axis=1)
        lead = np.maximum.accumulate(
            np.concatenate([tail[:, None], ready[:, a:b] - cum + d[:, a:b]], axis=1), axis=1
        )
        end = lead[:, 1:] + cum
        times["end"][:, a:b] = end
        times["start"][:, a:b] = end - d[:, a:b]
        return end[:, -1].copy()

    def _sync_and_jump(self) -> None:
        """cudaStreamSynchronize on the compute stream; the clock jumps while all are blocked."""
        blocked = self.host + self.rng.integers(1_000, 3_000, self.ranks)
        deadline = self.tail["compute"].copy()
        resumed = np.maximum(blocked, deadline)
        self.sink.sync(self.threads, self.streams[0], blocked, deadline, resumed)
        frozen_at = int(blocked.max())
        for target in np.unique(deadline[deadline > frozen_at]):
            thread = int(self.threads[int(np.argmax(deadline == target))])
            self.sink.jump(frozen_at, int(target), thread)
            frozen_at = int(target)
        self.host = resumed + self.rng.integers(2_000, 6_000, self.ranks)

    def _jitter(self, base: float, shape: tuple[int, ...]) -> np.ndarray:
        return np.maximum(1, base * self.rng.lognormal(0.0, 0.08, shape)).astype(np.int64)
