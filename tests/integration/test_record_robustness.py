"""The traced program always comes first: engine death, Ctrl-C (skipped without nvcc)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from revati.recorder.reader import open_trace

from revati.engine.session import STALE_RUN_DIR_S
from tests.integration.record_helpers import build_modes, run_cli


@pytest.fixture(scope="module")
def modes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_modes(tmp_path_factory.getbasetemp(), "-cudart", "shared")


def _start(out: Path, *cmd: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "revati.cli", "record", "--quiet", "-o", str(out), "--", *cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_started(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "started=1", line


def test_program_survives_the_death_of_the_engine(tmp_path: Path, modes: Path) -> None:
    out = tmp_path / "t.duckdb"
    proc = _start(out, str(modes), "survive", "100")
    _wait_started(proc)
    time.sleep(0.3)
    proc.kill()  # the coordinator dies; the program keeps running in real time
    proc.wait()
    rest = proc.stdout.read()  # the program still holds the pipe: EOF when it exits
    err = proc.stderr.read()
    assert "survived=1" in rest
    assert err.count("lost the revati coordinator") == 1
    # the trace was never renamed into place: the reader says where what was written is
    refused = run_cli("info", str(out))
    assert refused.returncode == 3
    partial = Path(refused.stderr.split(" is in ")[1].split(" (open that")[0])
    assert f"its recorder (pid {proc.pid}) was killed before finishing" in refused.stderr
    info = run_cli("info", str(partial))
    assert info.returncode == 0, info.stderr
    assert "ended     unknown: revati stopped before the program ended" in info.stdout


def test_ctrl_c_reaches_the_program_and_the_trace_is_kept(tmp_path: Path, modes: Path) -> None:
    out = tmp_path / "t.duckdb"
    proc = _start(out, str(modes), "survive", "300")
    _wait_started(proc)
    time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT
    counts = open_trace(out).counts()
    assert counts["kernels"] >= 1
    with duckdb.connect(str(out), read_only=True) as con:
        assert con.execute("SELECT exit_status FROM run").fetchone() == (130,)


def test_ctrl_c_interrupts_a_wait_on_fds(tmp_path: Path) -> None:
    script = tmp_path / "wait_forever.py"
    script.write_text(
        "import select, socket, sys\n"
        "a, b = socket.socketpair()\n"
        "print('started=1', flush=True)\n"
        "try:\n"
        "    select.select([a], [], [], None)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted=1', flush=True)\n"
        "    sys.exit(3)\n"
    )
    proc = _start(tmp_path / "t.duckdb", sys.executable, str(script))
    _wait_started(proc)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert out.strip() == "interrupted=1" and proc.returncode == 3


def test_a_launching_program_notices_the_death_of_the_engine(tmp_path: Path, modes: Path) -> None:
    """Nobody drains the ring once the engine is gone: the program must notice (not wait ~5 s on
    every full ring), say so once and run on in real time, untraced."""
    proc = _start(tmp_path / "t.duckdb", str(modes), "launchloop", "2000")
    _wait_started(proc)
    run_dir = _run_dir_of(proc.pid)
    time.sleep(0.3)
    proc.kill()
    proc.wait()
    t0 = time.monotonic()
    rest = proc.stdout.read()  # EOF when the program exits
    err = proc.stderr.read()
    assert "finished=1" in rest
    assert time.monotonic() - t0 < 10, rest
    assert err.count("lost the revati coordinator") == 1, err
    # kill -9 left the run folder behind; a recording once it has aged removes it
    assert run_dir.is_dir()
    aged = time.time() - STALE_RUN_DIR_S - 1
    os.utime(run_dir, (aged, aged))
    assert (
        run_cli("record", "--quiet", "-o", str(tmp_path / "next.duckdb"), "--example").returncode
        == 0
    )
    assert not run_dir.exists()


def _run_dir_of(revati_pid: int) -> Path:
    """The run folder of a running `revati record` (from its program's environment)."""
    children = Path(f"/proc/{revati_pid}/task/{revati_pid}/children").read_text().split()
    env = Path(f"/proc/{children[0]}/environ").read_bytes().split(b"\0")
    folder = next(e for e in env if e.startswith(b"REVATI_RUN_DIR="))
    return Path(folder.split(b"=", 1)[1].decode())


def test_a_thread_waiting_on_the_engine_resumes_when_it_dies(tmp_path: Path) -> None:
    """A thread blocked in an intercepted wait with no deadline (select on a socket) while the
    engine dies: it falls back to the real wait and returns when the data comes."""
    script = tmp_path / "waiter.py"
    script.write_text(
        "import select, socket, threading\n"
        "def real():\n"
        "    return float(open('/proc/uptime').read().split()[0])\n"
        "a, b = socket.socketpair()\n"
        "woke = []\n"
        "t = threading.Thread(target=lambda: woke.append(select.select([a], [], [], None)))\n"
        "t.start()\n"
        "print('started=1', flush=True)\n"
        "t0 = real()\n"
        "while real() - t0 < 1.5:\n"
        "    pass\n"
        "b.send(b'x')\n"
        "t.join()\n"
        "print(f'woke={len(woke)}', flush=True)\n"
    )
    proc = _start(tmp_path / "t.duckdb", sys.executable, str(script))
    _wait_started(proc)
    time.sleep(0.3)
    proc.kill()
    proc.wait()
    rest = proc.stdout.read()
    err = proc.stderr.read()
    assert rest.strip() == "woke=1"
    assert err.count("lost the revati coordinator") == 1, err
