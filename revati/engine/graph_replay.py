"""CUDA-graph launches: placing a graph's nodes once, and replaying the result in O(1).

The first launch of an instantiated graph (and the first after `cudaGraphExecUpdate`) arrives as
one REC_GRAPH_LAUNCH followed by its nodes, in topological order, each with its dependencies;
the nodes are placed one by one (`GraphRun`). For a graph of kernels, copies and memsets only,
what that placement found is kept as a `GraphTemplate`: each node's lane (branch) and its start
and end relative to the graph's root, which hold for every later launch of that version, because
a launch starts no earlier than the end of everything before it on its stream, lanes included,
and a node's duration depends only on what the template keeps (kernel and geometry, copy kind
and bytes, memset bytes). The shim then sends later launches as one record
(`shim.REC_GRAPH_REPLAY`; it moves the bytes of backed copies and memsets itself) and the engine
places them with a few vectorised operations, whatever the number of nodes, and the trace stores
the template once (`graph_kernels`, `graph_copies`, `graph_memsets`) and each replay as one row
(`graph_replays`), expanded on read. Group barrier nodes cut a launch's template into segments
(`GraphRun.cut`, `graph_barriers.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from revati.engine.device_model import DeviceModel, StreamTimeline
from revati.engine.launch_shapes import LaunchShape, feature_columns
from revati.recorder import schema
from revati.recorder.writer import Coded

# A kernel's launch geometry columns (in the order of the ring's launch record).
GEOMETRY = ("grid_x", "grid_y", "grid_z", "block_x", "block_y", "block_z", "shared_mem")
KERNELS, COPIES, MEMSETS = "graph_kernels", "graph_copies", "graph_memsets"
# Per template table, the columns of a row (one per node of that kind), in this order; `model`,
# `name` and `kind` are codes into the engine's strings.
NODE_COLUMNS: dict[str, tuple[str, ...]] = {
    KERNELS: ("lane", "start", "end", "model", "name", *GEOMETRY),
    COPIES: ("lane", "start", "end", "model", "kind", "bytes", "src", "dst"),
    MEMSETS: ("lane", "start", "end", "model", "bytes", "value", "dst"),
}
_CODED = ("model", "name", "kind")
_ADDRESSES = ("src", "dst")
_WIDE = ("bytes", *_ADDRESSES)  # columns stored as they are (the others fit 32 bits)


@dataclass
class GraphRun:
    """A graph launch being placed node by node: node ends, and which branch (lane) each node ran
    on.

    Node i starts at max(root_ns, end of each node it depends on); root_ns is
    max(launch + latency, the launch stream's floor). A node continues the lane of a dependency
    that is still that lane's last node, else it opens a new lane (lane 0 is the launch stream,
    lane k >= 1 a stream of its own), so independent branches overlap and no stream overlaps
    itself. Kernel, copy and memset nodes are also collected in `rows` for the template."""

    stream: StreamTimeline
    root_ns: int
    exec_key: tuple[int, int] = (0, 0)
    count: int = 0
    node: int = -1
    deps: list[int] = field(default_factory=list)
    ends: dict[int, int] = field(default_factory=dict)
    lane_of: dict[int, int] = field(default_factory=dict)
    lane_last: dict[int, int] = field(default_factory=dict)
    rows: dict[str, list[tuple[int, ...]]] = field(
        default_factory=lambda: {table: [] for table in NODE_COLUMNS}
    )
    shapes: list[LaunchShape | None] = field(default_factory=list)  # kernel nodes' shapes
    placed: int = 0  # nodes in `rows`, and group barrier nodes
    last_end_ns: int = 0
    # group barrier nodes (graph_barriers.py) cut the template into segments: where each cut it,
    # and the root the current segment's times are relative to (the last barrier's end)
    cuts: list[Cut] = field(default_factory=list)
    segment_root: int = field(init=False)

    def __post_init__(self) -> None:
        self.segment_root = self.root_ns

    def takes_node(self) -> bool:
        """Whether the operation just placed was a node of this launch not yet in `rows`."""
        return self.placed < len(self.ends)

    def add_node(
        self, table: str, start_ns: int, end_ns: int, *values: int, shape: LaunchShape | None = None
    ) -> None:
        """A node placed at [start_ns, end_ns): a row of the template table `table` (values:
        its columns after lane, start and end), relative to its segment's root (the launch's
        root before any group barrier node)."""
        lane = self.lane_of.get(self.node, 0)
        root = self.segment_root
        self.rows[table].append((lane, start_ns - root, end_ns - root, *values))
        if table == KERNELS:
            self.shapes.append(shape)
        self.placed += 1
        self.last_end_ns = end_ns

    def complete(self) -> bool:
        """Whether every node was placed (a group barrier node once it ended)."""
        return self.placed == self.count and len(self.ends) == self.count

    def template(self) -> GraphTemplate | None:
        """The template, once every node was placed and every node is a kernel, copy or memset
        (and none a group barrier: `graph_barriers.segmented_template`)."""
        if self.cuts or not self.complete():
            return None
        return template_of(self.rows, self.last_end_ns - self.root_ns, self.shapes)

    def cut(self, lane: int, arrival_ns: int) -> None:
        """A group barrier node on `lane` arrives at arrival_ns: it closes the current segment."""
        root = self.segment_root
        rows = {table: len(r) for table, r in self.rows.items()}
        last_end = max(self.last_end_ns, root) - root
        self.cuts.append(Cut(rows, len(self.shapes), lane, arrival_ns - root, last_end))
        self.placed += 1

    def land(self, node: int, end_ns: int) -> None:
        """Group barrier node `node` ends at end_ns: the next segment's root."""
        self.ends[node] = self.segment_root = self.last_end_ns = end_ns


