"""Measured activity (`revati record --real`) -> trace rows, through the engine's TraceSink.

The CUPTI collector (revati/native/cupti_collector.c) writes one file per process: a
MeasuredHeader, then MeasuredRecords (revati/native/measured.h), each followed by its name.
Here they become the same tables an emulated run writes, with `duration_source = 'measured'`
and model 'measured': processes, threads and streams as seen, every runtime/driver API call,
kernels (grid, block, registers, shared memory), copies, memsets, and the host's blocking
syncs. A device op joins the API call that launched it by CUPTI's correlation id. Times are
nanoseconds since the earliest collector start of the run.

Pass-through library wrappers (cuBLAS/cuBLASLt shapes, NCCL per-rank arrivals) will add
REVATI_M_LIBCALL records; `LIBCALL` records are read and counted here, and the place to attach
their features to the kernel of the same correlation is `MeasuredTrace.library_calls`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from revati.engine.process_state import demangle
from revati.engine.trace_sink import TraceSink
from revati.errors import RevatiTraceError
from revati.recorder import schema

MAGIC = 0x534D5652
VERSION = 1
HEADER = struct.Struct("<IIIIQ")
RECORD = np.dtype(
    [
        ("kind", "<u4"), ("name_len", "<u4"), ("start", "<u8"), ("end", "<u8"),
        ("device", "<u4"), ("stream", "<u4"), ("correlation", "<u4"), ("context", "<u4"),
        ("pid", "<u4"), ("pad", "<u4"), ("thread", "<u8"),
        ("grid", "<i4", 3), ("block", "<i4", 3), ("registers", "<i4"), ("shared_mem", "<i4"),
        ("bytes", "<u8"), ("sub", "<u4"), ("result", "<i4"), ("event", "<u8"),
    ]
)  # fmt: skip
KERNEL, COPY, MEMSET, SYNC, API, LIBCALL = 1, 2, 3, 4, 5, 6

# CUpti_ActivityMemcpyKind -> copies.kind (arrays count as device memory)
COPY_KINDS = {1: "HtoD", 2: "DtoH", 3: "HtoD", 4: "DtoH", 5: "DtoD", 6: "DtoD", 7: "DtoD",
              8: "DtoD", 9: "HtoH", 10: "PtoP"}  # fmt: skip
# CUpti_ActivitySynchronizationType -> syncs.kind (2, stream-wait-event, blocks no host thread)
SYNC_KINDS = {1: "event", 3: "stream", 4: "device"}


@dataclass
class MeasuredFile:
    pid: int
    t0: int
    records: np.ndarray  # RECORD
    names: list[str]


def read_measured(path: Path) -> MeasuredFile:
    """One collector file; a truncated last record (the process was killed) is dropped."""
    data = path.read_bytes()
    if len(data) < HEADER.size:
        raise RevatiTraceError(f"{path}: measured-activity file without a header")
    magic, version, pid, size, t0 = HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION or size != RECORD.itemsize:
        raise RevatiTraceError(
            f"{path}: not a revati measured-activity file of version {VERSION} "
            "(rebuild the collector: python -m revati.native.collector_build)"
        )
    rows, names, off = [], [], HEADER.size
    while off + RECORD.itemsize <= len(data):
        rec = np.frombuffer(data, RECORD, count=1, offset=off)[0]
        end = off + RECORD.itemsize + int(rec["name_len"])
        if end > len(data):
            break
        rows.append(rec)
        names.append(data[off + RECORD.itemsize : end].decode("utf-8", "replace"))
        off = end
    return MeasuredFile(pid, t0, np.array(rows, dtype=RECORD), names)


@dataclass
class MeasuredTrace:
    """Rows of one or more collector files, added to a TraceSink."""

    sink: TraceSink
    t0: int
    threads: dict[tuple[int, int], int] = field(default_factory=dict)
    streams: dict[tuple[int, int, int], int] = field(default_factory=dict)
    devices: set[int] = field(default_factory=set)
    library_calls: int = 0
    kernels: int = 0
    syncs: int = 0
    end_ns: int = 0

    def add_file(self, f: MeasuredFile) -> None:
        self.sink.add("processes", pid=f.pid, started_ns=0, argv=None)
        calls = self._api_calls(f)
        for rec, name in zip(f.records, f.names, strict=True):
            kind = int(rec["kind"])
            if kind in (KERNEL, COPY, MEMSET):
                self._device_op(f.pid, kind, rec, name, calls.get(int(rec["correlation"])))
            elif kind == SYNC:
                self._sync(f.pid, rec, calls.get(int(rec["correlation"])))
            elif kind == LIBCALL:
                self.library_calls += 1

    def _t(self, ns: Any) -> int:
        t = int(ns) - self.t0
        self.end_ns = max(self.end_ns, t)
        return t

    def _thread(self, pid: int, os_tid: int, at: int) -> int:
        key = (pid, os_tid)
        tid = self.threads.get(key)
        if tid is None:
            tid = self.threads[key] = self.sink.new_id("thread")
            self.sink.add("threads", thread_id=tid, pid=pid, tid=os_tid, name="", started_ns=at)
        return tid

    def _stream(self, pid: int, device: int, cupti_stream: int) -> int:
        key = (pid, device, cupti_stream)
        sid = self.streams.get(key)
        if sid is None:
            sid = self.streams[key] = self.sink.new_id("stream")
            self.sink.add(
                "streams", stream_id=sid, pid=pid, device_id=device, handle=cupti_stream,
                is_default=None, name=f"stream {cupti_stream}",
            )  # fmt: skip
        if device not in self.devices:
            self.devices.add(device)
        return sid

    def _api_calls(self, f: MeasuredFile) -> dict[int, dict[str, Any]]:
        """Every API record as an api_calls row (seq in start order per thread), by correlation."""
        api = np.flatnonzero(f.records["kind"] == API)
        api = api[np.argsort(f.records["start"][api], kind="stable")]
        seq: dict[int, int] = {}
        out: dict[int, dict[str, Any]] = {}
        for i in api.tolist():
            rec = f.records[i]
            enter = self._t(rec["start"])
            thread = self._thread(f.pid, int(rec["thread"]), enter)
            row = dict(
                call_id=self.sink.new_id("call"), thread_id=thread,
                seq=seq.setdefault(thread, 0), name=f.names[i] or f"api#{int(rec['sub'])}",
                enter_ns=enter, exit_ns=self._t(rec["end"]), result=int(rec["result"]),
            )  # fmt: skip
            seq[thread] += 1
            self.sink.add("api_calls", **row)
            out[int(rec["correlation"])] = row
        return out

    def _device_op(
        self, pid: int, kind: int, rec: Any, name: str, call: dict[str, Any] | None
    ) -> None:
        device = int(rec["device"])
        common = dict(
            call_id=call["call_id"] if call else None, device_id=device,
            stream_id=self._stream(pid, device, int(rec["stream"])),
            launch_ns=call["enter_ns"] if call else self._t(rec["start"]),
            start_ns=self._t(rec["start"]), end_ns=self._t(rec["end"]),
            duration_source=schema.DURATION_MEASURED, model=schema.DURATION_MEASURED,
        )  # fmt: skip
        if kind == KERNEL:
            g, b = rec["grid"].tolist(), rec["block"].tolist()
            self.kernels += 1
            self.sink.add(
                "kernels", kernel_id=self.sink.new_id("kernel"), **common, name=demangle(name),
                grid_x=g[0], grid_y=g[1], grid_z=g[2], block_x=b[0], block_y=b[1], block_z=b[2],
                shared_mem=int(rec["shared_mem"]), registers=int(rec["registers"]),
                correlation=int(rec["correlation"]),
            )  # fmt: skip
        elif kind == COPY:
            self.sink.add(
                "copies", copy_id=self.sink.new_id("copy"), **common,
                kind=COPY_KINDS.get(int(rec["sub"]), "DtoD"), bytes=int(rec["bytes"]),
            )  # fmt: skip
        else:
            self.sink.add(
                "memsets", memset_id=self.sink.new_id("memset"), **common,
                bytes=int(rec["bytes"]), value=int(rec["sub"]) & 0xFF,
            )  # fmt: skip

    def _sync(self, pid: int, rec: Any, call: dict[str, Any] | None) -> None:
        kind = SYNC_KINDS.get(int(rec["sub"]))
        if kind is None or call is None:
            return
        target = (
            f"event {int(rec['event']):#x}"
            if kind == "event"
            else f"stream {self.streams.get((pid, 0, int(rec['stream'])), int(rec['stream']))}"
            if kind == "stream"
            else "device 0"
        )
        self.syncs += 1
        end = self._t(rec["end"])
        self.sink.add(
            "syncs", sync_id=self.sink.new_id("sync"), call_id=call["call_id"],
            thread_id=call["thread_id"], kind=kind, target=target,
            blocked_ns=self._t(rec["start"]), deadline_ns=end, resumed_ns=end,
        )  # fmt: skip


def measured_trace(files: list[Path], sink: TraceSink) -> MeasuredTrace:
    """Add the rows of every collector file to `sink` (times from the earliest start)."""
    parsed = [read_measured(p) for p in sorted(files)]
    t0 = min((f.t0 for f in parsed), default=0)
    trace = MeasuredTrace(sink, t0)
    for f in parsed:
        trace.add_file(f)
    return trace
