"""CpuWait on this process's real threads (Linux schedstat): the share of CPU demand that
waited, the woken threads' waits left out, and the schedstat files of ended threads closed.
A sample sees the threads alive at that moment (a thread that starts and ends between two
samples is missed), so each check samples while its threads run."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from revati.engine.cpu_wait import CpuWait


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


@contextmanager
def _burning(seconds: float) -> Iterator[None]:
    """Two threads per core burning `seconds` of CPU each, alive inside the block."""
    threads = [
        threading.Thread(target=_burn, args=(seconds,)) for _ in range(2 * (os.cpu_count() or 1))
    ]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        for t in threads:
            t.join()


def test_a_sample_gives_the_share_of_cpu_demand_that_waited() -> None:
    wait = CpuWait()
    with _burning(0.3):
        wait.sample([os.getpid()])
        time.sleep(0.1)
        share = wait.sample([os.getpid()])
    assert share is not None and 0.0 <= share < 1.0  # they asked for far more than 1 ms
    assert wait.total_ns > 0
    with _burning(0.3):
        wait.sample([os.getpid()])
        time.sleep(0.1)
        # every wait counted as a woken thread's: the emulator's, none left in the share
        assert wait.sample([os.getpid()], wake_wait_ns=1 << 60) == 0.0
    wait.close()


def test_the_files_of_ended_threads_are_closed() -> None:
    wait = CpuWait()
    done = threading.Event()
    t = threading.Thread(target=done.wait)
    t.start()
    wait.sample([os.getpid()])
    assert t.native_id in wait._files._fds
    done.set()
    t.join()
    wait.sample([os.getpid()])
    assert t.native_id not in wait._files._fds
    wait.close()
    assert not wait._files._fds
