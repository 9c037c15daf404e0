"""CUDA-graph launches: placing a graph's nodes once, and replaying the result in O(1).

The first launch of an instantiated graph (and the first after `cudaGraphExecUpdate`) arrives as
one REC_GRAPH_LAUNCH followed by its nodes, in topological order, each with its dependencies;
the nodes are placed one by one (`GraphRun`). For a graph of kernels only, what that placement
found is kept as a `GraphTemplate`: each node's lane (branch) and its start and end relative to
the graph's root, which hold for every later launch of that version, because a launch starts no
earlier than the end of everything before it on its stream, lanes included. The shim then sends
later launches as one record (`shim.REC_GRAPH_REPLAY`) and the engine places them with a few
vectorised operations, whatever the number of nodes, and the trace stores the template once
(`graph_kernels`) and each replay as one row (`graph_replays`), expanded on read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from revati.engine.device_model import DeviceModel, StreamTimeline
from revati.engine.gemm_shapes import GemmShape, feature_columns

# A kernel's launch geometry columns (in the order of the ring's launch record).
GEOMETRY = ("grid_x", "grid_y", "grid_z", "block_x", "block_y", "block_z", "shared_mem")
# Columns of a template row (one per kernel node), in this order.
TEMPLATE_INT_COLUMNS = ("lane", "start", "end", "name", "model", *GEOMETRY)


@dataclass
class GraphRun:
    """A graph launch being placed node by node: node ends, and which branch (lane) each node ran
    on.

    Node i starts at max(root_ns, end of each node it depends on); root_ns is
    max(launch + latency, the launch stream's floor). A node continues the lane of a dependency
    that is still that lane's last node, else it opens a new lane (lane 0 is the launch stream,
    lane k >= 1 a stream of its own), so independent branches overlap and no stream overlaps
    itself. Kernel nodes are also collected in `rows` for the template."""

    stream: StreamTimeline
    root_ns: int
    exec_key: tuple[int, int] = (0, 0)
    count: int = 0
    node: int = -1
    deps: list[int] = field(default_factory=list)
    ends: dict[int, int] = field(default_factory=dict)
    lane_of: dict[int, int] = field(default_factory=dict)
    lane_last: dict[int, int] = field(default_factory=dict)
    rows: list[tuple[int, ...]] = field(default_factory=list)
    shapes: list[GemmShape | None] = field(default_factory=list)  # library GEMM nodes' shapes
    last_end_ns: int = 0

    def add_kernel(
        self,
        start_ns: int,
        end_ns: int,
        name: int,
        model: int,
        geometry: tuple,
        shape: GemmShape | None = None,
    ) -> None:
        """A kernel node placed at [start_ns, end_ns): a row of the template, relative to root."""
        lane = self.lane_of.get(self.node, 0)
        self.rows.append(
            (lane, start_ns - self.root_ns, end_ns - self.root_ns, name, model, *geometry)
        )
        self.shapes.append(shape)
        self.last_end_ns = end_ns

    def template(self) -> GraphTemplate | None:
        """The template, once every node was placed and every node is a kernel."""
        if len(self.rows) != self.count or len(self.ends) != self.count:
            return None
        cols = np.array(self.rows, dtype=np.int64).reshape(-1, len(TEMPLATE_INT_COLUMNS))
        return GraphTemplate(
            {name: cols[:, i].copy() for i, name in enumerate(TEMPLATE_INT_COLUMNS)},
            self.last_end_ns - self.root_ns,
            feature_columns(self.shapes),
        )


@dataclass
class GraphTemplate:
    """A placed kernel-only graph: per node its lane and [start, end) relative to the root."""

    columns: dict[str, np.ndarray]
    last_end: int  # the last node's end relative to the root (what a copy sync waits for)
    features: dict[str, np.ndarray] = field(default_factory=dict)  # kernel_features columns
    template_id: int = -1  # graph_kernels.template_id once its rows are in the trace
    lanes: list[int] = field(init=False)  # plain lists: a replay reads them, a few per replay
    lane_ends: list[int] = field(init=False)
    span: int = field(init=False)

    def __post_init__(self) -> None:
        lane, end = self.columns["lane"], self.columns["end"]
        self.lanes = np.unique(lane).tolist()
        self.lane_ends = [int(end[lane == k].max()) for k in self.lanes]
        self.span = int(end.max()) if len(end) else 0

    def __len__(self) -> int:
        return len(self.columns["lane"])


@dataclass(frozen=True)
class Replay:
    """Where one replay of a template landed: its root, and the stream of each lane (lane 0 is
    the launch stream)."""

    root_ns: int
    lane_streams: dict[int, int]


def place_replay(model: DeviceModel, s: StreamTimeline, t: GraphTemplate, root_ns: int) -> Replay:
    """Advance the launch stream and the lane streams as the node-by-node placement would."""
    lane_streams = [s if k == 0 else model.graph_lane(s, k) for k in t.lanes]
    # Lanes end before the launch stream's floor (each node's end advanced it), so the root is
    # never earlier than a lane's tail; the max keeps that true whatever happened meanwhile.
    root = max([root_ns, *(ls.tail_ns for ls in lane_streams if ls is not s)])
    for ls, end in zip(lane_streams, t.lane_ends, strict=True):
        if ls is not s:
            ls.tail_ns = max(ls.tail_ns, root + end)
    if t.lanes:
        model.advance(s, root + t.span)
    lanes = {k: ls.stream_id for k, ls in zip(t.lanes, lane_streams, strict=True)}
    return Replay(root, lanes)
