"""Timed waits on other threads in virtual time: condition variables (realtime and
CLOCK_MONOTONIC ones, from C) and semaphores (C, and Python's `Event.wait(timeout)`), waited on
the coordinator with their virtual deadline and woken early by a signal or post of the process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.integration.record_helpers import REPO, q, run_cli

SOURCE = REPO / "tests" / "cuda" / "timed_waits.c"


def record(tmp_path: Path, *cmd: str) -> tuple[dict[str, str], Path]:
    out = tmp_path / "t.duckdb"
    proc = run_cli("record", "--quiet", "-o", str(out), "--", *cmd, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line), out


# Virtual time holds the programs' host time at wall speed: on a loaded 2-core machine the few
# host steps around a wait (thread switches, the waker's own work) took up to ~50 ms, so each
# bound allows this much above the waits' virtual length; every deadline it is told apart from
# is tens of seconds later.
HOST_SLACK_S = 0.5


def test_condition_and_semaphore_timeouts_take_virtual_time(tmp_path: Path) -> None:
    program = tmp_path / "timed_waits"
    subprocess.run(
        ["gcc", "-O1", "-Wall", str(SOURCE), "-o", str(program), "-lpthread"], check=True
    )
    v, trace = record(tmp_path, str(program))
    # each 10-second round: nine or ten 1-second timeouts, then the signal (never lost)
    assert int(v["realtime_timeouts"]) in (9, 10) and int(v["monotonic_timeouts"]) in (9, 10)
    # woken by the post (main posts 5 ms after waking the waiter, which starts its clock only
    # after it runs again, so less than 5 ms may show), not at its 100 s deadline
    assert v["sem"] == "0" and 0 < float(v["sem_s"]) < 1.0
    assert 20.005 <= float(v["total_s"]) < 20 + HOST_SLACK_S
    wall_ns, virtual_ns = q(trace, "SELECT wall_ns, virtual_end_ns FROM run")[0]
    assert virtual_ns >= 20e9 and wall_ns < 10e9  # the clock jumped over the waits
    waits = dict(
        q(
            trace,
            "SELECT a.name, count(*) FROM syncs s JOIN api_calls a USING (call_id) "
            "WHERE a.name IN ('pthread_cond_timedwait', 'sem_timedwait') GROUP BY 1",
        )
    )
    assert waits["pthread_cond_timedwait"] >= 20 and waits["sem_timedwait"] == 1


PYTHON = textwrap.dedent("""
    import threading, time
    stop = threading.Event()
    ticks = []
    def ticker():
        while not stop.wait(0.5):                 # sem_clockwait with a 0.5 s deadline
            ticks.append(time.monotonic())
    t = threading.Thread(target=ticker)
    t0 = time.monotonic()
    t.start()
    time.sleep(30)
    stop.set()
    t.join()
    print(f"ticks={len(ticks)}")
    print(f"elapsed={time.monotonic() - t0:.6f}")
