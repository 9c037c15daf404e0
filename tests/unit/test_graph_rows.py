"""Graph replays stored as one row each (schema version 3; with their copies and memsets since 4):
the views `kernels`, `copies`, `memsets` and `events` of a trace whose graph launches were
replayed hold exactly the rows of the same launches placed node by node, the engine fed the same
ring records in this process (no clock, no scheduler)."""

from __future__ import annotations

from pathlib import Path

import duckdb
from revati.recorder import schema
from revati.recorder.chrome_export import export_chrome
from revati.recorder.graph_rows import expand_graph_replays
from revati.recorder.reader import open_trace
from revati.replay.alignment import load_device_ops
from revati.replay.session import replay_trace

from tests.engine_records import DECODE_STEP, FORK_JOIN, fork_join_trace
from tests.replay_checks import differing_tables

# Kernels relative to their launch are the same, so every column of every row can be compared.
EVERY_KERNEL = "SELECT * FROM kernels ORDER BY kernel_id"
EVERY_EVENT = "SELECT seq, kind, ref_id, track_id, start_ns, end_ns, name FROM events ORDER BY seq"
EVERY_COPY = "SELECT * FROM copies ORDER BY copy_id"
EVERY_MEMSET = "SELECT * FROM memsets ORDER BY memset_id"


