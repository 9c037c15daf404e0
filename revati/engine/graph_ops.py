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
from revati.engine.graph_barriers import BarrierNode, SegmentedReplay, SegmentedTemplate
from revati.engine.graph_replay import GraphRun, GraphTemplate, place_replay
from revati.engine.process_state import ProcessState

FN_GRAPH_LAUNCH = shim.FN_NAMES.index("cudaGraphLaunch")


class GraphOps(DeviceOps):
    """The record handlers of graph launches and their node headers."""

    def _graph_launch(
        self, p: ProcessState, index: int, r: dict[str, Any], lv: Any, dur: Any
    ) -> None:
        thread = r["thread"]
        self.api_call(p, r, args=f"graph_exec={r['a']} nodes={r['c']}")
        graph_id = p.graph_of_thread[thread] = self.sink.new_id("graph_launch")
        s = self.model.stream(p.pid, int(r["b"]), thread)
        root = max(int(r["exit_ns"]) + self.model.launch_latency_ns, self.model.stream_floor_ns(s))
        key = (int(r["a"]), int(r["d"]))
        # a segmented launch whose barriers never all came (a member died): the rest is dropped
        p.segment_replays.pop(thread, None)
        if r["kind"] & shim.REC_GRAPH_REPLAY:
            p.graph_runs.pop(thread, None)
            self._replay(p, s, root, key, graph_id, int(r["exit_ns"]), thread)
            return
        g = p.graph_runs[thread] = GraphRun(s, root, key, int(r["c"]))
        self._keep_template(p, g)  # a graph without nodes is complete at once

    def _replay(
        self,
        p: ProcessState,
        s: StreamTimeline,
        root_ns: int,
        key: tuple[int, int],
        graph_id: int,
        launch_ns: int,
        thread: int,
    ) -> None:
        """A launch of a graph placed before, from its template (in segments, the first now, if
        group barrier nodes cut it)."""
        t = p.graph_templates.get(key)
        if t is None:  # its nodes never arrived (the shim lost the coordinator meanwhile)
            return
        if isinstance(t, SegmentedTemplate):
            root = self._replay_segment(p, s, t.segments[0], root_ns, graph_id, launch_ns, thread)
            p.segment_replays[thread] = SegmentedReplay(t, s, graph_id, launch_ns, root)
            return
        self._replay_segment(p, s, t, root_ns, graph_id, launch_ns, thread)

    def _replay_segment(
        self,
        p: ProcessState,
        s: StreamTimeline,
        t: GraphTemplate,
        root_ns: int,
        graph_id: int,
        launch_ns: int,
        thread: int,
    ) -> int:
        """A template placed in a few vectorised steps, and one `graph_replays` row that stands
        for its kernels, copies and memsets (none for a template without nodes). Returns the
        root it was placed at."""
        replay = place_replay(self.model, s, t, root_ns)
        p.last_op_end[thread] = replay.root_ns + t.last_end
        if not t.kernels + t.copies + t.memsets:
            return replay.root_ns
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
            launch_ns=launch_ns,
            root_ns=replay.root_ns,
            first_copy_id=self.sink.reserve_ids("copy", t.copies) if t.copies else None,
            first_memset_id=self.sink.reserve_ids("memset", t.memsets) if t.memsets else None,
        )
        self.kernels += t.kernels
        self.virtual_end_ns = max(self.virtual_end_ns, replay.root_ns + t.span)
        return replay.root_ns

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
        (a group barrier kernel node): where it arrives, and what follows its end."""
        if r["fn"] != FN_GRAPH_LAUNCH or r["kind"] == shim.COLL_INIT:
            return None
        thread = r["thread"]
        replay = p.segment_replays.get(thread)
        if replay is not None:
            return self._replayed_barrier(p, replay, thread)
        g = p.graph_runs.get(thread)
        s = self.model.stream(p.pid, int(r["c"]), thread)
        if g is None or g.stream is not s or g.node in g.ends:
            return None
        start, lane_s = self._node_start(g, s)
        if lane_s is not s:
            start = max(start, lane_s.tail_ns)
        g.cut(g.lane_of[g.node], start)
        node = g.node

        def landed(end_ns: int) -> None:
            g.land(node, end_ns)
            self._keep_template(p, g)  # complete once its last barrier ended

        graph_id = p.graph_of_thread.get(thread)
        return BarrierNode(s, lane_s, start, graph_id, p.last_op_end, thread, landed)

    def _replayed_barrier(
        self, p: ProcessState, replay: SegmentedReplay, thread: int
    ) -> BarrierNode:
        """Barrier `replay.next_barrier` of a segmented launch: it arrives where its segment's
        nodes end, and its end is the next segment's root."""
        t, k = replay.template, replay.next_barrier
        replay.next_barrier += 1
        if replay.next_barrier == len(t.barriers):
            del p.segment_replays[thread]
        cut, s = t.barriers[k], replay.stream
        lane_s = s if cut.lane == 0 else self.model.graph_lane(s, cut.lane)

        def landed(end_ns: int) -> None:
            replay.root_ns = self._replay_segment(
                p, s, t.segments[k + 1], end_ns, replay.graph_id, replay.launch_ns, thread
            )

        arrival = replay.root_ns + cut.arrival
        return BarrierNode(s, lane_s, arrival, replay.graph_id, p.last_op_end, thread, landed)
