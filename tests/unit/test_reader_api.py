"""The Reader API on a small hand-written trace whose every answer is known."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest
from revati.recorder.reader import open_trace
from revati.recorder.writer import RunInfo, TraceWriter

from revati.errors import RevatiUsageError


def write_small_trace(path: Path, *, build_event_order: bool = True) -> None:
    """Two ranks; rank 1 straggles into one allreduce. Times chosen to exercise tie-breaks."""
    w = TraceWriter(path, RunInfo(argv=["python", "serve.py"]), build_event_order=build_event_order)
    w.append_rows(
        "processes",
        [
            {"pid": 100, "rank": 0, "local_rank": 0, "world_size": 2, "argv": ["python", "w0"]},
            {"pid": 101, "rank": 1, "local_rank": 1, "world_size": 2, "argv": ["python", "w1"]},
        ],
    )
    w.append_rows(
        "threads",
        [
            {"thread_id": 1, "pid": 100, "tid": 100, "name": "python"},
            {"thread_id": 2, "pid": 101, "tid": 101, "name": "python"},
        ],
    )
    w.append_rows(
        "streams",
        [
            {"stream_id": 10, "pid": 100, "handle": 0, "is_default": True},
            {"stream_id": 11, "pid": 101, "handle": 0, "is_default": True},
        ],
    )
    w.append(
        "api_calls",
        {
            "call_id": np.array([0, 1, 2, 3]),
            "thread_id": np.array([1, 1, 2, 2]),
            "seq": np.array([0, 1, 0, 1]),
            "name": [
                "cudaLaunchKernel",
                "cudaStreamSynchronize",
                "cudaLaunchKernel",
                "ncclAllReduce",
            ],
            "enter_ns": np.array([100, 200, 100, 900]),
            "exit_ns": np.array([110, 1500, 110, 910]),
            "result": np.zeros(4, dtype=np.int32),
        },
    )
    w.append(
        "kernels",
        {
            "kernel_id": np.array([0, 1, 2, 3]),
            "call_id": np.array([0, 2, 3, 1]),
            "stream_id": np.array([10, 11, 11, 10]),
            "launch_ns": np.array([100, 100, 900, 200]),
            "start_ns": np.array([110, 110, 910, 300]),
            "end_ns": np.array([300, 500, 1400, 1400]),
            "name": [
                "sm90_xmma_gemm_bf16",
                "sm90_xmma_gemm_bf16",
                "ncclDevKernel_AllReduce",
                "ncclDevKernel_AllReduce",
            ],
            "duration_source": ["predicted"] * 4,
            "model": ["gemm", "gemm", "nccl", "nccl"],
        },
    )
    w.append_rows(
        "syncs",
        [
            {
                "sync_id": 0,
                "call_id": 1,
                "thread_id": 1,
                "kind": "stream",
                "target": "stream 10",
                "blocked_ns": 200,
                "deadline_ns": 1400,
                "resumed_ns": 1500,
            }
        ],
    )
    w.append_rows(
        "jumps",
        [{"jump_id": 0, "generation": 1, "from_ns": 910, "to_ns": 1400, "cause_kind": "stream"}],
    )
    w.append_rows(
        "barriers",
        [
            {
                "barrier_id": 0,
                "collective": "allreduce",
                "bytes": 4096,
                "world_size": 2,
                "release_ns": 900,
                "end_ns": 1400,
            }
        ],
    )
    w.append_rows(
        "barrier_arrivals",
        [
            {
                "barrier_id": 0,
                "rank": 0,
                "pid": 100,
                "stream_id": 10,
                "kernel_id": 3,
                "arrival_ns": 200,
            },
            {
                "barrier_id": 0,
                "rank": 1,
                "pid": 101,
                "stream_id": 11,
                "kernel_id": 2,
                "arrival_ns": 900,
            },
        ],
    )
    w.append_rows(
        "markers",
        [
            {
                "marker_id": 0,
                "pid": 100,
                "thread_id": 1,
                "kind": "iteration",
                "name": "0",
                "at_ns": 100,
            }
        ],
    )
    w.close(virtual_end_ns=1500)


@pytest.fixture(params=[True, False], ids=["persisted-order", "temp-order"])
def trace(request, tmp_path):
    path = tmp_path / "small.duckdb"
    write_small_trace(path, build_event_order=request.param)
    with open_trace(path) as r:
        yield r


def test_global_order_is_start_then_kind_then_id(trace):
    order = [(e.kind, e.ref_id) for e in (trace.event(s) for s in range(trace.event_count()))]
    assert order[:3] == [("marker", 0), ("api_call", 0), ("api_call", 2)]
    assert ("barrier", 0) in order and order.index(("barrier", 0)) < order.index(("api_call", 1))
    assert trace.event_count() == 4 + 4 + 1 + 1 + 1 + 1
    starts = [trace.event(s).start_ns for s in range(trace.event_count())]
    assert starts == sorted(starts)


def test_event_fields_and_lookup(trace):
    k = trace.event_for("kernel", 2)
    assert (k.track_id, k.pid, k.rank, k.start_ns, k.end_ns) == ("stream:11", 101, 1, 910, 1400)
    assert k.name == "ncclDevKernel_AllReduce"
    assert trace.event(k.seq) == k
    j = trace.event_for("jump", 0)
    assert j.track_id is None and j.rank is None and j.name == "jump (stream)"
    b = trace.event_for("barrier", 0)
    assert (b.start_ns, b.end_ns) == (200, 1400)  # first arrival .. end
    with pytest.raises(KeyError):
        trace.event_for("kernel", 99)


def test_next_prev_filters(trace):
    first = trace.event(0)
    k = trace.next_event(first.seq, kinds=["kernel"])
    assert (k.kind, k.ref_id) == ("kernel", 0)  # ties at 110: kernel 0 before kernel 1
    r1 = trace.next_event(first.seq, rank=1)
    assert (r1.kind, r1.ref_id) == ("api_call", 2)
    nccl = trace.next_event(first.seq, name_pattern=r"^nccl")
    assert (nccl.kind, nccl.ref_id) == ("kernel", 3)
    last = trace.event(trace.event_count() - 1)
    assert (last.kind, last.ref_id) == ("kernel", 2)  # starts at 910, after the jump at 910
    assert trace.next_event(last.seq) is None
    back = trace.prev_event(last.seq, track_id="stream:11")
    assert (back.kind, back.ref_id) == ("kernel", 1)
    assert trace.prev_event(0) is None
    assert trace.next_event(0, kinds=["memset"]) is None
    with pytest.raises(RevatiUsageError):
        trace.next_event(0, name_pattern="(")
    with pytest.raises(RevatiUsageError):
        trace.next_event(0, kinds=["kernal"])


def test_window_and_first_at(trace):
    names = {(e.kind, e.ref_id) for e in trace.events_in_window(1450, 1600)}
    assert names == {("api_call", 1), ("sync", 0)}
    on_stream = trace.events_in_window(0, 2000, track_ids=["stream:10"])
    assert [e.ref_id for e in on_stream] == [0, 3]
    assert len(trace.events_in_window(0, 2000, limit=3)) == 3
    at = trace.first_event_at(905)
    assert (at.kind, at.start_ns) == ("jump", 910)
    assert trace.first_event_at(911) is None
    assert trace.time_range() == (100, 1500)


def test_tracks_ranks_processes(trace):
    assert trace.ranks() == [0, 1]
    assert [p.pid for p in trace.processes()] == [100, 101]
    tracks = trace.tracks()
    assert [t.track_id for t in tracks] == ["thread:1", "stream:10", "thread:2", "stream:11"]
    assert tracks[0].label == "rank 0 · thread 100 (python)"


def test_barrier_detail(trace):
    (b,) = trace.barriers()
    assert b.straggler_rank == 1 and b.total_wait_ns == 700
    assert [a.wait_ns for a in b.arrivals] == [700, 0]
    assert trace.barrier(0) == b


def test_details_join_launch_call(trace):
    d = trace.details(trace.event_for("kernel", 3))
    assert d["model"] == "nccl" and d["launch_call"]["name"] == "cudaStreamSynchronize"


def test_kernel_stats(trace):
    stats = trace.kernel_stats()
    assert [s.name for s in stats] == ["ncclDevKernel_AllReduce", "sm90_xmma_gemm_bf16"]
    assert stats[0].count == 2 and stats[0].total_ns == 490 + 1100
    assert abs(sum(s.share for s in stats) - 1.0) < 1e-9
    assert len(trace.kernel_stats(limit=1)) == 1


def test_reader_never_writes(tmp_path):
    path = tmp_path / "t.duckdb"
    write_small_trace(path, build_event_order=False)
    before = path.read_bytes()
    with open_trace(path) as r:
        assert r.event_count() == 12
    assert path.read_bytes() == before
    con = duckdb.connect(str(path), read_only=True)
    tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert "event_order" not in tables


def test_shipped_sample_trace_is_small_and_complete() -> None:
    sample = Path(__file__).resolve().parents[2] / "traces" / "sample.duckdb"
    assert sample.stat().st_size < 1_000_000
    with open_trace(sample) as r:
        assert r.event_count() > 1000 and r.ranks() == [0, 1, 2, 3]
        assert r.sql("SELECT value FROM revati_meta WHERE key = 'event_order_rows'")
        assert r.sql("SELECT count(*) FROM events")[0][0] == r.event_count()