""")


def test_a_python_thread_waiting_with_a_timeout_lets_the_clock_jump(tmp_path: Path) -> None:
    script = tmp_path / "ticker.py"
    script.write_text(PYTHON)
    v, trace = record(tmp_path, sys.executable, str(script))
    assert int(v["ticks"]) in (59, 60) and 30.0 <= float(v["elapsed"]) < 30.1
    wall_ns, jumps = q(trace, "SELECT wall_ns, (SELECT count(*) FROM jumps) FROM run")[0]
    assert wall_ns < 20e9 and jumps >= 60


FUTEX_SOURCE = REPO / "tests" / "cuda" / "futex_waits.c"


def test_timed_futex_waits_through_syscall_take_virtual_time_and_wake_on_their_event(
    tmp_path: Path,
) -> None:
    """libstdc++'s std::future and Rust's timed parking wait in futex calls made through
    syscall(): they leave `running` with their virtual deadline, and end at a FUTEX_WAKE, or at
    the word changing when the wake is one the shim cannot see."""
    program = tmp_path / "futex_waits"
    subprocess.run(
        ["gcc", "-O1", "-Wall", str(FUTEX_SOURCE), "-o", str(program), "-lpthread"], check=True
    )
    v, trace = record(tmp_path, str(program))
    assert v["timeout"] == "ETIMEDOUT" and 30.0 <= float(v["timeout_s"]) < 30 + HOST_SLACK_S
    assert 2.0 <= float(v["woken_s"]) < 2 + HOST_SLACK_S  # the FUTEX_WAKE, not the 100 s deadline
    assert 2.0 <= float(v["unseen_s"]) < 2 + HOST_SLACK_S  # the changed word, checked every real ms
    assert v["again"] == "EAGAIN"
    wall_ns, virtual_ns, jumps = q(
        trace, "SELECT wall_ns, virtual_end_ns, (SELECT count(*) FROM jumps) FROM run"
    )[0]
    assert virtual_ns >= 34e9 and wall_ns < 10e9 and jumps >= 3
    waits = q(
        trace,
        "SELECT s.deadline_ns - s.blocked_ns, s.resumed_ns - s.blocked_ns FROM syncs s "
        "JOIN api_calls a USING (call_id) WHERE a.name = 'syscall' ORDER BY s.blocked_ns",
    )
    assert waits[0][0] == waits[0][1] and 29.99e9 < waits[0][0] <= 30e9  # its deadline, exactly
    assert [d > 99e9 and r < (2 + HOST_SLACK_S) * 1e9 for d, r in waits[1:]] == [True, True]
    # the clock flowed only while the program ran: well under the 34 virtual seconds
    unfrozen, held = q(
        trace,
        "SELECT json_extract(config, '$.unfrozen_wall_ns')::BIGINT, "
        "(SELECT sum(running_wall_ns) FROM processes) FROM run",
    )[0]
    assert 0 < unfrozen < 5e9 and 0 < held < 5e9


OMP_SOURCE = REPO / "tests" / "cuda" / "omp_idle.c"


def test_an_idle_openmp_worker_does_not_keep_the_clock_running(tmp_path: Path) -> None:
    """libgomp's workers wait between parallel regions in futex calls the shim cannot see; they
    count as running only inside a region's body, so after one region the clock still jumps."""
    program = tmp_path / "omp_idle"
    subprocess.run(
        ["gcc", "-O1", "-Wall", "-fopenmp", str(OMP_SOURCE), "-o", str(program)], check=True
    )
    v, trace = record(tmp_path, str(program))
    assert v["team"] == "2"
    assert float(v["region_s"]) >= 0.3  # the workers' CPU time counted: both ran 0.3 s
    assert 20.0 <= float(v["sleep_s"]) < 20 + HOST_SLACK_S
    wall_ns, jumps = q(trace, "SELECT wall_ns, (SELECT count(*) FROM jumps) FROM run")[0]
    assert wall_ns < 15e9 and jumps >= 1  # the 20 s sleep was a jump
    jumped = q(trace, "SELECT max(to_ns - from_ns) FROM jumps WHERE cause_kind = 'sleep'")[0][0]
    assert jumped > 19.9e9


SPIN_SOURCE = REPO / "tests" / "cuda" / "spin_yield.c"


def test_a_lone_sched_yield_spinner_lets_the_clock_jump_and_sees_the_store_at_once(
    tmp_path: Path,
) -> None:
    """A spin of sched_yield calls (vLLM's shared-memory queue readers spin so) waits out of
    `running` while no other thread runs: the setter's 3 s sleep is a jump, the spinner sees its
    store within microseconds, and a lone 2 s busy-loop window passes in a few hundred jumps."""
    program = tmp_path / "spin_yield"
    subprocess.run(
        ["gcc", "-O1", "-Wall", str(SPIN_SOURCE), "-o", str(program), "-lpthread"], check=True
    )
    v, trace = record(tmp_path, str(program))
    assert 3.0 <= float(v["flag_s"]) < 3.01
    assert 0 <= float(v["late_us"]) < 5000  # the store vetoed the next jump (no 10 ms quantum)
    assert 2.0 <= float(v["window_s"]) < 2.02  # quanta of at most 10 ms
    assert int(v["spins"]) < 5000
    wall_ns, jumps = q(trace, "SELECT wall_ns, (SELECT count(*) FROM jumps) FROM run")[0]
    assert wall_ns < 15e9 and 10 < jumps < 5000
    (waits,) = q(
        trace,
        "SELECT count(*) FROM syncs JOIN api_calls USING (call_id) WHERE name = 'sched_yield'",
    )[0]
    assert waits > 10


def test_two_processes_spinning_at_once_let_the_clock_jump(tmp_path: Path) -> None:
    """Two processes spin on one flag in shared memory (the readers of one queue, as vLLM's
    tensor-parallel workers spin on its broadcast queue), set by a thread that sleeps 3 s first.
    Each spinner counts the other as spinning, not working, so both wait out of `running`: the
    sleep passes in jumps instead of 3 s of wall time with the clock flowing, and both see the
    store."""
    program = tmp_path / "spin_yield"
    subprocess.run(
        ["gcc", "-O1", "-Wall", str(SPIN_SOURCE), "-o", str(program), "-lpthread"], check=True
    )
    v, trace = record(tmp_path, str(program), "pair")
    assert 3.0 <= float(v["flag_s"]) < 3.0 + HOST_SLACK_S
    assert 3.0 <= float(v["child_flag_s"]) < 3.0 + HOST_SLACK_S
    assert 0 <= float(v["late_us"]) < 20000  # within the second spinner's 10 ms quantum and more
    (unfrozen_wall_ns,) = q(trace, "SELECT config.unfrozen_wall_ns::BIGINT FROM run")[0]
    assert unfrozen_wall_ns < 1.5e9  # it was the whole 3 s while the spinners kept it flowing
    (jumps,) = q(trace, "SELECT count(*) FROM jumps")[0]
    assert jumps > 10
