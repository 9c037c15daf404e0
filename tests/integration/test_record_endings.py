"""How a run ended, said plainly: per process exit code or signal and when, in the trace, the
summary line and `revati info`; signals sent to revati reach the program exactly once."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.integration.record_helpers import build_modes, q, run_cli

REAL_TIME = "def real():\n    return float(open('/proc/uptime').read().split()[0])\n"

# Counts the SIGINTs and SIGTERMs it gets until 1 s (real time) after the first one.
COUNTER = (
    "import signal\n" + REAL_TIME + "got = []\n"
    "signal.signal(signal.SIGINT, lambda s, f: got.append(s))\n"
    "signal.signal(signal.SIGTERM, lambda s, f: got.append(s))\n"
    "print('started=1', flush=True)\n"
    "t0 = real()\n"
    "while not got and real() - t0 < 30:\n"
    "    pass\n"
    "t1 = real()\n"
    "while real() - t1 < 1.0:\n"
    "    pass\n"
    "print(f'signals={len(got)}', flush=True)\n"
)

# Ignores SIGTERM and spins for 30 s of real time.
STUBBORN = (
    "import signal\n" + REAL_TIME + "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('started=1', flush=True)\n"
    "t0 = real()\n"
    "while real() - t0 < 30:\n"
    "    pass\n"
)


@pytest.fixture(scope="module")
def modes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_modes(tmp_path_factory.getbasetemp(), "-cudart", "shared")


def _record(tmp_path: Path, *cmd: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "t.duckdb"
    proc = subprocess.run(
        [sys.executable, "-m", "revati.cli", "record", "-o", str(out), "--", *cmd],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    return proc, out


def _start(out: Path, *cmd: str, **kw: object) -> subprocess.Popen[str]:
    """`revati record` in a session of its own (no terminal): a script or a service."""
    return subprocess.Popen(
        [sys.executable, "-m", "revati.cli", "record", "-o", str(out), "--", *cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kw,  # type: ignore[arg-type]
    )


def _cause(status: int) -> tuple[int | None, int | None, bool]:
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status), os.WCOREDUMP(status)
    return os.WEXITSTATUS(status), None, False


def test_every_process_says_how_and_when_it_ended(tmp_path: Path, modes: Path) -> None:
    proc, out = _record(tmp_path, str(modes), "ends")
    assert proc.returncode == 0, proc.stderr
    seen = dict(re.findall(r"(child\d|status\d)=(-?\d+)", proc.stdout))
    children = {int(seen[f"child{i}"]): int(seen[f"status{i}"]) for i in range(3)}
    rows = {
        r[0]: r[1:]
        for r in q(
            out,
            "SELECT pid, exit_code, exit_signal, core_dumped, exit_status, started_ns, ended_ns,"
            " ended_wall_ns FROM processes",
        )
    }
    assert len(rows) == 4
    for pid, status in children.items():
        code, sig, core = _cause(status)  # what the parent's own waitpid saw
        assert rows[pid][:4] == (code, sig, core, code if sig is None else 128 + sig)
    assert [_cause(s)[:2] for s in children.values()] == [(7, None), (None, 9), (None, 6)]
    for _, _, _, _, started, ended, wall in rows.values():
        assert ended is not None and ended >= started and wall > 0
    main = next(pid for pid in rows if pid not in children)
    assert rows[main][:4] == (0, None, False, 0)
    # children end in order, and each before the program
    ends = [rows[pid][5] for pid in children] + [rows[main][5]]
    assert ends == sorted(ends)
    pids = list(children)
    assert f"pid {pids[0]} exited with code 7" in proc.stderr
    assert f"pid {pids[1]} killed by SIGKILL" in proc.stderr
    assert f"pid {pids[2]} killed by SIGABRT" in proc.stderr
    assert "revati: program exited with code 0;" in proc.stderr
    # a forked child's kernels were registered by its parent, before the fork: named all the same
    in_children = q(
        out,
        f"""SELECT DISTINCT k.name FROM kernels k JOIN api_calls c USING (call_id)
            JOIN threads t USING (thread_id) WHERE t.pid IN ({", ".join(map(str, children))})""",
    )
    assert in_children == [("busy(float*, int)",)], in_children

    info = run_cli("info", str(out))
    assert info.returncode == 0, info.stderr
    assert "ended     program exited with code 0" in info.stdout
    assert re.search(rf"pid {pids[1]} killed by SIGKILL at [\d.,]+ ms virtual", info.stdout)
    as_json = json.loads(run_cli("info", str(out), "--json").stdout)
    endings = {p["pid"]: (p["exit_code"], p["exit_signal"]) for p in as_json["processes"]}
    assert endings[pids[0]] == (7, None) and endings[pids[1]] == (None, 9)


def test_a_signal_is_told_apart_from_an_exit_code(tmp_path: Path, modes: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    killed, out_killed = _record(tmp_path / "a", str(modes), "abort")
    exited, out_exited = _record(tmp_path / "b", "sh", "-c", "exit 134")
    assert killed.returncode == exited.returncode == 134
    assert q(out_killed, "SELECT exit_status, exit_code, exit_signal FROM run") == [(134, None, 6)]
    assert q(out_exited, "SELECT exit_status, exit_code, exit_signal FROM run") == [
        (134, 134, None)
    ]
    assert "revati: program killed by SIGABRT" in killed.stderr
    assert "revati: program exited with code 134" in exited.stderr
    assert "ended     program killed by SIGABRT" in run_cli("info", str(out_killed)).stdout
    assert "ended     program exited with code 134" in run_cli("info", str(out_exited)).stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_revati_alone_reaches_the_program(
    tmp_path: Path, modes: Path, sig: signal.Signals
) -> None:
    out = tmp_path / "t.duckdb"
    proc = _start(out, str(modes), "survive", "3000")  # ~30 s if nothing stops it
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started=1"
    time.sleep(0.3)
    t0 = time.monotonic()
    os.kill(proc.pid, sig)  # revati's pid only, not its process group
    _, err = proc.communicate(timeout=20)
    assert time.monotonic() - t0 < 15
    assert proc.returncode == 128 + sig
    assert f"revati: interrupted ({sig.name}): program killed by {sig.name};" in err
    assert q(out, "SELECT exit_signal, exit_code, interrupted_by FROM run") == [
        (sig, None, sig.name)
    ]
    assert q(out, "SELECT count(*) FROM processes WHERE ended_ns IS NULL") == [(0,)]
    info = run_cli("info", str(out))
    assert f"ended     interrupted by {sig.name}: program killed by {sig.name}" in info.stdout


@pytest.mark.parametrize("target", ["revati alone", "revati's process group"])
def test_the_program_gets_a_signal_exactly_once(tmp_path: Path, target: str) -> None:
    script = tmp_path / "count.py"
    script.write_text(COUNTER)
    out = tmp_path / "t.duckdb"
    proc = _start(out, sys.executable, str(script))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started=1"
    time.sleep(0.3)
    if target == "revati alone":
        os.kill(proc.pid, signal.SIGINT)
    else:
        os.killpg(proc.pid, signal.SIGINT)  # what `timeout -s INT` or a supervisor does
    rest, err = proc.communicate(timeout=40)
    assert rest.strip() == "signals=1", err
    assert q(out, "SELECT interrupted_by, exit_code FROM run") == [("SIGINT", 0)]


def test_ctrl_c_in_a_terminal_reaches_the_program_once(tmp_path: Path) -> None:
    """revati in the foreground of a (pseudo) terminal: the program shares its process group
    and gets the terminal's SIGINT itself; revati does not pass on a second one."""
    script = tmp_path / "count.py"
    script.write_text(COUNTER)
    out = tmp_path / "t.duckdb"
    master, slave = os.openpty()

    def controlling_terminal() -> None:  # the new session's terminal is the pty
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [sys.executable, "-m", "revati.cli", "record", "--quiet", "-o", str(out)]
        + ["--", sys.executable, str(script)],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "started=1"
        time.sleep(0.3)
        os.write(master, b"\x03")  # Ctrl-C
        rest, err = proc.communicate(timeout=40)
    finally:
        os.close(master)
    assert rest.strip() == "signals=1", err
    assert q(out, "SELECT interrupted_by FROM run") == [("SIGINT",)]


