"""Group barrier kernels in CUDA graphs, in the engine: two ranks launch a graph whose middle
node is an all-reduce over IPC buffers; replayed in segments between the barriers, the launches
give exactly the kernels and barriers of the same launches sent node by node (the engine fed
the same ring records in this process: no clock, no scheduler)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from revati.recorder.writer import RunInfo, TraceWriter

from revati import shim
from revati.engine.ingest import Ingest, ProcessState
from revati.engine.trace_sink import TraceSink
from tests.engine_records import GRAPH_LAUNCH, engine, graph_launch, record
from tests.integration.record_helpers import q

GROUP = (1 << 63) | 0xABC  # a group named by a shared buffer
BYTES = 32768
GRAPH = [((), 64), ((0,), 1), ((1,), 4096)]  # node 1: the all-reduce (its grid is unused)
LAUNCHES = 4
LAUNCH_EVERY_NS = 1_000_000
SKEW_NS = 300_000  # rank 1 launches this much later than rank 0


def arrival(rank: int, kind: int, at_ns: int) -> np.ndarray:
    """A group barrier node's all-reduce arrival (or a process's first, init, arrival)."""
    members = rank | 2 << 16 | 0xFFFF << 32
    return record(shim.REC_COLLECTIVE, kind=kind, fn=GRAPH_LAUNCH, enter_ns=at_ns,
                  exit_ns=at_ns, a=GROUP, b=BYTES if kind != shim.COLL_INIT else rank,
                  c=0, d=members)  # fmt: skip


def wait(at_ns: int) -> np.ndarray:
    return record(shim.REC_SYNC, kind=shim.SYNC_BARRIER, fn=GRAPH_LAUNCH, enter_ns=at_ns,
                  exit_ns=at_ns, d=shim.MSG_WAIT)  # fmt: skip


def launch_parts(rank: int, i: int, replay: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rank `rank`'s launch `i`: the records up to its wait at the barrier, and those after."""
    at = i * LAUNCH_EVERY_NS + rank * SKEW_NS
    head = graph_launch(at, GRAPH, replay=replay)
    arrive = [arrival(rank, shim.COLL_INIT, at + 50)] if i == 0 else []
    arrive += [arrival(rank, 2, at + 60), wait(at + 60)]
    if replay:
        return np.concatenate([head, *arrive]), head[:0]
    # the launch, node 0's header and launch, node 1's header (its launch record is the arrival
    # instead), node 2's header and launch
    return np.concatenate([head[:4], *arrive]), head[5:]


def barrier_trace(tmp_path: Path, name: str, *, replay: bool) -> Path:
    """LAUNCHES launches of GRAPH by two ranks, all sent node by node, or every launch after the
    first as a replay; the two ranks' records arrive in the order the waits impose."""
    path = tmp_path / f"{name}.duckdb"
    writer = TraceWriter(path, RunInfo())
    sink = TraceSink(writer)
    ingest, rank0 = engine(sink, tmp_path)
    rank1 = ProcessState(2, (2, 0), rank0.names)
    index = {1: 0, 2: 0}

    def feed(p: ProcessState, batch: np.ndarray, ingest: Ingest = ingest) -> None:
        ingest.ingest(p, index[p.pid], batch)
        index[p.pid] += len(batch)

    for i in range(LAUNCHES):
        (a0, b0), (a1, b1) = (launch_parts(r, i, replay and i > 0) for r in (0, 1))
        for p, batch in ((rank0, a0), (rank1, a1), (rank0, b0), (rank1, b1)):
            feed(p, batch)
    ingest.write_later()
    sink.close()
    writer.close()
    return path


KERNELS = """SELECT k.stream_id, k.start_ns, k.end_ns, k.name, k.graph_id, k.grid_x, k.model
             FROM kernels k ORDER BY k.stream_id, k.start_ns"""
BARRIERS = """SELECT b.release_ns, b.end_ns, b.straggler_rank, a.rank, a.arrival_ns, a.wait_ns
              FROM barriers b JOIN barrier_arrivals a USING (barrier_id)
              ORDER BY b.barrier_id, a.rank"""


def test_segmented_replays_give_the_node_by_node_kernels_and_barriers(tmp_path: Path) -> None:
    sent = barrier_trace(tmp_path, "sent", replay=False)
    replayed = barrier_trace(tmp_path, "replayed", replay=True)
    kernels = q(replayed, KERNELS)
    assert len(kernels) == 2 * LAUNCHES * len(GRAPH)
    assert kernels == q(sent, KERNELS)
    assert q(replayed, BARRIERS) == q(sent, BARRIERS)
    # replayed: two rows per launch after the first (the kernel before the barrier, the one
    # after), of two templates
    assert q(replayed, "SELECT count(*), count(DISTINCT template_id) FROM graph_replays") == [
        (2 * 2 * (LAUNCHES - 1), 4)
    ]
    assert q(sent, "SELECT count(*) FROM graph_replays") == [(0,)]


def test_rank_1_is_the_straggler_and_both_end_together(tmp_path: Path) -> None:
    trace = barrier_trace(tmp_path, "replayed", replay=True)
    rows = q(trace, BARRIERS)[2:]  # after the init rendezvous
    assert len(rows) == 2 * LAUNCHES
    for (release, end, straggler, rank0, arrival0, wait0), (*_, rank1, arrival1, wait1) in zip(
        rows[::2], rows[1::2], strict=True
    ):
        assert (rank0, rank1, straggler) == (0, 1, 1) and release == arrival1 < end
        assert wait1 == 0 and wait0 == arrival1 - arrival0 > SKEW_NS // 2
    # each rank's kernel after the barrier starts at the barrier's end
    after = q(
        trace,
        """SELECT k.start_ns = b.end_ns FROM kernels k JOIN kernels bk ON bk.graph_id = k.graph_id
           JOIN barrier_arrivals a ON a.kernel_id = bk.kernel_id JOIN barriers b USING (barrier_id)
           WHERE k.grid_x = 4096""",
    )
    assert after == [(True,)] * 2 * LAUNCHES
