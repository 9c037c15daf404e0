"""CpuWait: the time participant threads waited for a CPU, from Linux's per-thread schedstat,
and the share of their CPU demand that waited (woken threads' waits left out). A sample sees the
threads alive at that moment (a thread that starts and ends between two samples is missed), so
each check samples while its threads run."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from revati.engine.cpu_wait import CpuWait

pytestmark = pytest.mark.skipif(
    not Path(f"/proc/{os.getpid()}/schedstat").exists(),
    reason="this kernel keeps no schedstat (CONFIG_SCHED_INFO off): nothing to measure",
)


def test_more_busy_processes_than_cpus_wait_for_a_cpu() -> None:
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while 1: pass"])
        for _ in range((os.cpu_count() or 1) + 2)
    ]
    try:
        waits = CpuWait()
        pids = [s.pid for s in spinners]
        waits.sample(pids)
        first = waits.total_ns
        time.sleep(0.5)
        waits.sample(pids)
    finally:
        for s in spinners:
            s.kill()
            s.wait()
    # more runnable threads than cores: together they waited a good part of the 0.5 s
    assert waits.total_ns - first > 50_000_000
    warning = waits.warning(wall_ns=500_000_000)
    assert warning is not None and "waited" in warning and "CPU" in warning


def test_a_sleeping_process_waits_for_nothing_and_gone_processes_are_skipped() -> None:
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; print('asleep', flush=True); time.sleep(5)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sleeper.stdout is not None and sleeper.stdout.readline() == "asleep\n"
        time.sleep(0.05)
        waits = CpuWait()
        waits.sample([sleeper.pid])
        before = waits.total_ns
        time.sleep(0.3)
        waits.sample([sleeper.pid, 2**22 + 12345])  # the second pid does not exist
    finally:
        sleeper.kill()
        sleeper.wait()
    assert waits.total_ns - before < 5_000_000  # its start-up waits were in the first sample
    waits.total_ns -= before
    assert waits.warning(wall_ns=10**9) is None


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
