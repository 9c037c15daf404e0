"""Writer fast paths and durability, the timeline overview, stale derived tables, barriers."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import numpy as np
import pytest
from revati.recorder.overview import load_overview
from revati.recorder.reader import open_trace
from revati.recorder.writer import Coded, RunInfo, StringCodes, TraceWriter

from revati.errors import RevatiTraceError
from tests.unit.test_reader_api import write_small_trace


def _kernels(n: int, names: list[str], coded: bool) -> dict[str, object]:
    codes = np.arange(n) % len(names)
    return {
        "kernel_id": np.arange(n),
        "stream_id": np.full(n, 10),
        "start_ns": np.arange(n) * 100,
        "end_ns": np.arange(n) * 100 + 50,
        "name": Coded(codes, names) if coded else np.array(names, dtype=object)[codes],
    }


def test_coded_strings_land_as_varchar(tmp_path: Path) -> None:
    names = ["gemm_a", "flash_fwd", "nccl'quote"]
    with TraceWriter(tmp_path / "c.duckdb", RunInfo()) as w:
        w.append("kernels", _kernels(7, names, coded=True))  # type: ignore[arg-type]
        w.append("kernels", {"kernel_id": [7], "name": Coded(np.array([0]), [None])})
    with open_trace(tmp_path / "c.duckdb") as r:
        rows = r.sql("SELECT name, typeof(name) FROM kernels ORDER BY kernel_id")
    assert [n for n, _ in rows] == [names[i % 3] for i in range(7)] + [None]
    assert {t for _, t in rows} == {"VARCHAR"}


def test_string_codes_stay_valid_as_the_table_grows(tmp_path: Path) -> None:
    strings = StringCodes()
    first = strings.coded(np.array(["gemm", "copy", "gemm"], dtype=object))
    second = strings.coded(np.array(["flash", "gemm"], dtype=object))  # grows the table
    assert first.values is second.values and strings.values == ["copy", "gemm", "flash"]
    with TraceWriter(tmp_path / "s.duckdb", RunInfo()) as w:
        w.append("kernels", {"kernel_id": np.arange(3), "name": first})
        w.append("kernels", {"kernel_id": np.arange(3, 5), "name": second})
    with open_trace(tmp_path / "s.duckdb") as r:
        names = [n for (n,) in r.sql("SELECT name FROM kernels ORDER BY kernel_id")]
    assert names == ["gemm", "copy", "gemm", "flash", "gemm"]


def test_kernel_features_go_to_their_own_table_for_the_rows_that_have_any(
    tmp_path: Path,
) -> None:
    with TraceWriter(tmp_path / "k.duckdb", RunInfo()) as w:
        w.append(
            "kernels",
            {
                **_kernels(4, ["gemm", "add"], coded=False),
                "gemm_m": [4096, None, 128, None],
                "dtype": Coded(np.array([0, 1, 0, 1]), ["bf16", None]),
                "features": [None, None, None, '{"heads": 8}'],
            },
        )
        w.append("kernels", _kernels(2, ["k"], coded=False))  # no features at all
    with open_trace(tmp_path / "k.duckdb") as r:
        assert r.sql("SELECT count(*) FROM kernels") == [(6,)]
        rows = r.sql(
            "SELECT kernel_id, gemm_m, dtype, features->>'$.heads' FROM kernel_features "
            "ORDER BY kernel_id"
        )
        assert rows == [(0, 4096, "bf16", None), (2, 128, "bf16", None), (3, None, None, "8")]
        kernels = {
            e.ref_id: e for e in (r.event(i) for i in range(r.event_count())) if e.kind == "kernel"
        }
        detail = r.details(kernels[2])
        assert detail["gemm_m"] == 128 and detail["dtype"] == "bf16" and detail["name"] == "gemm"
        plain = r.details(kernels[1])
        assert plain["gemm_m"] is None and plain["name"] == "add"


def test_kernel_features_without_kernel_id_are_refused(tmp_path: Path) -> None:
    with TraceWriter(tmp_path / "n.duckdb", RunInfo()) as w:
        with pytest.raises(ValueError, match="kernel_id"):
            w.append("kernels", {"name": ["gemm"], "gemm_m": [64]})
        with pytest.raises(ValueError, match="unknown columns"):
            w.append("copies", {"copy_id": [0], "gemm_m": [64]})


def test_time_based_flush_commits_before_flush_rows(tmp_path: Path) -> None:
    w = TraceWriter(tmp_path / "f.duckdb", RunInfo(), flush_rows=10**9, flush_interval_s=0.5)
    w.flush()  # starts the interval now, however long the set-up took on a loaded machine
    w.append("kernels", _kernels(10, ["k"], coded=False))  # type: ignore[arg-type]
    assert w._con.execute("SELECT count(*) FROM kernels").fetchone() == (0,)
    time.sleep(0.6)
    w.append("kernels", _kernels(5, ["k"], coded=False))  # type: ignore[arg-type]
    assert w._con.execute("SELECT count(*) FROM kernels").fetchone() == (15,)
    w.close()


def test_no_time_based_flush_when_disabled(tmp_path: Path) -> None:
    w = TraceWriter(tmp_path / "f.duckdb", RunInfo(), flush_rows=10**9, flush_interval_s=None)
    w.append("kernels", _kernels(10, ["k"], coded=False))  # type: ignore[arg-type]
    time.sleep(0.01)
    w.append("kernels", _kernels(5, ["k"], coded=False))  # type: ignore[arg-type]
    assert w._con.execute("SELECT count(*) FROM kernels").fetchone() == (0,)
    w.close()


def test_overview_marks_every_track_that_has_events(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    write_small_trace(path)
    with open_trace(path) as r:
        ov = r.overview()
        assert ov is not None
        t_min, t_max = r.time_range()
        assert (ov.t_min, ov.t_max) == (t_min, t_max)
        expected = {
            (t, layer)
            for t, layer in r.sql(
                "SELECT DISTINCT track_id, CASE kind WHEN 'api_call' THEN 'call' WHEN 'kernel' "
                "THEN 'device' WHEN 'copy' THEN 'device' WHEN 'memset' THEN 'device' ELSE kind "
                "END FROM event_groups WHERE track_id IS NOT NULL"
            )
        }
        assert set(ov.layers) == expected
        for (track, _layer), groups in ov.layers.items():
            used = set(groups[groups >= 0].tolist())
            kinds = {ov.group_kind[g] for g in used}
            assert used and all(r.index.group_track[g] == track for g in used), kinds
        # Every event's start bucket is marked on its own track and layer.
        ix = r.index
        for seq in range(ix.count):
            g = int(ix.grp[seq])
            track = ix.group_track[g]
            if track is None:
                continue
            layer = {"api_call": "call", "kernel": "device", "copy": "device"}.get(
                ix.group_kind[g], ix.group_kind[g]
            )
            b = int(ov.bucket_of(np.array([ix.start_ns[seq]]))[0])
            assert ov.layers[(track, layer)][b] >= 0


def test_trace_without_overview_opens_and_has_none(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    write_small_trace(path, build_event_order=False)
    with open_trace(path) as r:
        assert r.overview() is None
        assert load_overview(r.con) is None
        assert r.event_count() > 0


def test_stale_derived_tables_are_rebuilt_in_temp(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    write_small_trace(path)
    with open_trace(path) as r:
        good = [r.event(i) for i in range(r.event_count())]
    con = duckdb.connect(str(path))  # an "older build": event_order lacks a column
    con.execute("CREATE OR REPLACE TABLE event_order AS SELECT grp, ref_id FROM event_order")
    con.close()
    with open_trace(path) as r:
        assert [r.event(i) for i in range(r.event_count())] == good
    con = duckdb.connect(str(path))  # an "older build" whose row count disagrees with meta
    con.execute("DELETE FROM event_order WHERE rowid = 0")
    con.close()
    with open_trace(path) as r:
        assert [r.event(i) for i in range(r.event_count())] == good


def test_unindexable_trace_says_recreate(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    write_small_trace(path, build_event_order=False)
    con = duckdb.connect(str(path))
    con.execute("ALTER TABLE kernel_rows DROP COLUMN end_ns")  # kernels: a view over it
    con.close()
    with open_trace(path) as r, pytest.raises(RevatiTraceError, match="re-create the trace"):
        r.event_count()


def test_barriers_match_their_arrivals(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    write_small_trace(path)
    with open_trace(path) as r:
        bars = r.barriers()
        assert bars
        for b in bars:
            assert b == r.barrier(b.barrier_id)
            rows = r.sql(
                "SELECT rank, arrival_ns FROM barrier_arrivals WHERE barrier_id = ? "
                "ORDER BY arrival_ns, rank",
                [b.barrier_id],
            )
            assert [(a.rank, a.arrival_ns) for a in b.arrivals] == rows
            assert all(a.wait_ns == b.release_ns - a.arrival_ns for a in b.arrivals)
            assert b.total_wait_ns == sum(a.wait_ns for a in b.arrivals)
            assert b.straggler_rank == (b.arrivals[-1].rank if b.arrivals else None)
