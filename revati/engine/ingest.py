"""Ring records -> device model -> trace rows. One `Ingest` serves every participant.

Records of a drained batch are walked in ring order (the order the process made its calls);
durations of the batch's kernels, copies and memsets are predicted first, once per distinct
shape (`op_durations.py`); device work is placed by `DeviceOps` (`device_ops.py`), graph
launches by `GraphOps` (`graph_ops.py`). Blocking
records (REC_SYNC) get their deadline or answer here, at their place in the order, so a sync
waits exactly for the work submitted before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from revati import shim
from revati.engine.api_args import api_args
from revati.engine.barriers import BarrierBook
from revati.engine.device_model import DeviceModel, Placement
from revati.engine.device_ops import FN_NAMES
from revati.engine.durations import DurationModel
from revati.engine.graph_ops import GraphOps
from revati.engine.launch_runs import MIN_RUN, launch_runs
from revati.engine.launch_shapes import PREFIX_TYPES, pair_shapes
from revati.engine.op_durations import OP_TYPES, SMALL_BATCH, op_mask
from revati.engine.process_state import ProcessState
from revati.engine.resolution import INFINITE, Resolution
from revati.engine.trace_sink import TraceSink

__all__ = ["Ingest", "ProcessState", "Resolution"]


class Ingest(GraphOps):
    """Turns drained records into device-model state, resolutions of blocking calls and rows."""

    def __init__(
        self, sink: TraceSink, model: DeviceModel, durations: DurationModel, device_name: str
    ) -> None:
        super().__init__(sink, model, durations, device_name)
        self.barriers = BarrierBook(sink, model, durations)

    # ---- a batch ---------------------------------------------------------------------------

    def ingest(self, p: ProcessState, first_index: int, records: np.ndarray) -> None:
        if not len(records):
            return
        if len(records) <= SMALL_BATCH:  # what a sync drains, usually
            rows = records.tolist()
            types = [r[1] for r in rows]
            if types.count(shim.REC_LAUNCH) < MIN_RUN:
                self._ingest_few(p, first_index, records, rows, types)
                return
        launches = shim.launch_view(records)
        is_op = op_mask(records)
        all_ops = bool(is_op.all())  # a batch of launches only: no copies, no index arrays
        shapes = pair_shapes(records, p.pending_shape, lambda kernel: self.kernel_name(p, kernel))
        self.shape_at = {first_index + pos: shape for pos, shape in shapes.items()}
        shape_ids = self.op_durations.shape_ids(shapes, len(records)) if shapes else None
        if shape_ids is not None and not all_ops:
            shape_ids = shape_ids[is_op]
        durations, models = self.op_durations.predict(
            records if all_ops else records[is_op],
            lambda kernel: self.kernel_name(p, kernel),
            shape_ids,
        )
        ops_before = np.cumsum(is_op)  # operations up to and including each record
        names: tuple[str, ...] = records.dtype.names or ()

        def ops_in(lo: int, hi: int) -> slice:  # the operations among records [lo, hi)
            return slice(int(ops_before[lo - 1]) if lo else 0, int(ops_before[hi - 1]))

        def walk(lo: int, hi: int) -> None:  # records [lo, hi) one by one
            if lo >= hi:
                return
            ops = ops_in(lo, hi)
            durs = zip(durations[ops].tolist(), models[ops].tolist(), strict=True)
            rows, lrows = records[lo:hi].tolist(), launches[lo:hi].tolist()
            self._walk(p, first_index + lo, rows, lrows, names, durs)

        i = 0
        for start, end in launch_runs(records, launches):
            walk(i, start)
            ops = ops_in(start, end)
            run_shapes = {pos - start: shape for pos, shape in shapes.items() if start <= pos < end}
            self._launch_run(
                p, records[start:end], launches[start:end], durations[ops], models[ops], run_shapes
            )
            i = end
        walk(i, len(records))

    def _ingest_few(
        self, p: ProcessState, first_index: int, records: np.ndarray, rows: list, types: list
    ) -> None:
        """A small batch with few launches: record by record, without array passes (`rows`:
        the records as tuples, `types` their types)."""
        has_shapes = p.pending_shape or any(t in PREFIX_TYPES for t in types)
        shapes = (
            pair_shapes(records, p.pending_shape, lambda kernel: self.kernel_name(p, kernel))
            if has_shapes
            else {}
        )
        self.shape_at = {first_index + pos: shape for pos, shape in shapes.items()}
        ops = [k for k, t in enumerate(types) if t in OP_TYPES]
        sids = [self.op_durations.shape_id(shapes[k]) if k in shapes else 0 for k in ops]
        predicted = self.op_durations.predict_rows(
            [rows[k] for k in ops],
            sids,
            lambda chosen: records[[ops[i] for i in chosen]],
            lambda kernel: self.kernel_name(p, kernel),
        )
        lrows = shim.launch_view(records).tolist() if shim.REC_LAUNCH in types else rows
        names: tuple[str, ...] = records.dtype.names or ()
        self._walk(p, first_index, rows, lrows, names, iter(predicted))

    def _walk(
        self,
        p: ProcessState,
        index: int,
        rows: list[tuple],
        lrows: list[tuple],
        names: tuple[str, ...],
        durations: Iterator[tuple[int, int]],
    ) -> None:
        """Records one by one (`rows` and their launch views `lrows`, from ring index `index`);
        `durations` yields (duration, model code) for each operation record among them."""
        models = self.strings.values
        for k, values in enumerate(rows):
            t = values[1]
            dur = (0, "")
            if t in OP_TYPES:
                d, m = next(durations)
                dur = (int(d), models[m])
            r = dict(zip(names, values, strict=True))
            self._one(p, index + k, r, lrows[k] if t == shim.REC_LAUNCH else None, dur)

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
            name = FN_NAMES[min(r["fn"], len(FN_NAMES) - 1)]
            self.api_call(p, r, args=api_args(name, r["a"], r["b"], r["c"], r["d"]))
        elif t != shim.REC_THREAD:
            self.api_call(p, r)
        else:
            self.thread_id(p, r["thread"], r["enter_ns"])

    # ---- record handlers -------------------------------------------------------------------

    def _shape(self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: Any) -> None:
        """A library GEMM's shape or a launch's argument bytes: already paired with its launch
        (`launch_shapes.pair_shapes`)."""

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
        name, library = p.names.unsupported_call(int(r["a"])) or (f"unsupported#{r['a']}", "")
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
        deadline, target = self._deadline(p, r["thread"], kind, a, value, at)
        if call is None:
            call = self.api_call(p, r, emit=False)
        self.resolutions[key] = Resolution(
            deadline, 0, 0, shim.SYNC_KINDS.get(kind, "wait"), target, call
        )

    def _collective(
        self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: Any
    ) -> None:
        """An NCCL arrival, or a group barrier kernel's (eager, or a node of a graph launch). Its
        call row is held: if the thread's next barrier wait belongs to the same call (no group),
        the two are one row, from the call to the resume."""
        held = self.barriers.held_calls.pop((*p.key, int(r["thread"])), None)
        if held is not None:
            self.sink.add("api_calls", **held)
        call = self.barriers.held_calls[(*p.key, int(r["thread"]))] = self.api_call(
            p, r, emit=False
        )
        self.barriers.arrive(p.key, p.pid, r, call["call_id"], self._barrier_node(p, r))

    def _barrier_call(self, p: ProcessState, r: dict[str, Any]) -> dict[str, Any]:
        held = self.barriers.held_calls.pop((*p.key, int(r["thread"])), None)
        if held is not None and held["name"] == FN_NAMES[min(int(r["fn"]), len(FN_NAMES) - 1)]:
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
    shim.REC_GEMM: Ingest._shape,
    shim.REC_KERNEL_ARGS: Ingest._shape,
    shim.REC_COLLECTIVE: Ingest._collective,
}
