"""Ring records -> device model -> trace rows. One `Ingest` serves every participant.

Records of a drained batch are walked in ring order (the order the process made its calls);
durations of the batch's kernels, copies and memsets are predicted first in one call. Blocking
records (REC_SYNC) get their deadline or answer here, at their place in the order, so a sync
waits exactly for the work submitted before it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from revati import shim
from revati.engine.device_model import DeviceModel
from revati.engine.durations import DurationModel, OpRequests
from revati.engine.trace_sink import TraceSink

INFINITE = None


@lru_cache(maxsize=1)
def _cxa_demangle() -> Any:
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("stdc++") or "libstdc++.so.6")
    except OSError:
        return None
    fn = lib.__cxa_demangle
    fn.restype = ctypes.c_void_p
    fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    return fn


def demangle(name: str) -> str:
    """The C++ name of a mangled kernel name (itself if it is not mangled)."""
    fn = _cxa_demangle()
    if fn is None or not name.startswith("_Z"):
        return name
    status = ctypes.c_int(0)
    ptr = fn(name.encode(), None, None, ctypes.byref(status))
    if status.value != 0 or not ptr:
        return name
    out = ctypes.string_at(ptr).decode("utf-8", "replace")
    ctypes.CDLL(None).free(ctypes.c_void_p(ptr))
    return out


@dataclass
class Resolution:
    """What a blocking record resolved to: a deadline, or an answer for a query."""

    deadline_ns: int | None
    result: int = 0
    value: int = 0
    kind: str = ""
    target: str = ""
    call: dict[str, Any] | None = None


@dataclass
class ProcessState:
    """What the ingest keeps per participant image (one ring)."""

    pid: int
    key: tuple[int, int]
    names: shim.NamesFile
    thread_ids: dict[int, int] = field(default_factory=dict)
    thread_seq: dict[int, int] = field(default_factory=dict)
    last_op_end: dict[int, int] = field(default_factory=dict)
    graph_of_thread: dict[int, int] = field(default_factory=dict)
    kernel_names: dict[int, str] = field(default_factory=dict)
    allocs: dict[int, dict[str, Any]] = field(default_factory=dict)
    pending_call: dict[int, dict[str, Any]] = field(default_factory=dict)


class Ingest:
    """Turns drained records into device-model state, resolutions of blocking calls and rows."""

    def __init__(
        self, sink: TraceSink, model: DeviceModel, durations: DurationModel, device_name: str
    ) -> None:
        self.sink = sink
        self.model = model
        self.durations = durations
        self.device_name = device_name
        self.resolutions: dict[tuple[int, int, int], Resolution] = {}
        self.kernels = 0
        self.virtual_end_ns = 0

    # ---- helpers ---------------------------------------------------------------------------

    def thread_id(self, p: ProcessState, thread: int, at_ns: int) -> int:
        tid = p.thread_ids.get(thread)
        if tid is None:
            p.names.refresh()
            os_tid, name = p.names.threads.get(thread, (0, ""))
            tid = p.thread_ids[thread] = self.sink.new_id("thread")
            self.sink.add(
                "threads", thread_id=tid, pid=p.pid, tid=os_tid, name=name, started_ns=int(at_ns)
            )
        return tid

    def kernel_name(self, p: ProcessState, kernel: int) -> str:
        name = p.kernel_names.get(kernel)
        if name is None:
            p.names.refresh()
            raw = p.names.kernels.get(kernel)
            if raw is None:
                return f"kernel#{kernel}"
            name = p.kernel_names[kernel] = demangle(raw)
        return name

    def api_call(
        self,
        p: ProcessState,
        r: dict[str, Any],
        *,
        name: str | None = None,
        exit_ns: int | None = None,
        args: str | None = None,
        emit: bool = True,
    ) -> dict[str, Any]:
        thread = self.thread_id(p, r["thread"], r["enter_ns"])
        seq = p.thread_seq.get(r["thread"], 0)
        p.thread_seq[r["thread"]] = seq + 1
        row = dict(
            call_id=self.sink.new_id("call"),
            thread_id=thread,
            seq=seq,
            name=name or (shim.FN_NAMES[r["fn"]] if r["fn"] < len(shim.FN_NAMES) else "unknown"),
            enter_ns=int(r["enter_ns"]),
            exit_ns=int(r["exit_ns"] if exit_ns is None else exit_ns),
            result=int(r["result"]),
            args=args,
        )
        self.virtual_end_ns = max(self.virtual_end_ns, row["exit_ns"])
        if emit:
            self.sink.add("api_calls", **row)
        return row

    # ---- a batch ---------------------------------------------------------------------------

    def ingest(self, p: ProcessState, first_index: int, records: np.ndarray) -> None:
        if not len(records):
            return
        p.names.refresh()
        launches = shim.launch_view(records)
        ops = OpRequests()
        op_of: dict[int, int] = {}
        types = records["type"]
        for i in np.flatnonzero(
            (types == shim.REC_LAUNCH) | (types == shim.REC_COPY) | (types == shim.REC_MEMSET)
        ):
            t = int(types[i])
            if t == shim.REC_LAUNCH:
                lv = launches[i]
                op_of[int(i)] = ops.add(
                    "kernel",
                    self.kernel_name(p, int(lv["kernel"])),
                    (int(lv["grid_x"]), int(lv["grid_y"]), int(lv["grid_z"])),
                    (int(lv["block_x"]), int(lv["block_y"]), int(lv["block_z"])),
                    int(lv["shared_mem"]),
                )
            elif t == shim.REC_COPY:
                kind = shim.COPY_KINDS[int(records["kind"][i]) & shim.COPY_KIND_MASK]
                op_of[int(i)] = ops.add(
                    "copy", f"memcpy {kind}", nbytes=int(records["c"][i]), copy_kind=kind
                )
            else:
                op_of[int(i)] = ops.add("memset", "memset", nbytes=int(records["b"][i]))
        durations, models = self.durations.predict(ops)
        rows = records.tolist()
        names = records.dtype.names
        lrows = launches.tolist() if len(op_of) else None
        for i, values in enumerate(rows):
            r = dict(zip(names, values, strict=True))
            op = op_of.get(i)
            dur = (int(durations[op]), models[op]) if op is not None else (0, "")
            self._one(
                p,
                first_index + i,
                r,
                lrows[i] if lrows and r["type"] == shim.REC_LAUNCH else None,
                dur,
            )

    def _one(
        self,
        p: ProcessState,
        index: int,
        r: dict[str, Any],
        launch: tuple | None,
        dur: tuple[int, str],
    ) -> None:
        t = r["type"]
        handler = _HANDLERS.get(t)
        if handler is not None:
            handler(self, p, index, r, launch, dur)
        elif t != shim.REC_THREAD:
            self.api_call(p, r)
        else:
            self.thread_id(p, r["thread"], r["enter_ns"])

    # ---- record handlers -------------------------------------------------------------------

    def _launch(
        self, p: ProcessState, index: int, r: dict[str, Any], lv: tuple, dur: tuple[int, str]
    ) -> None:
        (_h, kernel, gx, gy, gz, bx, by, bz, graph_flag, smem, stream) = lv
        s = self.model.stream(p.pid, int(stream), r["thread"])
        place = self.model.submit(s, r["enter_ns"], dur[0])
        graph_id = p.graph_of_thread.get(r["thread"]) if graph_flag else None
        call_id = None
        if not graph_flag:
            call_id = self.api_call(p, r)["call_id"]
        self.kernels += 1
        self.virtual_end_ns = max(self.virtual_end_ns, place.end_ns)
        p.last_op_end[r["thread"]] = place.end_ns
        self.sink.add(
            "kernels",
            kernel_id=self.sink.new_id("kernel"),
            call_id=call_id,
            device_id=s.device,
            stream_id=s.stream_id,
            launch_ns=int(r["enter_ns"]),
            start_ns=place.start_ns,
            end_ns=place.end_ns,
            duration_source="predicted",
            model=str(dur[1]),
            name=self.kernel_name(p, int(kernel)),
            grid_x=gx,
            grid_y=gy,
            grid_z=gz,
            block_x=bx,
            block_y=by,
            block_z=bz,
            shared_mem=smem,
            graph_id=graph_id,
        )

    def _copy(
        self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: tuple[int, str]
    ) -> None:
        kind = r["kind"]
        s = self.model.stream(p.pid, int(r["d"]), r["thread"])
        graph = bool(kind & shim.F_GRAPH)
        ok = r["result"] == 0
        place = self.model.submit(s, r["enter_ns"], dur[0]) if ok else None
        blocking = not kind & shim.F_ASYNC and ok
        call = None if graph else self.api_call(p, r, emit=not blocking)
        if blocking and call is not None:
            p.pending_call[r["thread"]] = call  # written when the thread resumes (its SYNC)
        if place is None:
            return
        p.last_op_end[r["thread"]] = place.end_ns
        self.virtual_end_ns = max(self.virtual_end_ns, place.end_ns)
        self.sink.add(
            "copies",
            copy_id=self.sink.new_id("copy"),
            call_id=call and call["call_id"],
            device_id=s.device,
            stream_id=s.stream_id,
            launch_ns=int(r["enter_ns"]),
            start_ns=place.start_ns,
            end_ns=place.end_ns,
            duration_source="predicted",
            model=str(dur[1]),
            kind=shim.COPY_KINDS[kind & shim.COPY_KIND_MASK],
            bytes=int(r["c"]),
            src=int(r["b"]),
            dst=int(r["a"]),
        )

    def _memset(
        self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: tuple[int, str]
    ) -> None:
        s = self.model.stream(p.pid, int(r["d"]), r["thread"])
        graph = bool(r["kind"] & shim.F_GRAPH)
        call = None if graph else self.api_call(p, r)
        if r["result"] != 0:
            return
        place = self.model.submit(s, r["enter_ns"], dur[0])
        p.last_op_end[r["thread"]] = place.end_ns
        self.virtual_end_ns = max(self.virtual_end_ns, place.end_ns)
        self.sink.add(
            "memsets",
            memset_id=self.sink.new_id("memset"),
            call_id=call and call["call_id"],
            device_id=s.device,
            stream_id=s.stream_id,
            launch_ns=int(r["enter_ns"]),
            start_ns=place.start_ns,
            end_ns=place.end_ns,
            duration_source="predicted",
            model=str(dur[1]),
            bytes=int(r["b"]),
            value=int(r["c"]),
            dst=int(r["a"]),
        )

    def _alloc(self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: Any) -> None:
        call = self.api_call(p, r, args=f"bytes={r['b']}")
        kind = r["kind"]
        row = dict(
            alloc_id=self.sink.new_id("alloc"),
            call_id=call["call_id"],
            pid=p.pid,
            device_id=None if kind & 0x3 == shim.ALLOC_HOST else int(r["c"]),
            kind=shim.ALLOC_KINDS.get(kind & 0x3, "device"),
            address=int(r["a"]),
            bytes=int(r["b"]),
            backed=bool(kind & shim.F_BACKED),
            alloc_ns=int(r["enter_ns"]),
            free_ns=None,
            result=int(r["result"]),
        )
        if r["result"] == 0 and r["a"]:
            p.allocs[int(r["a"])] = row
        else:
            self.sink.add("allocations", **row)

    def _free(self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: Any) -> None:
        self.api_call(p, r)
        row = p.allocs.pop(int(r["a"]), None)
        if row is not None:
            row["free_ns"] = int(r["enter_ns"])
            self.sink.add("allocations", **row)

    def flush_allocations(self, p: ProcessState) -> None:
        """Write the allocations still live (at the end of the run or of the process)."""
        for row in p.allocs.values():
            self.sink.add("allocations", **row)
        p.allocs.clear()

    def _stream_create(
        self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: Any
    ) -> None:
        self.api_call(p, r)
        prio = int(np.int64(np.uint64(r["c"])))
        self.model.create_stream(p.pid, int(r["a"]), int(r["b"]), prio, int(r["d"]))

    def _stream_destroy(
        self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: Any
    ) -> None:
        self.api_call(p, r)
        self.model.destroy_stream(p.pid, int(r["a"]))

    def _event_create(
        self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: Any
    ) -> None:
        self.api_call(p, r)
        self.model.create_event(p.pid, int(r["a"]), int(r["b"]))

    def _event_record(
        self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: Any
    ) -> None:
        self.api_call(p, r)
        s = self.model.stream(p.pid, int(r["b"]), r["thread"])
        self.model.record_event(p.pid, int(r["a"]), s, r["enter_ns"])

    def _stream_wait(
        self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: Any
    ) -> None:
        self.api_call(p, r)
        s = self.model.stream(p.pid, int(r["a"]), r["thread"])
        self.model.wait_event(p.pid, s, int(r["b"]))

    def _graph_launch(
        self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: Any
    ) -> None:
        self.api_call(p, r, args=f"graph_exec={r['a']} nodes={r['c']}")
        p.graph_of_thread[r["thread"]] = self.sink.new_id("graph_launch")

    def _unsupported(
        self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: Any
    ) -> None:
        p.names.refresh()
        name, library = p.names.unsupported.get(int(r["a"]), (f"unsupported#{r['a']}", ""))
        call = self.api_call(p, r, name=name)
        self.sink.add(
            "unsupported_calls",
            call_id=call["call_id"],
            thread_id=call["thread_id"],
            name=name,
            library=library,
            at_ns=int(r["enter_ns"]),
            result=int(r["result"]),
        )

    def _device_reset(
        self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: Any
    ) -> None:
        self.model.reset_process(p.pid)

    def _sync(self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: Any) -> None:
        kind, a, b, value, msg_type = r["kind"], int(r["a"]), int(r["b"]), int(r["c"]), int(r["d"])
        at = int(r["enter_ns"])
        key = (*p.key, index)
        call = p.pending_call.pop(r["thread"], None) if kind == shim.SYNC_COPY else None
        if msg_type == shim.MSG_QUERY:
            res, val = self._query(p, r["thread"], value, a, b, at)
            self.api_call(p, r, exit_ns=at)
            self.resolutions[key] = Resolution(at, res, val, "query")
            return
        deadline, target = self._deadline(p, r["thread"], kind, a, value, at)
        if call is None:
            call = self.api_call(p, r, emit=False)
        self.resolutions[key] = Resolution(
            deadline, 0, 0, shim.SYNC_KINDS.get(kind, "wait"), target, call
        )

    def _deadline(
        self, p: ProcessState, thread: int, kind: int, a: int, value: int, at: int
    ) -> tuple[int | None, str]:
        m = self.model
        if kind == shim.SYNC_STREAM:
            s = m.stream(p.pid, a, thread)
            return max(at, m.stream_done_ns(s)), f"stream {s.stream_id}"
        if kind == shim.SYNC_EVENT:
            t = m.event_time_ns(p.pid, a)
            return max(at, t if t is not None else at), f"event {a:#x}"
        if kind == shim.SYNC_DEVICE:
            return max(at, m.device_done_ns(p.pid, a)), f"device {a}"
        if kind == shim.SYNC_COPY:
            return max(at, p.last_op_end.get(thread, at)), "copy"
        if kind == shim.SYNC_SLEEP:
            return max(at, value), "sleep"
        return INFINITE, "wait"

    def _query(
        self, p: ProcessState, thread: int, what: int, a: int, b: int, at: int
    ) -> tuple[int, int]:
        m = self.model
        if what == shim.QUERY_EVENT_ELAPSED:
            return m.elapsed_ns(p.pid, a, b, at)
        if what == shim.QUERY_EVENT:
            t = m.event_time_ns(p.pid, a)
            return (0 if t is None or t <= at else 600), 0
        if what == shim.QUERY_STREAM:
            return (0 if m.stream_done_ns(m.stream(p.pid, a, thread)) <= at else 600), 0
        return 0, 0


_HANDLERS = {
    shim.REC_LAUNCH: Ingest._launch,
    shim.REC_COPY: Ingest._copy,
    shim.REC_MEMSET: Ingest._memset,
    shim.REC_ALLOC: Ingest._alloc,
    shim.REC_FREE: Ingest._free,
    shim.REC_STREAM_CREATE: Ingest._stream_create,
    shim.REC_STREAM_DESTROY: Ingest._stream_destroy,
    shim.REC_EVENT_CREATE: Ingest._event_create,
    shim.REC_EVENT_RECORD: Ingest._event_record,
    shim.REC_STREAM_WAIT: Ingest._stream_wait,
    shim.REC_GRAPH_LAUNCH: Ingest._graph_launch,
    shim.REC_UNSUPPORTED: Ingest._unsupported,
    shim.REC_DEVICE_RESET: Ingest._device_reset,
    shim.REC_SYNC: Ingest._sync,
}
