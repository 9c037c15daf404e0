"""ReplayCursor on a real (small, deterministic) trace file: stepping, breakpoints, state."""

from __future__ import annotations

import pytest
from revati.recorder.reader import open_trace  # noqa: E402
from revati.replay.cursor import ReplayCursor  # noqa: E402

from revati.errors import RevatiUsageError  # noqa: E402
from tests.sample_trace import ALLREDUCE, GEMM, build_sample_trace  # noqa: E402


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    path = build_sample_trace(tmp_path_factory.mktemp("cursor") / "t.duckdb")
    with open_trace(path) as r:
        yield r


@pytest.fixture
def cursor(reader):
    return ReplayCursor(reader)


def test_step_walks_the_global_order_both_ways(cursor, reader):
    seen = [cursor.seq]
    while cursor.step() is not None:
        seen.append(cursor.seq)
    assert seen == list(range(reader.event_count()))
    assert cursor.step() is None and cursor.seq == reader.event_count() - 1
    back = cursor.step(forward=False)
    assert back is not None and back.seq == reader.event_count() - 2


def test_step_rank_stays_in_the_rank(cursor):
    cursor.goto_time(10_000)  # rank 1's first launch
    assert cursor.event.rank == 1
    for _ in range(5):
        ev = cursor.step_rank()
        assert ev is not None and ev.rank == 1


def test_sync_jump_and_barrier_steps_land_on_their_kind(cursor):
    assert cursor.step_sync().kind == "sync"
    first_jump = cursor.step_jump()
    assert first_jump.kind == "jump"
    assert first_jump.ref_id == 1 and first_jump.start_ns == 16_000
    b = cursor.step_barrier()
    assert b.kind == "barrier" and b.ref_id == 1 and b.start_ns == 31_000  # first arrival
    assert cursor.step_barrier().ref_id == 2
    assert cursor.step_barrier(forward=False).ref_id == 1


def test_breakpoint_continue_and_reverse_continue(cursor):
    bp = cursor.add_breakpoint("kernel", "gemm")
    first, hit_bp = cursor.continue_()
    assert hit_bp == bp and first.kind == "kernel" and first.name == GEMM
    second, _ = cursor.continue_()
    assert second.seq > first.seq and second.name == GEMM
    back, _ = cursor.reverse_continue()
    assert back.seq == first.seq
    assert cursor.reverse_continue() is None and cursor.seq == first.seq
    cursor.add_breakpoint("api", "^ncclAllReduce$")
    ev, which = cursor.continue_()
    assert ev.kind == "api_call" and ev.name == "ncclAllReduce" and which.kind == "api"
    assert cursor.delete_breakpoint() == 2
    with pytest.raises(RevatiUsageError):
        cursor.continue_()


def test_bad_breakpoints_are_usage_errors(cursor):
    with pytest.raises(RevatiUsageError):
        cursor.add_breakpoint("kernel", "(")
    with pytest.raises(RevatiUsageError):
        cursor.add_breakpoint("thread", "x")
    with pytest.raises(RevatiUsageError):
        cursor.goto(10**9)


def test_bookmarks_and_goto_time(cursor):
    cursor.goto(7)
    cursor.bookmark("here")
    cursor.goto_time(200_000)
    assert cursor.event.start_ns >= 200_000
    assert cursor.goto_bookmark("here").seq == 7
    with pytest.raises(RevatiUsageError):
        cursor.goto_bookmark("nowhere")


def test_state_when_rank1_blocks(cursor, reader):
    # t = 16 µs: rank 1 enters its sync; both streams run their GEMM with two ops queued.
    cursor.goto(reader.event_for("sync", 2).seq)
    state = cursor.state()
    assert state.time_ns == 16_000
    threads = {t.track.ref_id: t for t in state.threads}
    assert [threads[1].status, threads[2].status] == ["blocked", "blocked"]
    assert threads[1].since_ns == 11_000 and threads[2].since_ns == 16_000
    streams = {s.track.ref_id: s for s in state.streams}
    assert streams[10].running == GEMM and streams[10].queued == 2
    assert streams[20].running == GEMM and streams[20].queued == 2
    assert streams[11].running is None and streams[11].queued == 0
    assert state.barriers == []


def test_state_while_rank0_waits_at_the_barrier(cursor):
    # t = 31 µs: rank 0's all-reduce arrives; rank 1 arrives at 36 µs.
    ev = cursor.goto_time(31_000)
    assert ev.kind == "barrier"
    state = cursor.state()
    threads = {t.track.ref_id: t for t in state.threads}
    assert threads[1].status == "blocked" and threads[1].waiting_on == "stream 10"
    assert threads[1].deadline_ns == 44_000
    assert threads[2].status == "blocked" and threads[2].deadline_ns is None
    streams = {s.track.ref_id: s for s in state.streams}
    assert streams[10].running == ALLREDUCE
    assert streams[20].running is not None and "elementwise" in streams[20].running
    assert streams[20].queued == 1  # rank 1's all-reduce is launched but not started
    ((barrier, arrived),) = state.barriers
    assert barrier.barrier_id == 1 and arrived == 1


def test_state_is_the_same_reached_forward_or_backward(cursor):
    cursor.goto(30)
    forward = cursor.state()
    cursor.goto(cursor.count - 1)
    while cursor.seq > 30:
        cursor.step(forward=False)
    assert cursor.state() == forward


def test_last_jump_explains_its_cause(cursor):
    cursor.goto_time(150_000)
    jump = cursor.state().last_jump
    assert jump is not None and jump.jump_id == 2 and jump.to_ns == 144_000
    assert jump.cause_kind == "stream"
