"""Group barrier kernels reached as nodes of a graph launch (docs/time-model.md, "Collectives").

A kernel that is a barrier of the processes sharing IPC buffers (vLLM's custom all-reduce,
`revati/native/ipc_barrier.c`) and was captured into a CUDA graph is a barrier at every launch
of that graph: at each barrier node the shim sends an all-reduce arrival (REC_COLLECTIVE with
`fn` cudaGraphLaunch) and the launching thread waits for the group, as an eager launch does.
The node arrives where its dependencies end on its lane; its end (the release plus the
collective model's all-reduce, `BarrierBook`) ends its lane and the launch stream, and is what
the nodes after it start from. They are placed after the wait, so none is placed before the
barrier's end is known.

A launch placed node by node (the first of a graph, or every launch of a graph whose barriers
do not cut it: some node runs beside one) places a barrier node in its `GraphRun`, which cuts
its template there. Where every barrier node is a cut (each node before it is its ancestor,
each node after it its descendant: a graph captured on one stream), the shim sends later
launches as one replay record plus the barriers' arrivals, and the engine replays the template
in segments (`SegmentedTemplate`): segment 0 from the launch's root, segment k + 1 from the end
of barrier k on this rank, each one `graph_replays` row; a launch costs O(barriers), whatever
the number of nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from revati.engine.device_model import DeviceModel, StreamTimeline
from revati.engine.graph_replay import Cut, GraphRun, GraphTemplate, template_of


@dataclass
class BarrierNode:
    """A group barrier node of a graph launch, from its arrival until its end lands."""

    stream: StreamTimeline  # the launch stream
    lane_stream: StreamTimeline
    arrival_ns: int
    graph_id: int | None  # the graph launch's id (kernels.graph_id)
    last_op_end: dict[int, int]  # its process's per-thread end of the last operation
    thread: int
    landed: Callable[[int], None]  # what follows the barrier's end (the rest of the launch)

    def land(self, model: DeviceModel, end_ns: int) -> None:
        """The barrier ends at end_ns on this member: its lane, the launch stream, then the nodes
        that follow it."""
        if self.lane_stream is not self.stream:
            self.lane_stream.tail_ns = max(self.lane_stream.tail_ns, end_ns)
        model.advance(self.stream, end_ns)
        self.last_op_end[self.thread] = max(self.last_op_end.get(self.thread, 0), end_ns)
        self.landed(end_ns)


@dataclass
class SegmentedTemplate:
    """A graph template cut at its group barrier nodes: `segments[k]` (times relative to the end
    of barrier k - 1 on the launching rank; segment 0's to the launch's root) and each barrier's
    lane and arrival relative to the root of the segment before it (`barriers[k]`)."""

    segments: list[GraphTemplate]
    barriers: list[Cut]


def segmented_template(g: GraphRun) -> SegmentedTemplate | None:
    """The segments of a launch placed node by node whose group barrier nodes cut it, once every
    node was placed."""
    if not g.cuts or not g.complete():
        return None
    segments = []
    rows_from, shapes_from = dict.fromkeys(g.rows, 0), 0
    for cut in [*g.cuts, None]:
        rows_to = cut.rows if cut else {table: len(r) for table, r in g.rows.items()}
        shapes_to = cut.shapes if cut else len(g.shapes)
        rows = {table: r[rows_from[table] : rows_to[table]] for table, r in g.rows.items()}
        last_end = cut.last_end if cut else g.last_end_ns - g.segment_root
        segments.append(template_of(rows, last_end, g.shapes[shapes_from:shapes_to]))
        rows_from, shapes_from = rows_to, shapes_to
    return SegmentedTemplate(segments, list(g.cuts))


@dataclass
class SegmentedReplay:
    """A launch of a segmented template on its way: the barrier its next arrival is, and the
    root of the segment placed last."""

    template: SegmentedTemplate
    stream: StreamTimeline
    graph_id: int
    launch_ns: int
    root_ns: int
    next_barrier: int = 0
