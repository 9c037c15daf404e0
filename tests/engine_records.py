"""Ring records as the shim writes them, for feeding the engine in process (tests and benches):
runs of launches, and CUDA-graph launches sent node by node or as one replay record."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from revati.recorder.writer import RunInfo, TraceWriter

from revati import shim
from revati.engine.device_model import DeviceModel
from revati.engine.durations import DurationModel
from revati.engine.ingest import Ingest, ProcessState
from revati.engine.trace_sink import TraceSink

GRAPH_LAUNCH = shim.FN_NAMES.index("cudaGraphLaunch")
# A copy node (copy kind 1 HtoD, 2 DtoH or 3 DtoD; bytes) or a memset node (bytes, byte value).
Copy = tuple[str, int, int]  # ("copy", kind, bytes)
Memset = tuple[str, int, int]  # ("memset", bytes, value)
Graph = Sequence[tuple[tuple[int, ...], int | Copy | Memset]]  # per node: (dependencies, what)


def record(record_type: int, **fields: int) -> np.ndarray:
    r = np.zeros(1, dtype=shim.RECORD_DTYPE)
    r["type"] = record_type
    for name, value in fields.items():
        r[name] = value
    return r


def launch_batch(n: int, first_enter_ns: int, every_ns: int = 2000) -> np.ndarray:
    """n launches of kernel 1 <<<16, 256>>> on the legacy stream by thread 0."""
    r = np.zeros(n, dtype=shim.RECORD_DTYPE)
    r["type"] = shim.REC_LAUNCH
    r["enter_ns"] = first_enter_ns + every_ns * np.arange(n)
    r["exit_ns"] = r["enter_ns"] + 50
    lv = shim.launch_view(r)
    lv["kernel"], lv["grid_x"], lv["block_x"] = 1, 16, 256
    return r


def graph_launch(at_ns: int, graph: Graph, *, replay: bool, exec_id: int = 7) -> np.ndarray:
    """One cudaGraphLaunch of `graph` on the legacy stream: the launch record, then (unless it
    replays) a node header and a launch record per node."""
    head = record(
        shim.REC_GRAPH_LAUNCH,
        kind=shim.REC_GRAPH_REPLAY if replay else 0,
        fn=GRAPH_LAUNCH,
        enter_ns=at_ns,
        exit_ns=at_ns + 40,
        a=exec_id,
        b=0,
        c=len(graph),
        d=0,
    )
    if replay:
        return head
    parts = [head]
    for i, (deps, grid) in enumerate(graph):
        node = record(
            shim.REC_GRAPH_NODE, kind=len(deps), fn=GRAPH_LAUNCH, enter_ns=at_ns + 40, a=i
        )
        for field, dep in zip("bcd", deps, strict=False):
            node[field] = dep
        parts += [node, _node_record(grid, at_ns + 40, i)]
    return np.concatenate(parts)


def _node_record(what: int | Copy | Memset, at_ns: int, i: int) -> np.ndarray:
    """The record of a graph node (a kernel <<<what, 256>>>, a copy or a memset) as a launch at
    `at_ns` sends it (node `i`: its addresses)."""
    if isinstance(what, int):
        launch = record(shim.REC_LAUNCH, fn=GRAPH_LAUNCH, enter_ns=at_ns, exit_ns=at_ns)
        lv = shim.launch_view(launch)
        lv["kernel"], lv["grid_x"], lv["block_x"], lv["graph_flag"] = 1, what, 256, 1
        return launch
    op, x, y = what
    flags = shim.F_ASYNC | shim.F_GRAPH
    dst, src = 0x7F0000000000 + (i << 24), 0x7E0000000000 + (i << 24)
    if op == "copy":
        return record(shim.REC_COPY, kind=flags | x, fn=GRAPH_LAUNCH, enter_ns=at_ns,
                      exit_ns=at_ns, a=dst, b=src, c=y, d=0)  # fmt: skip
    return record(shim.REC_MEMSET, kind=flags, fn=GRAPH_LAUNCH, enter_ns=at_ns, exit_ns=at_ns,
                  a=dst, b=x, c=y, d=0)  # fmt: skip


def engine(sink: TraceSink, names_dir: Path) -> tuple[Ingest, ProcessState]:
    """An engine and one process whose kernel 1 is `tiny(float*, int)`."""
    names = names_dir / "names.txt"
    names.write_text("K\t1\t_Z4tinyPfi\nT\t0\t1\tmain\n")
    ingest = Ingest(sink, DeviceModel(2500), DurationModel("h100-sxm", None), "h100")
    return ingest, ProcessState(1, (1, 0), shim.NamesFile(names))


# A fork/join graph: node -> (dependencies, grid); node 2 is a branch beside 1 and 3.
FORK_JOIN = [((), 64), ((0,), 4096), ((0,), 16384), ((1,), 4096), ((2, 3), 64)]


# A decode step's shape: kernels, a small HtoD of its inputs, a DtoD per layer, a memset, a
# branch with a large DtoD beside the layers, a DtoH of the outputs at the join.
DECODE_STEP = [
    ((), ("copy", 1, 256)),
    ((0,), 64),
    ((1,), ("memset", 4096, 0)),
    ((0,), ("copy", 3, 8 << 20)),
    ((2,), 4096),
    ((4,), ("copy", 3, 1024)),
    ((5,), 4096),
    ((6,), ("copy", 3, 1024)),
    ((3,), 16384),
    ((7, 8), ("copy", 2, 256)),
    ((9,), ("memset", 16 << 20, 1)),
]


def fork_join_trace(
    tmp_path: Path, name: str, launches: int, *, replay: bool, graph: Graph = FORK_JOIN
) -> Path:
    """`launches` launches of `graph`, each followed by 3 eager launches (they interleave in
    the event order); all sent node by node, or every launch after the first as a replay."""
    path = tmp_path / f"{name}.duckdb"
    writer = TraceWriter(path, RunInfo())
    sink = TraceSink(writer)
    ingest, state = engine(sink, tmp_path)
    batch = np.concatenate(
        [
            part
            for i in range(launches)
            for part in (
                graph_launch(i * 500_000, graph, replay=replay and i > 0),
                launch_batch(3, i * 500_000 + 100, every_ns=100),
            )
        ]
    )
    ingest.ingest(state, 0, batch)
    ingest.write_later()
    sink.close()
    writer.close()
    return path