def test_the_third_interrupt_kills_a_program_that_ignores_them(tmp_path: Path) -> None:
    script = tmp_path / "stubborn.py"
    script.write_text(STUBBORN)
    out = tmp_path / "t.duckdb"
    proc = _start(out, sys.executable, str(script))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started=1"
    t0 = time.monotonic()
    for _ in range(3):
        time.sleep(0.3)
        os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert time.monotonic() - t0 < 15
    assert proc.returncode == 128 + signal.SIGKILL
    assert "SIGTERM received 3 times; killing the program" in err
    assert q(out, "SELECT exit_signal, interrupted_by FROM run") == [(9, "SIGTERM")]


def record_a_death_then_a_sleep(trace: Path, *argv: str) -> None:
    """Record a program whose child is SIGKILLed at a point the clock depends on and whose parent
    then sleeps 2 s: the run must end, the sleep by a jump, not by 2 s of waiting."""
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "revati.cli", "record", "--quiet", "-o", str(trace), "--", *argv],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("slept 2.0"), proc.stdout
    assert time.monotonic() - start < 60  # the 2 s sleep was a jump, not 2 s of waiting
    assert q(trace, "SELECT exit_signal FROM processes WHERE exit_signal IS NOT NULL") == [(9,)]


@pytest.mark.parametrize("held", ["announce", "stall"])
def test_a_process_killed_while_it_holds_off_jumps_does_not_stop_the_clock(
    tmp_path: Path, held: str
) -> None:
    """The coordinator jumps only once every announced wait has arrived and nobody is stalled; a
    process killed between announcing a wait and sending it never sends it, and one killed while
    stalled never ends the stall: the others' sleeps must still end by jumps."""
    trace = tmp_path / f"{held}.duckdb"
    script = Path(__file__).with_name("die_holding_the_clock.py")
    record_a_death_then_a_sleep(trace, sys.executable, str(script), held)
    jumps = q(trace, "SELECT count(*), max(to_ns - from_ns) FROM jumps")
    assert jumps[0][0] >= 1 and jumps[0][1] > 1.5e9, jumps


def test_a_process_killed_inside_a_clock_page_write_does_not_hang_the_run(tmp_path: Path) -> None:
    """A process killed holding the clock page's lock with `seq` odd: the others find the holder
    gone, end its write and go on (the parent's 2 s sleep is still a jump)."""
    repo = Path(__file__).parents[2]
    program = tmp_path / "die_holding_the_page_lock"
    subprocess.run(
        ["gcc", "-O1", "-Wall", "-I", str(repo / "revati" / "native"), "-o", str(program),
         str(repo / "tests" / "cuda" / "die_holding_the_page_lock.c")],
        check=True,
    )  # fmt: skip
    trace = tmp_path / "lock.duckdb"
    record_a_death_then_a_sleep(trace, str(program))
    assert q(trace, "SELECT count(*) FROM jumps WHERE to_ns - from_ns > 1.5e9") == [(1,)]