def _rows(path: Path, query: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(query).fetchall()


def test_replays_are_one_row_each_and_expand_to_the_node_by_node_kernels(tmp_path: Path) -> None:
    sent = fork_join_trace(tmp_path, "sent", 20, replay=False)
    replayed = fork_join_trace(tmp_path, "replayed", 20, replay=True)
    kernels = _rows(replayed, EVERY_KERNEL)
    assert len(kernels) == 20 * (len(FORK_JOIN) + 3)
    assert kernels == _rows(sent, EVERY_KERNEL)
    assert _rows(replayed, EVERY_EVENT) == _rows(sent, EVERY_EVENT)
    # stored: the first launch's kernels and the eager ones as rows, then one row per replay
    assert _rows(replayed, "SELECT count(*) FROM kernel_rows") == [(len(FORK_JOIN) + 20 * 3,)]
    assert _rows(replayed, "SELECT count(*) FROM graph_replays") == [(19,)]
    assert _rows(replayed, "SELECT count(*) FROM graph_kernels") == [(len(FORK_JOIN),)]
    assert _rows(sent, "SELECT count(*) FROM graph_replays") == [(0,)]
    # the branch ran on a stream of its own, named in graph_lanes
    assert _rows(replayed, "SELECT count(DISTINCT stream_id) FROM kernels") == [(2,)]
    assert _rows(replayed, "SELECT lane FROM graph_lanes") == [(1,)]
    with open_trace(replayed) as a, open_trace(sent) as b:
        assert a.counts()["kernels"] == b.counts()["kernels"] == len(kernels)
        assert a.kernel_stats() == b.kernel_stats()
        assert a.event_count() == b.event_count()
        seq = a.event_for("kernel", kernels[-1][0]).seq
        assert a.details(a.event(seq)) == b.details(b.event(seq))


def test_replays_of_copies_and_memsets_expand_to_the_node_by_node_rows(tmp_path: Path) -> None:
    sent = fork_join_trace(tmp_path, "sent", 12, replay=False, graph=DECODE_STEP)
    replayed = fork_join_trace(tmp_path, "replayed", 12, replay=True, graph=DECODE_STEP)
    copies, memsets = _rows(replayed, EVERY_COPY), _rows(replayed, EVERY_MEMSET)
    assert len(copies) == 12 * 5 and len(memsets) == 12 * 2
    for query in (EVERY_KERNEL, EVERY_COPY, EVERY_MEMSET, EVERY_EVENT):
        assert _rows(replayed, query) == _rows(sent, query), query
    # the first launch's nodes are rows, every later one a row of graph_replays
    assert _rows(replayed, "SELECT count(*) FROM graph_replays") == [(11,)]
    counts = "SELECT (SELECT count(*) FROM copy_rows), (SELECT count(*) FROM memset_rows)"
    assert _rows(replayed, counts) == [(5, 2)]
    assert _rows(sent, counts) == [(12 * 5, 12 * 2)]
    assert _rows(replayed, "SELECT count(*) FROM graph_copies") == [(5,)]
    assert _rows(replayed, "SELECT kind, count(*) FROM copies GROUP BY 1 ORDER BY 1") == [
        ("DtoD", 36),
        ("DtoH", 12),
        ("HtoD", 12),
    ]
    # the large copy ran on the branch's stream, beside the layers
    [(lanes,)] = _rows(replayed, "SELECT count(DISTINCT stream_id) FROM copies")
    assert lanes == 2
    with open_trace(replayed) as a, open_trace(sent) as b:
        stored = {t: n for t, n in a.counts().items() if t not in schema.GRAPH_TABLES}
        assert stored == {t: n for t, n in b.counts().items() if t not in schema.GRAPH_TABLES}
        assert a.event_count() == b.event_count()
        for kind, table in (("copy", EVERY_COPY), ("memset", EVERY_MEMSET)):
            last = _rows(replayed, table)[-1][0]
            seq = a.event_for(kind, last).seq
            assert a.details(a.event(seq)) == b.details(b.event(seq))
    assert _device_ops(replayed) == _device_ops(sent)
    exported = _exported(sent)
    assert _exported(replayed) == exported and exported.count('"cat":"copy"') == 12 * 5
    out = tmp_path / "again.duckdb"
    replay_trace(replayed, out)
    assert differing_tables(replayed, out) == {}
    assert _rows(out, EVERY_COPY) == copies and _rows(out, EVERY_MEMSET) == memsets


def test_expanding_replays_into_rows_keeps_every_kernel(tmp_path: Path) -> None:
    replayed = fork_join_trace(tmp_path, "replayed", 5, replay=True)
    before = _rows(replayed, EVERY_KERNEL)
    with duckdb.connect(str(replayed)) as con:
        assert expand_graph_replays(con) == 4 * len(FORK_JOIN)
        assert con.execute("SELECT count(*) FROM graph_replays").fetchall() == [(0,)]
    assert _rows(replayed, EVERY_KERNEL) == before


def _exported(path: Path) -> str:
    """The trace as Chrome trace JSON (what `revati export` writes)."""
    with open_trace(path) as r:
        export_chrome(r, path.with_suffix(".json"))
    return path.with_suffix(".json").read_text()


def _device_ops(path: Path) -> list[tuple]:
    with open_trace(path) as r:
        return [
            (o.stream_id, o.names, o.start_ns.tolist(), o.duration_ns.tolist())
            for o in load_device_ops(r)
        ]


def test_export_alignment_and_replay_see_the_same_kernels(tmp_path: Path) -> None:
    sent = fork_join_trace(tmp_path, "sent", 8, replay=False)
    replayed = fork_join_trace(tmp_path, "replayed", 8, replay=True)
    exported = _exported(sent)
    assert _exported(replayed) == exported and exported.count('"cat":"kernel"') == 8 * 8
    assert _device_ops(replayed) == _device_ops(sent)
    # a replay with the trace's own durations reproduces every kernel, stored as rows
    out = tmp_path / "again.duckdb"
    replay_trace(replayed, out)
    assert differing_tables(replayed, out) == {}
    assert _rows(out, "SELECT count(*) FROM graph_replays") == [(0,)]
    assert _rows(out, EVERY_KERNEL) == _rows(replayed, EVERY_KERNEL)


def test_a_version_2_trace_still_reads(tmp_path: Path, test_data: Path) -> None:
    """tests/data/revati-v2/forkgraph.duckdb: `engine_load forkgraph 6` recorded by the last
    revati that wrote schema version 2 (every kernel a row of the table `kernels`)."""
    v2 = test_data / "revati-v2" / "forkgraph.duckdb"
    with open_trace(v2) as r:
        assert r.schema_version == 2
        counts = r.counts()
        assert counts["kernels"] == 30 and counts["graph_replays"] == 0
        assert r.event_count() == 67
        assert sum(k.count for k in r.kernel_stats()) == 30
        kernel = r.event(r.next_event(-1, kinds=["kernel"]).seq)
        assert r.details(kernel)["graph_id"] is not None
        assert sum(len(o) for o in load_device_ops(r)) == 30
        assert export_chrome(r, tmp_path / "v2.json") > 30
    out = tmp_path / "v2-again.duckdb"
    replay_trace(v2, out)
    assert differing_tables(v2, out) == {}


def test_a_version_3_trace_still_reads(tmp_path: Path, test_data: Path) -> None:
    """tests/data/revati-v3/graphcopies.duckdb: `graph_copies 4` (tests/cuda/graph_copies.cu)
    recorded by the last revati that wrote schema version 3 (copies and memsets rows of plain
    tables, graph launches with copies sent node by node)."""
    v3 = test_data / "revati-v3" / "graphcopies.duckdb"
    with open_trace(v3) as r:
        assert r.schema_version == 3
        counts = r.counts()
        assert (counts["kernels"], counts["copies"], counts["memsets"]) == (12, 16, 8)
        assert counts["graph_copies"] == counts["graph_memsets"] == 0
        assert sum(len(o) for o in load_device_ops(r)) == 12 + 16 + 8
        copy = r.event(r.next_event(-1, kinds=["copy"]).seq)
        assert r.details(copy)["kind"] == "HtoD"
        assert export_chrome(r, tmp_path / "v3.json") > 36
    out = tmp_path / "v3-again.duckdb"
    replay_trace(v3, out)
    assert differing_tables(v3, out) == {}
