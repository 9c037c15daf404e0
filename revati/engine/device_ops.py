"""Kernels, copies and memsets: where they land, and their trace rows.

`DeviceOps` is the part of `Ingest` that places device work (`revati/engine/ingest.py` walks
the records and handles the rest): runs of plain launches in one vectorised step, other
operations one by one, the nodes of a graph's first launch as nodes of its `GraphRun`, kept as
its template (`graph_replay.py`); graph launches themselves, and replays placed from their
template, are `GraphOps` (`graph_ops.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from revati import shim
from revati.engine.device_model import DeviceModel, Placement, StreamTimeline
from revati.engine.durations import DurationModel
from revati.engine.graph_barriers import segmented_template
from revati.engine.graph_replay import COPIES, GEOMETRY, KERNELS, MEMSETS, GraphRun
from revati.engine.launch_runs import RunIds
from revati.engine.launch_shapes import LaunchShape, feature_columns
from revati.engine.op_durations import OpDurations, distinct_values
from revati.engine.process_state import ProcessState, demangle
from revati.engine.resolution import Resolution
from revati.engine.trace_sink import TraceSink
from revati.recorder import schema
from revati.recorder.writer import Coded, StringCodes


class DeviceOps:
    """Device-model state and the rows of device work; the helpers every record handler uses."""

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
        self.op_durations = OpDurations(durations, self.strings)
        self.shape_at: dict[int, LaunchShape] = {}  # launch shapes by launch ring index
        self.lanes_stored: set[tuple[int, int]] = set()  # graph_lanes rows written
        # Rows whose building waits until the threads blocked on this batch are answered
        self.later: list[Callable[[], None]] = []

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
            raw = p.names.kernel(kernel)
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

    # ---- device work ---------------------------------------------------------------------

    def _launch_run(
        self,
        p: ProcessState,
        recs: np.ndarray,
        lv: np.ndarray,
        dur: np.ndarray,
        models: np.ndarray,
        shapes: dict[int, LaunchShape],
    ) -> None:
        """A run of plain launches by one thread on one stream, placed in one vectorised step:
        end_i = max(floor, max_j<=i (enter_j + latency - S_j-1)) + S_i with S the prefix sums of
        the durations, which is `start = max(enter + latency, previous end)` unrolled. Its rows
        are built later (`write_later`), once the waiting threads have their answers. `recs`
        may hold shape records (`shapes`: the shapes of the launches at those positions)."""
        features: dict[str, np.ndarray] = {}
        if shapes:
            is_launch = recs["type"] == shim.REC_LAUNCH
            at = np.flatnonzero(is_launch).tolist()
            features = feature_columns([shapes.get(pos) for pos in at])
            recs, lv = recs[is_launch], lv[is_launch]
        n = len(recs)
        thread = int(recs["thread"][0])
        s = self.model.stream(p.pid, int(lv["stream"][0]), thread)
        enter = recs["enter_ns"].astype(np.int64)
        d = dur.astype(np.int64)
        csum = np.cumsum(d)
        term = enter + self.model.launch_latency_ns - (csum - d)
        end = csum + np.maximum(np.maximum.accumulate(term), self.model.stream_floor_ns(s))
        last_end = int(end[-1])
        self.model.advance(s, last_end)
        tid = self.thread_id(p, thread, int(enter[0]))
        seq0 = p.thread_seq.get(thread, 0)
        p.thread_seq[thread] = seq0 + n
        ids = RunIds(tid, seq0, self.sink.new_ids("call", n), self.sink.new_ids("kernel", n))
        start = end - d
        self.later.append(
            lambda: self._launch_run_rows(p, recs, lv, models, s, ids, start, end, features)
        )
        self.kernels += n
        p.last_op_end[thread] = last_end
        self.virtual_end_ns = max(self.virtual_end_ns, last_end, int(recs["exit_ns"][-1]))

    def _launch_run_rows(
        self,
        p: ProcessState,
        recs: np.ndarray,
        lv: np.ndarray,
        models: np.ndarray,
        s: StreamTimeline,
        ids: RunIds,
        start: np.ndarray,
        end: np.ndarray,
        features: dict[str, np.ndarray],
    ) -> None:
        """The `api_calls` and `kernels` rows of a run of launches placed by `_launch_run`
        (`features`: the `kernel_features` columns of its launches' shapes, if any)."""
        n = len(recs)
        enter = recs["enter_ns"].astype(np.int64)
        self.sink.add_columns(
            "api_calls",
            {
                "call_id": ids.calls,
                "thread_id": np.full(n, ids.thread, dtype=np.int64),
                "seq": np.arange(ids.seq, ids.seq + n, dtype=np.int64),
                "name": Coded(np.minimum(recs["fn"], len(FN_NAMES) - 1), FN_NAMES),
                "enter_ns": enter,
                "exit_ns": recs["exit_ns"].astype(np.int64),
                "result": recs["result"].astype(np.int32),
            },
        )
        kernel_ids = lv["kernel"]
        uniq, inverse = distinct_values(kernel_ids)
        codes = [self.strings.code(self.kernel_name(p, int(k))) for k in uniq]
        kernel_names = Coded(np.array(codes, dtype=np.int32)[inverse], self.strings.values)
        self.sink.add_columns(
            "kernels",
            {
                "kernel_id": ids.kernels,
                "call_id": ids.calls,
                "device_id": np.full(n, s.device, dtype=np.int32),
                "stream_id": np.full(n, s.stream_id, dtype=np.int64),
                "launch_ns": enter,
                "start_ns": start,
                "end_ns": end,
                "duration_source": Coded(np.zeros(n, np.int32), _PREDICTED),
                "model": Coded(models, self.strings.values),
                "name": kernel_names,
                "grid_x": lv["grid_x"].astype(np.int32),
                "grid_y": lv["grid_y"].astype(np.int32),
                "grid_z": lv["grid_z"].astype(np.int32),
                "block_x": lv["block_x"].astype(np.int32),
                "block_y": lv["block_y"].astype(np.int32),
                "block_z": lv["block_z"].astype(np.int32),
                "shared_mem": lv["shared_mem"].astype(np.int32),
                **features,
            },
        )

    def write_later(self) -> None:
        """Build the rows whose building was put off (`later`) and hand them to the sink."""
        later, self.later = self.later, []
        for build in later:
            build()

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
        name = self.kernel_name(p, int(kernel))
        geometry = (gx, gy, gz, bx, by, bz, smem)
        shape = self.shape_at.get(index)
        self._add_device_op(
            "kernels",
            "kernel",
            p,
            r,
            s,
            place,
            call_id,
            dur,
            name=name,
            **dict(zip(GEOMETRY, geometry, strict=True)),
            graph_id=graph_id,
            **(shape.columns() if shape is not None else {}),
        )
        if graph_flag:
            codes = self.strings.code(dur[1]), self.strings.code(name)
            self._template_node(p, r, KERNELS, place, *codes, *geometry, shape=shape)

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
        copy_kind = shim.COPY_KINDS[kind & shim.COPY_KIND_MASK]
        self._add_device_op(
            "copies",
            "copy",
            p,
            r,
            s,
            place,
            call["call_id"] if call else None,
            dur,
            kind=copy_kind,
            bytes=int(r["c"]),
            src=int(r["b"]),
            dst=int(r["a"]),
        )
        if graph:
            codes = self.strings.code(dur[1]), self.strings.code(copy_kind)
            self._template_node(p, r, COPIES, place, *codes, *(int(r[f]) for f in "cba"))

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
        if graph:
            model = self.strings.code(dur[1])
            self._template_node(p, r, MEMSETS, place, model, *(int(r[f]) for f in "bca"))

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

    def _template_node(
        self,
        p: ProcessState,
        r: dict[str, Any],
        table: str,
        place: Placement,
        *values: int,
        shape: LaunchShape | None = None,
    ) -> None:
        """A graph node just placed: a row of its launch's template (`values`: the columns of
        `table`'s row after lane, start and end), if it was placed as a node of that launch."""
        g = p.graph_runs.get(r["thread"])
        if g is None or not g.takes_node():
            return
        g.add_node(table, place.start_ns, place.end_ns, *values, shape=shape)
        self._keep_template(p, g)

    def _keep_template(self, p: ProcessState, g: GraphRun) -> None:
        template = segmented_template(g) if g.cuts else g.template()
        if template is not None:
            p.graph_templates[g.exec_key] = template

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
        start, lane_s = self._node_start(g, s, not_before)
        place = self.model.place_at(s, lane_s, start, duration)
        g.ends[g.node] = place.end_ns
        return place

    def _node_start(
        self, g: GraphRun, s: StreamTimeline, not_before: int = 0
    ) -> tuple[int, StreamTimeline]:
        """Where the current node of graph launch `g` (on stream s) may start, and the stream of
        its lane (which it now ends)."""
        start = max([g.root_ns, not_before, *(g.ends.get(d, g.root_ns) for d in g.deps)])
        lane = next(
            (g.lane_of[d] for d in g.deps if d in g.lane_of and g.lane_last.get(g.lane_of[d]) == d),
            len(g.lane_last),
        )
        g.lane_of[g.node] = lane
        g.lane_last[lane] = g.node
        return start, s if lane == 0 else self.model.graph_lane(s, lane)


FN_NAMES = [*shim.FN_NAMES, "unknown"]  # a code past the table (another shim version): unknown
_PREDICTED = [schema.DURATION_PREDICTED]