@dataclass(frozen=True)
class Cut:
    """A group barrier node of a placed graph launch: the template rows of each table and the
    kernel shapes before it, its lane, its arrival and the end of the segment it closes (the
    last node placed before it), both relative to that segment's root."""

    rows: dict[str, int]
    shapes: int
    lane: int
    arrival: int
    last_end: int


def template_of(
    rows: dict[str, list[tuple[int, ...]]], last_end: int, shapes: list[LaunchShape | None]
) -> GraphTemplate:
    """A template of node rows by table, its last node's end and its kernel nodes' shapes."""
    nodes = {table: _columns(table, r) for table, r in rows.items()}
    return GraphTemplate(nodes, last_end, feature_columns(shapes))


def _columns(table: str, rows: list[tuple[int, ...]]) -> dict[str, np.ndarray]:
    names = NODE_COLUMNS[table]
    values = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    return {
        name: np.array(v, dtype=np.uint64 if name in _ADDRESSES else np.int64)
        for name, v in zip(names, values, strict=True)
    }


@dataclass
class GraphTemplate:
    """A placed graph of kernels, copies and memsets: per node its lane and [start, end) relative
    to the root, by template table (`NODE_COLUMNS`)."""

    nodes: dict[str, dict[str, np.ndarray]]
    last_end: int  # the last node's end relative to the root (what a copy sync waits for)
    features: dict[str, np.ndarray] = field(default_factory=dict)  # kernel_features columns
    template_id: int = -1  # graph_kernels.template_id once its rows are in the trace
    lanes: list[int] = field(init=False)  # plain lists: a replay reads them, a few per replay
    lane_ends: list[int] = field(init=False)
    span: int = field(init=False)
    kernels: int = field(init=False)
    copies: int = field(init=False)
    memsets: int = field(init=False)

    def __post_init__(self) -> None:
        lane = np.concatenate([c["lane"] for c in self.nodes.values()])
        end = np.concatenate([c["end"] for c in self.nodes.values()])
        self.lanes = np.unique(lane).tolist()
        self.lane_ends = [int(end[lane == k].max()) for k in self.lanes]
        self.span = int(end.max()) if len(end) else 0
        self.kernels, self.copies, self.memsets = (len(self.nodes[t]["lane"]) for t in NODE_COLUMNS)

    def rows(self, strings: list[str]) -> list[tuple[str, dict[str, object]]]:
        """The template's rows, as (template table, columns) for the trace (`strings`: what the
        codes of `model`, `name` and `kind` stand for); its id must be set."""
        out = []
        for table, c in self.nodes.items():
            n = len(c["lane"])
            if not n:
                continue
            columns: dict[str, object] = {
                "template_id": np.full(n, self.template_id, dtype=np.int64),
                "node": np.arange(n, dtype=np.int32),
                "lane": c["lane"].astype(np.int32),
                "start_ns": c["start"],
                "end_ns": c["end"],
                "duration_source": Coded(np.zeros(n, np.int32), _PREDICTED),
            }
            for name in NODE_COLUMNS[table][3:]:
                columns[name] = _trace_column(name, c[name], strings)
            if table == KERNELS:
                columns.update(self.features)
            out.append((table, columns))
        return out


def _trace_column(name: str, value: np.ndarray, strings: list[str]) -> object:
    """A template column as the trace stores it."""
    if name in _CODED:
        return Coded(value.astype(np.int32), strings)
    if name in _WIDE:
        return value
    return value.astype(np.int32)  # launch geometry, a memset's byte value


_PREDICTED = [schema.DURATION_PREDICTED]


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
