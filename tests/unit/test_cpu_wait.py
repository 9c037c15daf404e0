"""CpuWait: the time participant threads waited for a CPU, from Linux's per-thread schedstat."""

from __future__ import annotations

import os
import subprocess
import sys
import time
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
