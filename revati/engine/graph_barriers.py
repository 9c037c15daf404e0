"""Group barrier kernels reached as nodes of a graph launch (docs/time-model.md, "Collectives").

A kernel that is a barrier of the processes sharing IPC buffers (vLLM's custom all-reduce,
`revati/native/ipc_barrier.c`) and was captured into a CUDA graph is a barrier at every launch
of that graph: the shim sends such a graph node by node at each launch and, at the barrier node,
an all-reduce arrival (REC_COLLECTIVE with `fn` cudaGraphLaunch), then waits for the group as an
eager launch does. The node arrives where its dependencies end on its lane, as any node starts;
its end, known once every member arrived (`BarrierBook`), ends its lane and the launch stream
and is what the nodes after it depend on. They come after the wait, so none is placed before
the barrier's end is known.
"""

from __future__ import annotations

from dataclasses import dataclass

from revati.engine.device_model import DeviceModel, StreamTimeline
from revati.engine.graph_replay import GraphRun


@dataclass
class BarrierNode:
    """A group barrier node of a graph launch, from its arrival until its end lands."""

    run: GraphRun
    node: int
    lane_stream: StreamTimeline
    arrival_ns: int
    graph_id: int | None  # the graph launch's id (kernels.graph_id)
    last_op_end: dict[int, int]  # its process's per-thread end of the last operation
    thread: int

    def land(self, model: DeviceModel, end_ns: int) -> None:
        """The barrier ends at end_ns on this member: its lane, the launch stream and the nodes
        that depend on it."""
        s = self.run.stream
        if self.lane_stream is not s:
            self.lane_stream.tail_ns = max(self.lane_stream.tail_ns, end_ns)
        model.advance(s, end_ns)
        self.run.ends[self.node] = end_ns
        self.last_op_end[self.thread] = max(self.last_op_end.get(self.thread, 0), end_ns)
