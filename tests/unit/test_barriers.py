"""The barrier book (revati/engine/barriers.py) on randomised multi-rank arrivals.

Ranks arrive in any interleaving, at random host times, on streams with random earlier work;
the checks are docs/design.md §3's barrier rule on what the book decides and writes: release = the
last arrival, every member's stream ends at release + the predicted duration, a waiting
thread's deadline stays unknown (infinite) until all its barriers are released, the straggler
is the last arrival, send/recv pair by order, and a dead member fails what is pending."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from revati.recorder.writer import RunInfo, TraceWriter

from revati import shim
from revati.engine.barriers import NCCL_REMOTE_ERROR, BarrierBook
from revati.engine.device_model import DeviceModel
from revati.engine.durations import DurationModel
from revati.engine.ingest import Resolution
from revati.engine.trace_sink import TraceSink

COMM = 0x1234
DURATIONS = DurationModel("h100-sxm", None)


@pytest.fixture(scope="module")
def writer(tmp_path_factory):
    with TraceWriter(tmp_path_factory.mktemp("b") / "t.duckdb", RunInfo()) as w:
        yield w


def packed(rank: int, nranks: int, peer: int = -1) -> int:
    return rank | nranks << 16 | (peer & 0xFFFF) << 32 | 7 << 48


def rec(kind: int, rank: int, nranks: int, t: int, stream: int, nbytes: int = 1 << 20, peer=-1):
    return {
        "kind": kind,
        "a": COMM,
        "b": nbytes,
        "c": stream,
        "d": packed(rank, nranks, peer),
        "thread": rank,
        "enter_ns": t,
    }


class RowsSink(TraceSink):
    """A real sink that also keeps every row it is given, for the checks."""

    def __init__(self, writer: TraceWriter) -> None:
        super().__init__(writer)
        self.kept: dict[str, list[dict]] = {}

    def add(self, table: str, **row) -> None:
        self.kept.setdefault(table, []).append(row)
        super().add(table, **row)


class Harness:
    """A book over a real device model and a real (unflushed) sink; one process, rank = thread."""

    def __init__(self, writer: TraceWriter) -> None:
        self.sink = RowsSink(writer)  # never flushed: the rows stay in memory
        self.model = DeviceModel(launch_latency_ns=1000)
        self.book = BarrierBook(self.sink, self.model, DURATIONS)

    def arrive(self, r: dict) -> None:
        self.book.arrive((1, 1), 1, r, call_id=0)

    def wait(self, rank: int, at: int) -> Resolution:
        res = Resolution(None, kind="barrier")
        self.book.wait((1, 1), rank, at, res)
        return res

    def rows(self, table: str) -> list[dict]:
        return self.sink.kept.get(table, [])


def init(h: Harness, n: int) -> None:
    for rank in range(n):
        h.arrive(rec(shim.COLL_INIT, rank, n, 0, 0))
    for rank in range(n):
        assert h.wait(rank, 0).deadline_ns == 0


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 8),
    data=st.data(),
)
def test_allreduce_ends_on_every_rank_at_last_arrival_plus_duration(writer, n, data):
    h = Harness(writer)
    init(h, n)
    host = data.draw(st.lists(st.integers(0, 10**7), min_size=n, max_size=n))
    busy = data.draw(st.lists(st.integers(0, 10**7), min_size=n, max_size=n))
    order = data.draw(st.permutations(range(n)))
    streams = {}
    for rank in range(n):  # earlier work on each rank's stream
        streams[rank] = h.model.stream(1, 100 + rank, rank)
        h.model.submit(streams[rank], 0, busy[rank])
    waits = {}
    for k, rank in enumerate(order):
        h.arrive(rec(2, rank, n, host[rank], 100 + rank))
        waits[rank] = h.wait(rank, host[rank])
        if k < n - 1:  # someone has not arrived: nobody's deadline is known
            assert all(w.deadline_ns is None for w in waits.values())
    # the earlier work started at 0 + launch latency
    arrivals = [max(host[r] + 1000, busy[r] + 1000) for r in range(n)]
    (b,) = [row for row in h.rows("barriers") if row["collective"] == "allreduce"]
    assert b["release_ns"] == max(arrivals)
    assert b["straggler_rank"] == max(range(n), key=lambda r: (arrivals[r], r))
    assert b["end_ns"] > b["release_ns"]
    for rank in range(n):
        assert streams[rank].tail_ns == b["end_ns"]
        assert waits[rank].deadline_ns == host[rank] and waits[rank].result == 0
    rows = [a for a in h.rows("barrier_arrivals") if a["stream_id"] is not None]
    assert sorted(a["wait_ns"] for a in rows) == sorted(b["release_ns"] - t for t in arrivals)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 6), data=st.data())
def test_sends_and_receives_pair_by_order(writer, n, data):
    h = Harness(writer)
    init(h, n)
    msgs = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, n - 1)), max_size=6))
    pairs = [(src, (src + off) % n) for src, off in msgs]
    events = [(7, s, d, i) for i, (s, d) in enumerate(pairs)] + [
        (8, d, s, i) for i, (s, d) in enumerate(pairs)
    ]
    queues: dict[int, list] = {}
    for e in events:  # each rank's own calls in program order
        queues.setdefault(e[1], []).append(e)
    while any(queues.values()):  # any interleaving of the ranks
        rank = data.draw(st.sampled_from(sorted(r for r, q in queues.items() if q)))
        kind, _, peer, i = queues[rank].pop(0)
        h.arrive(rec(kind, rank, n, 1000 * i, 100 + rank, nbytes=4096, peer=peer))
    sendrecv = [b for b in h.rows("barriers") if b["collective"] == "sendrecv"]
    assert len(sendrecv) == len(pairs)
    assert not h.book.pending


def test_a_dead_member_fails_the_pending_barrier(writer):
    h = Harness(writer)
    n = 3
    for rank in range(n):  # ranks 0 and 1 in pid 1, rank 2 in pid 2
        h.book.arrive((rank // 2 + 1, 1), rank // 2 + 1, rec(shim.COLL_INIT, rank, n, 0, 0), 0)
    h.book.arrive((1, 1), 1, rec(2, 0, n, 10, 100), 0)
    waits = [Resolution(None), Resolution(None)]
    h.book.wait((1, 1), 0, 10, waits[0])
    assert waits[0].deadline_ns is None
    h.book.member_died(2)
    # rank 1 arrives after the failure: the same barrier, failed at once
    h.book.arrive((1, 1), 1, rec(2, 1, n, 10, 101), 0)
    h.book.wait((1, 1), 1, 10, waits[1])
    assert all(w.deadline_ns == 10 and w.result == NCCL_REMOTE_ERROR for w in waits)
    arrived = sorted(a["rank"] for a in h.rows("barrier_arrivals") if a["wait_ns"] is None)
    assert arrived == [0, 1]
    failed = [b for b in h.rows("barriers") if b["failed_rank"] is not None]
    assert [(b["collective"], b["failed_rank"], b["end_ns"]) for b in failed] == [
        ("allreduce", 2, None)
    ]
    # the communicator stays failed: a later call fails at once
    h.book.arrive((1, 1), 1, rec(2, 0, n, 20, 100), 0)
    late = Resolution(None)
    h.book.wait((1, 1), 0, 20, late)
    assert late.result == NCCL_REMOTE_ERROR and late.deadline_ns == 20
    assert h.book.rank_of(2) == 2 and h.book.rank_of(1) is None
