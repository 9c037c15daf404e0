"""Graph launches in the engine: the first launch of an instantiated graph opens a `GraphRun`
whose nodes `DeviceOps` places one by one (and collects as the graph's template); a later launch
sent as one replay record is placed from that template in O(1) and stored as one
`graph_replays` row (`graph_replay.py`); a group barrier node of a launch is an arrival at a
barrier (`graph_barriers.py`).
"""

from __future__ import annotations

from typing import Any

from revati import shim
from revati.engine.device_model import StreamTimeline
from revati.engine.device_ops import DeviceOps
from revati.engine.graph_barriers import BarrierNode
from revati.engine.graph_replay import GraphRun, place_replay
from revati.engine.process_state import ProcessState

FN_GRAPH_LAUNCH = shim.FN_NAMES.index("cudaGraphLaunch")


class GraphOps(DeviceOps):
    """The record handlers of graph launches and their node headers."""

    def _graph_launch(
        self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: Any
    ) -> None:
        self.api_call(p, r, args=f"graph_exec={r['a']} nodes={r['c']}")
        graph_id = p.graph_of_thread[r["thread"]] = self.sink.new_id("graph_launch")
        s = self.model.stream(p.pid, int(r["b"]), r["thread"])
        root = max(int(r["exit_ns"]) + self.model.launch_latency_ns, self.model.stream_floor_ns(s))
        key = (int(r["a"]), int(r["d"]))
        if r["kind"] & shim.REC_GRAPH_REPLAY:
            p.graph_runs.pop(r["thread"], None)
            self._replay(p, r, s, root, key, graph_id)
            return
        g = p.graph_runs[r["thread"]] = GraphRun(s, root, key, int(r["c"]))
        self._keep_template(p, g)  # a graph without nodes is complete at once

    def _replay(
        self,
        p: ProcessState,
        r: dict[str, Any],
        s: StreamTimeline,
        root_ns: int,
        key: tuple[int, int],
        graph_id: int,
    ) -> None:
        """A launch of a graph placed before: placed from its template in a few vectorised
        steps, and one `graph_replays` row that stands for its kernels, copies and memsets."""
        t = p.graph_templates.get(key)
        if t is None:  # its nodes never arrived (the shim lost the coordinator meanwhile)
            return
        replay = place_replay(self.model, s, t, root_ns)
        if t.template_id < 0:  # its first replay: the template's rows, once
            t.template_id = self.sink.new_id("graph_template")
            for table, columns in t.rows(self.strings.values):
                self.sink.add_columns(table, columns)
        for lane, stream_id in replay.lane_streams.items():
            if lane and (s.stream_id, lane) not in self.lanes_stored:
                self.lanes_stored.add((s.stream_id, lane))
                self.sink.add(
                    "graph_lanes", stream_id=s.stream_id, lane=lane, lane_stream_id=stream_id
                )
        self.sink.add(
            "graph_replays",
            replay_id=graph_id,
            template_id=t.template_id,
            first_kernel_id=self.sink.reserve_ids("kernel", t.kernels),
            device_id=s.device,
            stream_id=s.stream_id,
            launch_ns=int(r["exit_ns"]),
            root_ns=replay.root_ns,
            first_copy_id=self.sink.reserve_ids("copy", t.copies) if t.copies else None,
            first_memset_id=self.sink.reserve_ids("memset", t.memsets) if t.memsets else None,
        )
        self.kernels += t.kernels
        p.last_op_end[r["thread"]] = replay.root_ns + t.last_end
        self.virtual_end_ns = max(self.virtual_end_ns, replay.root_ns + t.span)

    def _graph_node(
        self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: Any
    ) -> None:
        g = p.graph_runs.get(r["thread"])
        if g is None:
            return
        if int(r["a"]) != g.node:
            g.node, g.deps = int(r["a"]), []
        g.deps.extend(int(x) for x in (r["b"], r["c"], r["d"])[: r["kind"]])

    def _barrier_node(self, p: ProcessState, r: dict[str, Any]) -> BarrierNode | None:
        """The graph node a collective arrival is, if a node of the thread's graph launch made it
        (a group barrier kernel node): where it arrives on its lane."""
        if r["fn"] != FN_GRAPH_LAUNCH or r["kind"] == shim.COLL_INIT:
            return None
        g = p.graph_runs.get(r["thread"])
        s = self.model.stream(p.pid, int(r["c"]), r["thread"])
        if g is None or g.stream is not s or g.node in g.ends:
            return None
        start, lane_s = self._node_start(g, s)
        if lane_s is not s:
            start = max(start, lane_s.tail_ns)
        g.placed += 1
        g.barriers += 1
        graph_id = p.graph_of_thread.get(r["thread"])
        return BarrierNode(g, g.node, lane_s, start, graph_id, p.last_op_end, r["thread"])
