"""The clock page through the real helper library: freezing, jumps and their generation check."""

from __future__ import annotations

import ctypes
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from revati import shim


def page(tmp_path: Path, dilation: float = 1.0) -> shim.ClockPage:
    return shim.ClockPage(
        tmp_path / "clock.page",
        dilation=dilation,
        epoch_realtime_ns=0,
        epoch_monotonic_ns=0,
        capacities=[1 << 30],
    )


def test_frozen_until_a_thread_runs_then_flows(tmp_path: Path) -> None:
    p = page(tmp_path)
    s = p.snapshot()
    assert s.frozen and s.running == 0 and s.now_ns == 0
    p.adjust(None, +1)
    a = p.now()
    b = p.now()
    assert b >= a and not p.snapshot().frozen
    p.adjust(None, -1)
    frozen_at = p.now()
    assert p.snapshot().frozen and p.now() == frozen_at


def test_jump_commits_only_if_nothing_changed(tmp_path: Path) -> None:
    p = page(tmp_path)
    s = p.snapshot()
    assert p.try_jump(s.seq, 5_000_000)
    after = p.snapshot()
    assert after.now_ns == 5_000_000 and after.generation == s.generation + 1
    p.adjust(None, +1)  # a thread starts running: an old proposal must fail
    assert not p.try_jump(after.seq, 9_000_000)
    p.adjust(None, -1)
    stale = after.seq
    assert not p.try_jump(stale, 9_000_000)  # the page changed since that snapshot
    assert p.snapshot().now_ns >= 5_000_000


def rebase(p: shim.ClockPage, seq: int) -> None:
    """What a woken thread does natively: drop its wake-up latency if the page did not change."""
    lib = shim._helper()
    lib.revati_page_rebase.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.revati_page_rebase(p.address, seq)


def test_wake_reads_the_time_it_resumes_at_under_the_lock(tmp_path: Path) -> None:
    p = page(tmp_path)
    s = p.snapshot()
    assert p.try_jump(s.seq, 1_000_000)
    woken = p.wake(None, 1_000_000)
    assert woken is not None
    v, seq = woken
    assert v == 1_000_000 and seq  # it unfroze the clock: the thread may re-base
    time.sleep(0.003)
    looked = p.snapshot().now_ns  # the coordinator looks: wake-up latency has flowed
    assert looked >= 1_002_000
    rebase(p, seq)  # ...and the woken thread takes that latency back
    # a second thread due at `looked` must not be woken at a time the clock no longer shows
    assert p.wake(None, looked) is None
    assert p.now() < looked
    later = p.wake(None, 1_000_000)
    assert later is not None and later[0] >= 1_000_000 and later[1] == 0
    assert p.snapshot().running == 2


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["run", "block", "jump"]), st.integers(0, 10**9)), max_size=40
    )
)
def test_virtual_time_never_goes_back(tmp_path_factory, steps) -> None:
    p = page(tmp_path_factory.mktemp("page"))
    running = 0
    last = p.now()
    for op, target in steps:
        if op == "run":
            p.adjust(None, +1)
            running += 1
        elif op == "block" and running:
            p.adjust(None, -1)
            running -= 1
        else:
            s = p.snapshot()
            ok = p.try_jump(s.seq, s.now_ns + target)
            assert ok == (running == 0)  # jumps only while nobody runs
        now = p.now()
        assert now >= last
        last = now
