"""Timed waits on other threads in virtual time: Python's Event/Lock/queue timeouts.

CPython waits for a lock with a timeout in `sem_clockwait` on a process-private semaphore. Such
a wait leaves `running` until the semaphore is posted or its virtual deadline comes, so an idle
thread that looks for work every 100 ms does not keep the clock flowing at real speed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.integration.record_helpers import q, run_cli
from tests.integration.test_record import assert_time_invariants, values

PROGRAM = """
import multiprocessing, threading, time

t0 = time.monotonic()
threading.Event().wait(30)  # nobody sets it: the deadline, reached by a jump
t1 = time.monotonic()
print(f"timeout_s={t1 - t0:.6f}")

event, woke = threading.Event(), []
def waiter():
    event.wait(100)
    woke.append(time.monotonic())
thread = threading.Thread(target=waiter)
thread.start()
time.sleep(2)  # the waiter is not running either: a jump
posted = time.monotonic()
event.set()  # wakes the waiter now, not at its deadline
thread.join()
print(f"woken_after_s={woke[0] - posted:.6f}")
print(f"slept_s={posted - t1:.6f}")

# a process-shared semaphore keeps its real-time wait: the other process's post wakes it
shared = multiprocessing.Semaphore(0)
child = multiprocessing.Process(target=shared.release)
child.start()
print(f"shared_acquired={shared.acquire(timeout=60)}")
child.join()
"""


def record_python(tmp_path: Path, program: str) -> tuple[dict[str, str], Path, float]:
    """Record `python program`: (its printed values, the trace, the run's wall seconds)."""
    script = tmp_path / "program.py"
    script.write_text(program)
    out = tmp_path / "t.duckdb"
    started = time.monotonic()
    proc = run_cli("record", "-o", str(out), "--quiet", "--", sys.executable, str(script))
    wall = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    return values(proc.stdout), out, wall


def test_a_python_wait_with_a_timeout_is_virtual_and_a_post_wakes_it(tmp_path: Path) -> None:
    v, out, wall = record_python(tmp_path, PROGRAM)
    assert 30.0 <= float(v["timeout_s"]) < 30.05
    assert 2.0 <= float(v["slept_s"]) < 2.05
    assert float(v["woken_after_s"]) < 0.05  # the post, not the 100 s deadline
    assert v["shared_acquired"] == "True"
    assert wall < 30  # the 32 virtual seconds were jumps
    waits = q(
        out,
        """SELECT c.name, s.deadline_ns - s.blocked_ns, s.resumed_ns - s.blocked_ns
           FROM syncs s JOIN api_calls c USING (call_id)
           WHERE c.name IN ('sem_clockwait', 'sem_timedwait') ORDER BY s.blocked_ns""",
    )
    assert waits[0][1] == waits[0][2]  # woken by its deadline, exactly
    assert 29_990_000_000 < waits[0][1] <= 30_000_000_000
    assert any(d > 90_000_000_000 and r < 2_100_000_000 for _, d, r in waits)  # by the post
    jumps = q(out, "SELECT to_ns - from_ns FROM jumps WHERE cause_kind = 'poll'")
    assert any(j > 29_000_000_000 for (j,) in jumps)
    assert_time_invariants(out)


RAYON_PROGRAM = """
import time
from tokenizers import Tokenizer, models, pre_tokenizers

tokenizer = Tokenizer(models.WordLevel({"a": 0, "b": 1, "?": 2}, unk_token="?"))
tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
assert len(tokenizer.encode_batch(["a b a"] * 2000)) == 2000  # starts rayon's worker pool
t0 = time.monotonic()
time.sleep(20)  # the idle workers sleep in futex waits made through syscall(): not running
print(f"slept_s={time.monotonic() - t0:.6f}")
"""


def test_threads_parked_in_raw_futex_waits_do_not_keep_the_clock_running(tmp_path: Path) -> None:
    """Rust's std parks threads with futex calls through libc's syscall(); Hugging Face
    tokenizers leaves a rayon pool parked so after its first batch."""
    pytest.importorskip("tokenizers", reason="tokenizers comes with the serve extra (dev)")
    v, out, wall = record_python(tmp_path, RAYON_PROGRAM)
    assert 20.0 <= float(v["slept_s"]) < 20.05
    assert wall < 18  # the 20 s sleep was a jump, not 20 s of real time
    jumps = q(out, "SELECT to_ns - from_ns FROM jumps WHERE cause_kind = 'sleep'")
    assert any(j > 19_000_000_000 for (j,) in jumps)
    assert_time_invariants(out)
