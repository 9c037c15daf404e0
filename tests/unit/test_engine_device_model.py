"""Property tests of the device model (docs/time-model.md, invariant 4) and its edge cases."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from revati.engine.device_model import (
    DEFAULT_STREAM_DEVICE_SHIFT,
    LEGACY,
    NON_BLOCKING,
    PER_THREAD,
    DeviceModel,
)

PID = 100

# An operation: (kind, stream index, host time delta, duration)
ops = st.lists(
    st.tuples(
        st.sampled_from(["kernel", "record", "wait"]),
        st.integers(0, 3),
        st.integers(0, 5000),
        st.integers(1, 20000),
    ),
    min_size=1,
    max_size=60,
)


def _streams(m: DeviceModel) -> list:
    made = [m.create_stream(PID, 0x1000 + i, NON_BLOCKING if i == 2 else 0, 0, 0) for i in range(3)]
    return [m.stream(PID, LEGACY, 1), *made]


@settings(max_examples=200, deadline=None)
@given(ops, st.integers(0, 3000))
def test_stream_order_event_waits_and_sync_deadlines(sequence, latency) -> None:
    m = DeviceModel(latency)
    streams = _streams(m)
    host = 0
    placed: dict[int, list[tuple[int, int, int]]] = {s.stream_id: [] for s in streams}
    events: dict[int, int] = {}
    for n, (kind, si, dt, dur) in enumerate(sequence):
        host += dt
        s = streams[si]
        if kind == "kernel":
            p = m.submit(s, host, dur)
            assert p.start_ns >= host + latency and p.end_ns == p.start_ns + dur
            prev = placed[s.stream_id]
            assert not prev or p.start_ns >= prev[-1][1]  # stream order
            prev.append((p.start_ns, p.end_ns, n))
        elif kind == "record":
            t = m.record_event(PID, n, s, host)
            assert t >= host and all(end <= t for _, end, _ in placed[s.stream_id])
            events[n] = t
        elif events:
            ev = max(events)
            m.wait_event(PID, s, ev)
            q = m.submit(s, host, dur)
            assert q.start_ns >= events[ev]  # work after a wait starts after the event
            placed[s.stream_id].append((q.start_ns, q.end_ns, n))
    # a device sync waits for everything; a stream sync for its own work
    everything = max((end for v in placed.values() for _, end, _ in v), default=0)
    assert m.device_done_ns(PID, 0) >= everything
    for s in streams:
        assert m.stream_done_ns(s) >= max((end for _, end, _ in placed[s.stream_id]), default=0)


def test_legacy_stream_serialises_with_blocking_streams_but_not_non_blocking() -> None:
    m = DeviceModel(0)
    blocking = m.create_stream(PID, 0xA, 0, 0, 0)
    free = m.create_stream(PID, 0xB, NON_BLOCKING, 0, 0)
    legacy = m.stream(PID, LEGACY, 1)
    m.submit(blocking, 0, 1000)
    m.submit(free, 0, 5000)
    after = m.submit(legacy, 0, 10)
    assert after.start_ns == 1000  # waited for the blocking stream only
    later = m.submit(blocking, 0, 10)
    assert later.start_ns == after.end_ns  # and blocking streams wait for the legacy stream


def test_per_thread_default_streams_are_separate_per_thread() -> None:
    m = DeviceModel(0)
    a = m.stream(PID, PER_THREAD, 1)
    b = m.stream(PID, PER_THREAD, 2)
    assert a.stream_id != b.stream_id
    m.submit(a, 0, 1000)
    assert m.submit(b, 0, 10).start_ns == 0


def test_each_device_has_its_own_default_streams() -> None:
    m = DeviceModel(0)
    on_device_1 = (1 << DEFAULT_STREAM_DEVICE_SHIFT) | LEGACY
    legacy0, legacy1 = m.stream(PID, LEGACY, 1), m.stream(PID, on_device_1, 1)
    assert (legacy0.device, legacy1.device) == (0, 1) and legacy1.handle == LEGACY
    m.submit(legacy0, 0, 1000)
    assert m.submit(legacy1, 0, 10).start_ns == 0  # device 1 does not wait for device 0
    per_thread1 = m.stream(PID, (1 << DEFAULT_STREAM_DEVICE_SHIFT) | PER_THREAD, 1)
    assert per_thread1.device == 1 and per_thread1 is not m.stream(PID, PER_THREAD, 1)
    assert m.device_done_ns(PID, 1) == 10 and m.device_done_ns(PID, 0) == 1000


def test_elapsed_time_errors_like_cuda() -> None:
    m = DeviceModel(0)
    s = m.create_stream(PID, 0xA, 0, 0, 0)
    m.create_event(PID, 1, 0)
    m.create_event(PID, 2, 0)
    m.create_event(PID, 3, 0x2)  # cudaEventDisableTiming
    assert m.elapsed_ns(PID, 1, 2, 0)[0] == 400  # never recorded
    m.record_event(PID, 1, s, 0)
    m.submit(s, 0, 700)
    m.record_event(PID, 2, s, 0)
    assert m.elapsed_ns(PID, 1, 2, 100) == (600, 0)  # not complete yet at V=100
    assert m.elapsed_ns(PID, 1, 2, 700) == (0, 700)
    m.record_event(PID, 3, s, 0)
    assert m.elapsed_ns(PID, 1, 3, 10_000)[0] == 400
