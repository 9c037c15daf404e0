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
from revati.engine.api_args import api_args
from revati.engine.barriers import BarrierBook
from revati.engine.device_model import DeviceModel, Placement, StreamTimeline
from revati.engine.durations import DurationModel, OpRequests
from revati.engine.trace_sink import TraceSink
from revati.recorder import schema
from revati.recorder.writer import Coded, StringCodes

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
class GraphRun:
    """A graph launch being placed: node ends, and which branch (lane) each node ran on.

    Node i starts at max(root_ns, end of each node it depends on); root_ns is
    max(launch + latency, the launch stream's floor). A node continues the lane of a dependency
    that is still that lane's last node, else it opens a new lane (lane 0 is the launch stream,
    lane k >= 1 a stream of its own), so independent branches overlap and no stream overlaps
    itself."""

    stream: StreamTimeline
    root_ns: int
    node: int = -1
    deps: list[int] = field(default_factory=list)
    ends: dict[int, int] = field(default_factory=dict)
    lane_of: dict[int, int] = field(default_factory=dict)
    lane_last: dict[int, int] = field(default_factory=dict)


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
    graph_runs: dict[int, GraphRun] = field(default_factory=dict)
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
        self.strings = StringCodes()  # kernel names and models, as codes for the writer
        self.barriers = BarrierBook(sink, model, durations)

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
        self.virtual_end_ns = max(self.virtual_end_ns, int(row["exit_ns"] or 0))
        if emit:
            self.sink.add("api_calls", **row)
        return row

    # ---- a batch ---------------------------------------------------------------------------

    def ingest(self, p: ProcessState, first_index: int, records: np.ndarray) -> None:
        if not len(records):
            return
        launches = shim.launch_view(records)
        ops = self._op_requests(p, records, launches)
        durations, models = self.durations.predict(ops)
        types = records["type"]
        is_op = (types == shim.REC_LAUNCH) | (types == shim.REC_COPY) | (types == shim.REC_MEMSET)
        op_index = np.cumsum(is_op) - 1
        names: tuple[str, ...] = records.dtype.names or ()
        i: int = 0
        n = len(records)
        for start, end in _launch_runs(records, launches):
            self._records(
                p, first_index, records, launches, names, i, start, op_index, durations, models
            )
            self._launch_run(
                p,
                records[start:end],
                launches[start:end],
                durations[op_index[start:end]],
                models[op_index[start:end]],
            )
            i = end
        self._records(p, first_index, records, launches, names, i, n, op_index, durations, models)

    def _op_requests(
        self, p: ProcessState, records: np.ndarray, launches: np.ndarray
    ) -> OpRequests:
        """The batch's kernels, copies and memsets, in record order, as predictor columns."""
        types = records["type"]
        take = np.flatnonzero(
            (types == shim.REC_LAUNCH) | (types == shim.REC_COPY) | (types == shim.REC_MEMSET)
        )
        if not len(take):
            return OpRequests()
        t = types[take]
        lv = launches[take]
        is_k, is_c = t == shim.REC_LAUNCH, t == shim.REC_COPY
        uniq, inverse = np.unique(np.where(is_k, lv["kernel"], 0), return_inverse=True)
        knames = np.array([self.kernel_name(p, int(k)) for k in uniq], dtype=object)[inverse]
        ckinds = np.array(shim.COPY_KINDS, dtype=object)[
            records["kind"][take] & shim.COPY_KIND_MASK
        ]
        names = np.where(is_k, knames, np.where(is_c, "memcpy " + ckinds.astype(str), "memset"))
        z = np.zeros(len(take), dtype=np.int64)

        def col(field: str) -> np.ndarray:
            return np.where(is_k, lv[field].astype(np.int64), z)

        return OpRequests.from_arrays(
            kind=np.where(is_k, "kernel", np.where(is_c, "copy", "memset")).astype(object),
            name=names.astype(object),
            grid=np.stack([col("grid_x"), col("grid_y"), col("grid_z")], axis=1),
            block=np.stack([col("block_x"), col("block_y"), col("block_z")], axis=1),
            shared_mem=col("shared_mem"),
            nbytes=np.where(is_c, records["c"][take], np.where(is_k, 0, records["b"][take])).astype(
                np.int64
            ),
            copy_kind=np.where(is_c, ckinds, "").astype(object),
        )

    def _records(
        self,
        p: ProcessState,
        first_index: int,
        records: np.ndarray,
        launches: np.ndarray,
        names: tuple[str, ...],
        lo: int,
        hi: int,
        op_index: np.ndarray,
        durations: np.ndarray,
        models: np.ndarray,
    ) -> None:
        """Records [lo, hi) one by one."""
        if lo >= hi:
            return
        rows = records[lo:hi].tolist()
        lrows = launches[lo:hi].tolist()
        for k, values in enumerate(rows):
            r = dict(zip(names, values, strict=True))
            t = r["type"]
            has_op = t in (shim.REC_LAUNCH, shim.REC_COPY, shim.REC_MEMSET)
            dur = (
                (int(durations[op_index[lo + k]]), models[op_index[lo + k]]) if has_op else (0, "")
            )
            self._one(p, first_index + lo + k, r, lrows[k] if t == shim.REC_LAUNCH else None, dur)

    def _launch_run(
        self, p: ProcessState, recs: np.ndarray, lv: np.ndarray, dur: np.ndarray, models: np.ndarray
    ) -> None:
        """A run of plain launches by one thread on one stream, placed in one vectorised step:
        end_i = max(floor, max_j<=i (enter_j + latency - S_j-1)) + S_i with S the prefix sums of
        the durations, which is `start = max(enter + latency, previous end)` unrolled."""
        n = len(recs)
        thread = int(recs["thread"][0])
        s = self.model.stream(p.pid, int(lv["stream"][0]), thread)
        enter = recs["enter_ns"].astype(np.int64)
        d = dur.astype(np.int64)
        csum = np.cumsum(d)
        term = enter + self.model.launch_latency_ns - (csum - d)
        end = csum + np.maximum(np.maximum.accumulate(term), self.model.stream_floor_ns(s))
        start = end - d
        self.model.advance(s, int(end[-1]))
        tid = self.thread_id(p, thread, int(enter[0]))
        seq0 = p.thread_seq.get(thread, 0)
        p.thread_seq[thread] = seq0 + n
        call_ids = self.sink.new_ids("call", n)
        self.sink.add_columns(
            "api_calls",
            {
                "call_id": call_ids,
                "thread_id": np.full(n, tid, dtype=np.int64),
                "seq": np.arange(seq0, seq0 + n, dtype=np.int64),
                "name": Coded(np.minimum(recs["fn"], len(_FN_NAMES) - 1), _FN_NAMES),
                "enter_ns": enter,
                "exit_ns": recs["exit_ns"].astype(np.int64),
                "result": recs["result"].astype(np.int32),
            },
        )
        kernel_ids = lv["kernel"]
        uniq, inverse = np.unique(kernel_ids, return_inverse=True)
        codes = [self.strings.code(self.kernel_name(p, int(k))) for k in uniq]
        kernel_names = Coded(np.array(codes, dtype=np.int32)[inverse], self.strings.values)
        self.sink.add_columns(
            "kernels",
            {
                "kernel_id": self.sink.new_ids("kernel", n),
                "call_id": call_ids,
                "device_id": np.full(n, s.device, dtype=np.int32),
                "stream_id": np.full(n, s.stream_id, dtype=np.int64),
                "launch_ns": enter,
                "start_ns": start,
                "end_ns": end,
                "duration_source": Coded(np.zeros(n, np.int32), _PREDICTED),
                "model": self.strings.coded(models),
                "name": kernel_names,
                "grid_x": lv["grid_x"].astype(np.int32),
                "grid_y": lv["grid_y"].astype(np.int32),
                "grid_z": lv["grid_z"].astype(np.int32),
                "block_x": lv["block_x"].astype(np.int32),
                "block_y": lv["block_y"].astype(np.int32),
                "block_z": lv["block_z"].astype(np.int32),
                "shared_mem": lv["shared_mem"].astype(np.int32),
            },
        )
        self.kernels += n
        p.last_op_end[thread] = int(end[-1])
        self.virtual_end_ns = max(self.virtual_end_ns, int(end[-1]), int(recs["exit_ns"][-1]))

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
        elif t == shim.REC_API:
            name = _FN_NAMES[min(r["fn"], len(_FN_NAMES) - 1)]
            self.api_call(p, r, args=api_args(name, r["a"], r["b"], r["c"], r["d"]))
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
        place = self._place(p, r, s, dur[0], bool(graph_flag))
        graph_id = p.graph_of_thread.get(r["thread"]) if graph_flag else None
        call_id = None
        if not graph_flag:
            call_id = self.api_call(p, r)["call_id"]
        self.kernels += 1
        self._add_device_op(
            "kernels",
            "kernel",
            p,
            r,
            s,
            place,
            call_id,
            dur,
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
        place = self._place(p, r, s, dur[0], graph) if ok else None
        blocking = not kind & shim.F_ASYNC and ok
        call = None if graph else self.api_call(p, r, emit=not blocking)
        if blocking and call is not None:
            p.pending_call[r["thread"]] = call  # written when the thread resumes (its SYNC)
        if place is None:
            return
        self._add_device_op(
            "copies",
            "copy",
            p,
            r,
            s,
            place,
            call["call_id"] if call else None,
            dur,
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
        place = self._place(p, r, s, dur[0], graph)
        self._add_device_op(
            "memsets",
            "memset",
            p,
            r,
            s,
            place,
            call["call_id"] if call else None,
            dur,
            bytes=int(r["b"]),
            value=int(r["c"]),
            dst=int(r["a"]),
        )

    def _add_device_op(
        self,
        table: str,
        id_kind: str,
        p: ProcessState,
        r: dict[str, Any],
        s: StreamTimeline,
        place: Placement,
        call_id: int | None,
        dur: tuple[int, str],
        **fields: Any,
    ) -> None:
        """One kernel, copy or memset row: the columns they share, then their own `fields`."""
        p.last_op_end[r["thread"]] = place.end_ns
        self.virtual_end_ns = max(self.virtual_end_ns, place.end_ns)
        self.sink.add(
            table,
            **{f"{id_kind}_id": self.sink.new_id(id_kind)},
            call_id=call_id,
            device_id=s.device,
            stream_id=place.stream_id,
            launch_ns=int(r["enter_ns"]),
            start_ns=place.start_ns,
            end_ns=place.end_ns,
            duration_source="predicted",
            model=str(dur[1]),
            **fields,
        )

    def _graph_point(
        self, p: ProcessState, r: dict[str, Any], stream: int, not_before: int = 0
    ) -> Placement:
        """A graph node that takes no device time (memory and event nodes)."""
        s = self.model.stream(p.pid, stream, r["thread"])
        return self._place(p, r, s, 0, True, not_before)

    def _alloc(self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: Any) -> None:
        if r["kind"] & shim.F_GRAPH:  # an allocation node reached by a graph launch
            self._graph_point(p, r, int(r["d"]))
            return
        pool = f" pool={r['d']}" if r["d"] else ""  # stream-ordered: the pool it came from
        call = self.api_call(p, r, args=f"bytes={r['b']}{pool}")
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
        if r["kind"] & shim.F_GRAPH:  # a free node reached by a graph launch
            self._graph_point(p, r, int(r["d"]))
            return
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
        if r["kind"] & shim.F_GRAPH:  # an event record node: the event fires when its deps end
            place = self._graph_point(p, r, int(r["b"]))
            self.model.record_event_at(p.pid, int(r["a"]), place.end_ns, place.stream_id)
            return
        self.api_call(p, r)
        s = self.model.stream(p.pid, int(r["b"]), r["thread"])
        self.model.record_event(p.pid, int(r["a"]), s, r["enter_ns"])

    def _stream_wait(
        self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: Any
    ) -> None:
        if r["kind"] & shim.F_GRAPH:  # an event wait node: starts once the event has fired
            fired = self.model.event_time_ns(p.pid, int(r["b"])) or 0
            self._graph_point(p, r, int(r["a"]), fired)
            return
        self.api_call(p, r)
        s = self.model.stream(p.pid, int(r["a"]), r["thread"])
        self.model.wait_event(p.pid, s, int(r["b"]))

    def _graph_launch(
        self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: Any
    ) -> None:
        self.api_call(p, r, args=f"graph_exec={r['a']} nodes={r['c']}")
        p.graph_of_thread[r["thread"]] = self.sink.new_id("graph_launch")
        s = self.model.stream(p.pid, int(r["b"]), r["thread"])
        root = max(int(r["exit_ns"]) + self.model.launch_latency_ns, self.model.stream_floor_ns(s))
        p.graph_runs[r["thread"]] = GraphRun(s, root)

    def _graph_node(
        self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: Any
    ) -> None:
        g = p.graph_runs.get(r["thread"])
        if g is None:
            return
        if int(r["a"]) != g.node:
            g.node, g.deps = int(r["a"]), []
        g.deps.extend(int(x) for x in (r["b"], r["c"], r["d"])[: r["kind"]])

    def _place(
        self,
        p: ProcessState,
        r: dict[str, Any],
        s: StreamTimeline,
        duration: int,
        graph: bool,
        not_before: int = 0,
    ) -> Placement:
        """Where an operation lands: on its stream, or as a node of the thread's graph launch
        (not before `not_before`: an event wait node)."""
        g = p.graph_runs.get(r["thread"]) if graph else None
        if g is None or g.stream is not s or g.node in g.ends:
            return self.model.submit(s, max(r["enter_ns"], not_before), duration)
        start = max([g.root_ns, not_before, *(g.ends.get(d, g.root_ns) for d in g.deps)])
        lane = next(
            (g.lane_of[d] for d in g.deps if d in g.lane_of and g.lane_last.get(g.lane_of[d]) == d),
            len(g.lane_last),
        )
        lane_s = s if lane == 0 else self.model.graph_lane(s, lane)
        place = self.model.place_at(s, lane_s, start, duration)
        g.ends[g.node] = place.end_ns
        g.lane_of[g.node] = lane
        g.lane_last[lane] = g.node
        return place

    def _host_fn(self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: Any) -> None:
        if r["kind"] & shim.F_GRAPH:  # a host node: a point in the graph, no call of its own
            s = self.model.stream(p.pid, int(r["a"]), r["thread"])
            self._place(p, r, s, 0, True)
            return
        if r["kind"] & shim.F_HOST_START:  # the worker thread starts running it (an instant)
            self.api_call(p, r, name=f"{shim.FN_NAMES[r['fn']]} callback")
            return
        self.api_call(p, r)

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
        if kind == shim.SYNC_BARRIER:  # its deadline comes when its barriers are released
            waiting = self.resolutions[key] = Resolution(INFINITE, kind="barrier")
            waiting.call = self._barrier_call(p, r)
            waiting.target = self.barriers.wait(p.key, int(r["thread"]), at, waiting)
            return
        if call is None:
            call = self.api_call(p, r, emit=False)
        deadline, target = self._deadline(p, r["thread"], kind, a, value, at)
        self.resolutions[key] = Resolution(
            deadline, 0, 0, shim.SYNC_KINDS.get(kind, "wait"), target, call
        )

    def _collective(
        self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: Any
    ) -> None:
        """An NCCL arrival. Its call row is held: if the thread's next barrier wait belongs to
        the same call (no group), the two are one row, from the call to the resume."""
        held = self.barriers.held_calls.pop((*p.key, int(r["thread"])), None)
        if held is not None:
            self.sink.add("api_calls", **held)
        call = self.barriers.held_calls[(*p.key, int(r["thread"]))] = self.api_call(
            p, r, emit=False
        )
        self.barriers.arrive(p.key, p.pid, r, call["call_id"])

    def _barrier_call(self, p: ProcessState, r: dict[str, Any]) -> dict[str, Any]:
        held = self.barriers.held_calls.pop((*p.key, int(r["thread"])), None)
        if held is not None and held["name"] == _FN_NAMES[min(int(r["fn"]), len(_FN_NAMES) - 1)]:
            return held
        if held is not None:
            self.sink.add("api_calls", **held)
        return self.api_call(p, r, emit=False)

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
        if kind == shim.SYNC_POLL:  # value: virtual deadline, or all ones for none
            return (INFINITE if value >= 1 << 63 else max(at, value)), f"{a} fds"
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


_FN_NAMES = [*shim.FN_NAMES, "unknown"]  # a code past the table (another shim version): unknown
_PREDICTED = [schema.DURATION_PREDICTED]
MIN_RUN = 16


def _launch_runs(records: np.ndarray, launches: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of runs of >= MIN_RUN plain launches by one thread on one stream."""
    plain = (records["type"] == shim.REC_LAUNCH) & (launches["graph_flag"] == 0)
    if plain.sum() < MIN_RUN:
        return []
    same = (
        plain[1:]
        & plain[:-1]
        & (launches["stream"][1:] == launches["stream"][:-1])
        & (records["thread"][1:] == records["thread"][:-1])
    )
    breaks = np.flatnonzero(~same) + 1
    bounds = np.concatenate([[0], breaks, [len(records)]])
    return [
        (int(a), int(b))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        if b - a >= MIN_RUN and plain[a]
    ]


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
    shim.REC_GRAPH_NODE: Ingest._graph_node,
    shim.REC_HOST_FN: Ingest._host_fn,
    shim.REC_UNSUPPORTED: Ingest._unsupported,
    shim.REC_DEVICE_RESET: Ingest._device_reset,
    shim.REC_SYNC: Ingest._sync,
    shim.REC_COLLECTIVE: Ingest._collective,
}
