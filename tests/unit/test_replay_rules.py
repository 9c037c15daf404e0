"""The re-simulation rules on small hand-built schedules (replay/resim.py)."""

from __future__ import annotations

import numpy as np
from revati.replay.resim import Barriers, DeviceOps, Syncs, resimulate

A = np.array


def ops(stream, launch, start, end, thread=None, barrier=None, pid=None) -> DeviceOps:
    n = len(stream)
    i64 = lambda x, fill: A(x if x is not None else [fill] * n, dtype=np.int64)  # noqa: E731
    return DeviceOps(
        i64(stream, 0), i64(pid, 0), i64(thread, 0), i64(launch, 0), i64(start, 0),
        i64(end, 0), i64(barrier, -1),
    )  # fmt: skip


def syncs(blocked, deadline, resumed, target=None, device_wide=None, thread=None) -> Syncs:
    n = len(blocked)

    def i64(x: list[int]) -> np.ndarray:
        return A(x, dtype=np.int64)

    return Syncs(
        i64(thread or [0] * n), i64([0] * n), i64(blocked), i64(deadline), i64(resumed),
        i64(target or [-1] * n), i64([-1] * n),
        A(device_wide, dtype=bool) if device_wide is not None else None,
    )  # fmt: skip


NO_BARRIERS = Barriers(A([], dtype=np.int64), A([], dtype=np.int64))


def test_an_event_wait_read_off_the_recording_moves_with_its_producer() -> None:
    # s1: A 10..100; s2: C waited for A (starts exactly at A's end, long after its launch)
    o = ops([1, 2], launch=[0, 5], start=[10, 100], end=[100, 130])
    res = resimulate(o, syncs([], [], []), NO_BARRIERS, A([400, 30]), latency_orig=10)
    assert res.start.tolist() == [10, 410] and res.end.tolist() == [410, 440]


def test_a_device_sync_waits_for_a_stream_that_becomes_the_longest() -> None:
    o = ops([1, 2], launch=[0, 1], start=[10, 11], end=[100, 200])
    y = syncs([50], [200], [200], device_wide=[True])
    res = resimulate(o, y, NO_BARRIERS, A([500, 189]), latency_orig=10)
    assert res.end.tolist() == [510, 200]
    assert res.resumed.tolist() == [510] and res.deadline.tolist() == [510]


def test_a_sync_shifts_the_later_calls_of_its_thread() -> None:
    # step 1: op 0, sync at 50 resumes at its end 100; step 2 launched 20 after the resume
    o = ops([1, 1], launch=[0, 120], start=[10, 130], end=[100, 160])
    y = syncs([50], [100], [100], target=[0])
    res = resimulate(o, y, NO_BARRIERS, A([190, 30]), latency_orig=10)
    assert res.resumed.tolist() == [200]  # op 0 now ends at 200
    assert res.start.tolist() == [10, 230] and res.end.tolist() == [200, 260]
    assert res.host_shift.at(A([0, 0]), A([40, 120])).tolist() == [0, 100]


def test_a_barrier_ends_on_every_rank_at_the_last_arrival_plus_its_duration() -> None:
    # rank 0 arrives at 100, rank 1 at 300; the all-reduce takes 50 after the release
    o = ops(
        [1, 2, 1, 2], launch=[0, 0, 90, 90], start=[10, 10, 100, 300], end=[100, 300, 350, 350],
        pid=[0, 1, 0, 1], thread=[0, 1, 0, 1], barrier=[-1, -1, 0, 0],
    )  # fmt: skip
    b = Barriers(A([300]), A([350]))
    same = resimulate(o, syncs([], [], []), b, A([90, 290, 0, 0]), latency_orig=10)
    assert same.end.tolist() == [100, 300, 350, 350] and same.release.tolist() == [300]
    faster = resimulate(o, syncs([], [], []), b, A([90, 90, 0, 0]), latency_orig=10)
    assert faster.start.tolist() == [10, 10, 100, 100]
    assert faster.release.tolist() == [100] and faster.barrier_end.tolist() == [150]
    assert faster.end.tolist() == [100, 100, 150, 150]
