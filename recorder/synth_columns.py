"""Columns of the synthetic generator: one iteration's template and the sink that batches rows.

An `IterationTemplate` lays one iteration out as K slots per rank (host call + device op each);
its static columns (names, launch config, models) are numpy arrays of length K, so the rows of a
whole iteration are built with a few fancy-indexing operations. `ColumnSink` collects batches
and concatenates those with the same columns when drained, so the writer receives a few large
columnar appends per table.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from revati.recorder.synth_workload import LAYER_SEGMENTS, KernelSpec, Phase
from revati.recorder.writer import TraceWriter

STREAMS = ("compute", "nccl", "copy")


@dataclass
class IterationTemplate:
    """Slot layout of one iteration of `phase` with `layers` layers."""

    specs: list[KernelSpec]
    segments: list[tuple[int, int]]  # (first compute slot, all-reduce slot) per segment
    layer_slots: list[tuple[int, int]]  # (first slot, last slot) per layer
    head: int  # slots before the first layer (h2d copy, memset)

    @classmethod
    def build(cls, phase: Phase, layers: int) -> IterationTemplate:
        specs = [phase.h2d, phase.memset]
        segments, layer_slots = [], []
        for _ in range(layers):
            first = len(specs)
            for segment in LAYER_SEGMENTS:
                a = len(specs)
                specs.extend(phase.kernels[name] for name in segment)
                segments.append((a, len(specs) - 1))
            layer_slots.append((first, len(specs) - 1))
        specs.extend([phase.logits, phase.argmax, phase.d2h])
        t = cls(specs, segments, layer_slots, head=2)
        t._columns()
        return t

    def _columns(self) -> None:
        s = self.specs
        self.host_ns = np.array([k.host_ns for k in s], dtype=np.float64)
        self.duration = np.array([k.duration for k in s], dtype=np.float64)
        self.api = _objects([k.api for k in s])
        self.name = _objects([k.name for k in s])
        self.model = _objects([k.model for k in s])
        self.stream = np.array([STREAMS.index(k.stream) for k in s])
        self.nbytes = np.array([k.nbytes for k in s], dtype=np.int64)
        self.grid = np.array([k.grid for k in s], dtype=np.int32)
        self.block = np.array([k.block for k in s], dtype=np.int32)
        self.gemm = np.array([k.gemm or (0, 0, 0) for k in s], dtype=np.int64)
        self.features = _objects([k.features for k in s])
        self.copy_kind = _objects([k.copy_kind for k in s])
        op = np.array([k.op for k in s])
        self.copy_slots = np.flatnonzero(op == "copy")
        self.memset_slots = np.flatnonzero(op == "memset")
        # kernel slots by which optional columns they fill (so no column needs NULLs)
        sig = [(k.gemm is not None, k.features is not None, k.nbytes > 0) for k in s]
        self.kernel_groups = [
            np.array(
                [
                    i
                    for i, (x, o) in enumerate(zip(sig, op, strict=True))
                    if o == "kernel" and x == key
                ]
            )
            for key in sorted({x for x, o in zip(sig, op, strict=True) if o == "kernel"})
        ]


class ColumnSink:
    def __init__(self, ranks: int) -> None:
        self.ranks = ranks
        self.rank_index = np.arange(ranks, dtype=np.int32)
        self._batches: dict[tuple[str, tuple[str, ...]], list[dict[str, np.ndarray]]] = defaultdict(
            list
        )
        self._next: dict[str, int] = defaultdict(int)
        self._thread_seq = np.zeros(ranks, dtype=np.int64)
        self._generation = 0
        self.rows = 0

    def _ids(self, kind: str, n: int) -> np.ndarray:
        start = self._next[kind]
        self._next[kind] = start + n
        return np.arange(start, start + n, dtype=np.int64)

    def _add(self, table: str, cols: dict[str, np.ndarray]) -> None:
        self._batches[(table, tuple(cols))].append(cols)
        self.rows += len(next(iter(cols.values())))

    def drain(self, writer: TraceWriter) -> None:
        """Append everything collected to `writer`, one batch per (table, column set)."""
        for (table, names), batches in self._batches.items():
            writer.append(table, {n: np.concatenate([b[n] for b in batches]) for n in names})
        self._batches.clear()
        self.rows = 0

    # ---- one iteration's calls and device ops ------------------------------------------------

    def iteration_ops(
        self,
        t: IterationTemplate,
        threads: np.ndarray,
        streams: np.ndarray,
        times: dict[str, np.ndarray],
    ) -> np.ndarray:
        """Rows for every slot of an iteration; `times` has (ranks, K) arrays enter, exit,
        launch, start, end; `streams` is (3, ranks). Returns the op ids, shape (ranks, K)."""
        r, k = times["enter"].shape
        call_ids = self._ids("call", r * k).reshape(r, k)
        self._add(
            "api_calls",
            {
                "call_id": call_ids.ravel(),
                "thread_id": np.repeat(threads, k),
                "seq": (self._thread_seq[:, None] + np.arange(k)).ravel(),
                "name": np.tile(t.api, r),
                "enter_ns": times["enter"].ravel(),
                "exit_ns": times["exit"].ravel(),
                "result": np.zeros(r * k, dtype=np.int32),
            },
        )
        self._thread_seq += k
        op_ids = np.zeros((r, k), dtype=np.int64)
        for slots in t.kernel_groups:
            op_ids[:, slots] = self._kernels(t, slots, call_ids, streams, times)
        for table, slots in (("copies", t.copy_slots), ("memsets", t.memset_slots)):
            if len(slots):
                op_ids[:, slots] = self._transfers(table, t, slots, call_ids, streams, times)
        return op_ids

    def _device_cols(
        self,
        t: IterationTemplate,
        slots: np.ndarray,
        call_ids: np.ndarray,
        streams: np.ndarray,
        times: dict[str, np.ndarray],
    ) -> dict[str, np.ndarray]:
        r, n = self.ranks, len(slots)
        return {
            "call_id": call_ids[:, slots].ravel(),
            "device_id": np.repeat(self.rank_index, n),
            "stream_id": streams[t.stream[slots]].T.ravel(),
            "launch_ns": times["launch"][:, slots].ravel(),
            "start_ns": times["start"][:, slots].ravel(),
            "end_ns": times["end"][:, slots].ravel(),
            "duration_source": _const("predicted", r * n),
            "model": np.tile(t.model[slots], r),
        }

    def _kernels(
        self,
        t: IterationTemplate,
        slots: np.ndarray,
        call_ids: np.ndarray,
        streams: np.ndarray,
        times: dict[str, np.ndarray],
    ) -> np.ndarray:
        r, n = self.ranks, len(slots)
        ids = self._ids("kernel", r * n)
        cols = {
            "kernel_id": ids,
            **self._device_cols(t, slots, call_ids, streams, times),
            "name": np.tile(t.name[slots], r),
        }
        for i, axis in enumerate("xyz"):
            cols[f"grid_{axis}"] = np.tile(t.grid[slots, i], r)
            cols[f"block_{axis}"] = np.tile(t.block[slots, i], r)
        cols["shared_mem"] = np.zeros(r * n, np.int32)
        cols["dtype"] = _const("bf16", r * n)
        first = t.specs[slots[0]]
        if first.gemm is not None:
            for i, name in enumerate(("gemm_m", "gemm_n", "gemm_k")):
                cols[name] = np.tile(t.gemm[slots, i], r)
        if first.features is not None:
            cols["features"] = np.tile(t.features[slots], r)
        if first.nbytes:
            cols["bytes"] = np.tile(t.nbytes[slots], r)
        self._add("kernels", cols)
        return ids.reshape(r, n)

    def _transfers(
        self,
        table: str,
        t: IterationTemplate,
        slots: np.ndarray,
        call_ids: np.ndarray,
        streams: np.ndarray,
        times: dict[str, np.ndarray],
    ) -> np.ndarray:
        r, n = self.ranks, len(slots)
        kind = "copy" if table == "copies" else "memset"
        ids = self._ids(kind, r * n)
        cols = {
            f"{kind}_id": ids,
            **self._device_cols(t, slots, call_ids, streams, times),
            "bytes": np.tile(t.nbytes[slots], r),
        }
        if kind == "copy":
            cols["kind"] = np.tile(t.copy_kind[slots], r)
            cols["src"] = np.full(r * n, 0x7F0000000000, np.uint64)
        else:
            cols["value"] = np.zeros(r * n, np.int32)
        cols["dst"] = np.full(r * n, 0x200000000, np.uint64)
        self._add(table, cols)
        return ids.reshape(r, n)

    # ---- barriers, syncs, jumps, NVTX, markers -----------------------------------------------

    def barriers(
        self,
        nbytes: int,
        release: np.ndarray,
        end: np.ndarray,
        pids: np.ndarray,
        streams: np.ndarray,
        kernel_ids: np.ndarray,
        arrival: np.ndarray,
    ) -> None:
        """One barrier per segment; arrival and kernel_ids are (ranks, segments)."""
        r, n = arrival.shape
        ids = self._ids("barrier", n)
        self._add(
            "barriers",
            {
                "barrier_id": ids,
                "collective": _const("allreduce", n),
                "communicator": _const("tp-0", n),
                "bytes": np.full(n, nbytes, np.int64),
                "world_size": np.full(n, r, np.int32),
                "release_ns": release,
                "end_ns": end,
                "model": _const("collective", n),
            },
        )
        self._add(
            "barrier_arrivals",
            {
                "barrier_id": np.tile(ids, r),
                "rank": np.repeat(self.rank_index, n),
                "pid": np.repeat(pids, n),
                "stream_id": np.repeat(streams, n),
                "kernel_id": kernel_ids.ravel(),
                "arrival_ns": arrival.ravel(),
            },
        )

    def sync(
        self,
        threads: np.ndarray,
        streams: np.ndarray,
        blocked: np.ndarray,
        deadline: np.ndarray,
        resumed: np.ndarray,
    ) -> None:
        r = self.ranks
        call_ids = self._ids("call", r)
        self._add(
            "api_calls",
            {
                "call_id": call_ids,
                "thread_id": threads,
                "seq": self._thread_seq.copy(),
                "name": _const("cudaStreamSynchronize", r),
                "enter_ns": blocked,
                "exit_ns": resumed,
                "result": np.zeros(r, np.int32),
            },
        )
        self._thread_seq += 1
        self._add(
            "syncs",
            {
                "sync_id": self._ids("sync", r),
                "call_id": call_ids,
                "thread_id": threads,
                "kind": _const("stream", r),
                "target": np.array([f"stream {s}" for s in streams], dtype=object),
                "blocked_ns": blocked,
                "deadline_ns": deadline,
                "resumed_ns": resumed,
            },
        )

    def jump(self, from_ns: int, to_ns: int, thread: int) -> None:
        self._generation += 1
        self._add(
            "jumps",
            {
                "jump_id": self._ids("jump", 1),
                "generation": np.array([self._generation]),
                "from_ns": np.array([from_ns]),
                "to_ns": np.array([to_ns]),
                "cause_thread_id": np.array([thread]),
                "cause_kind": _const("stream", 1),
                "cause_object": _const(f"thread {thread} stream sync", 1),
            },
        )

    def nvtx(
        self, threads: np.ndarray, names: np.ndarray, start: np.ndarray, end: np.ndarray, depth: int
    ) -> None:
        """Ranges per (rank, name): start and end are (ranks, len(names))."""
        r, n = start.shape
        self._add(
            "nvtx_ranges",
            {
                "range_id": self._ids("nvtx", r * n),
                "thread_id": np.repeat(threads, n),
                "name": np.tile(names, r),
                "domain": _const("vllm", r * n),
                "start_ns": start.ravel(),
                "end_ns": end.ravel(),
                "depth": np.full(r * n, depth, np.int32),
            },
        )

    def markers(
        self,
        pids: np.ndarray,
        threads: np.ndarray | None,
        kind: str,
        name: str,
        at: np.ndarray,
        request_id: str | None,
    ) -> None:
        n = len(pids)
        cols = {
            "marker_id": self._ids("marker", n),
            "pid": pids,
            "kind": _const(kind, n),
            "name": _const(name, n),
            "at_ns": np.asarray(at, dtype=np.int64),
        }
        if threads is not None:
            cols["thread_id"] = threads
        if request_id is not None:
            cols["request_id"] = _const(request_id, n)
        self._add("markers", cols)


def _const(value: object, n: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    out[:] = value
    return out


def _objects(values: list[object]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
