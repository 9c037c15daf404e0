"""Host channels under `revati record`: a jump never passes a message already on its way.

A sender process sleeps 2 s of virtual time, writes its virtual clock into a channel and at
once sleeps 10 s; the receiver blocks on the channel (read, recv, accept, sem_wait) with no
timeout. The receiver must leave `running` while it waits (so the clock jumps over the sleeps:
the run takes far less wall time than its 12 s of virtual time), and must take part in the
two-phase jump (so the 10 s jump is vetoed until it has the message: it receives it at the
send time, `lag` ~0, never ~10 s later). Python programs (tests/integration/host_channels.py)
and C programs (tests/cuda/host_channels.c, built with gcc at test time)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from revati.replay.invariants import violations

from tests.integration.record_helpers import REPO, q, run_cli

PY_PROGRAM = REPO / "tests" / "integration" / "host_channels.py"
C_SOURCE = REPO / "tests" / "cuda" / "host_channels.c"
LAG_LIMIT_S = 0.5  # real-time slack on a loaded 2-core machine; a passed message lags ~10 s


@pytest.fixture(scope="module")
def c_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("channels") / "host_channels"
    cmd = ["gcc", "-O2", "-D_FORTIFY_SOURCE=2", "-Wall", str(C_SOURCE), "-o", str(out)]
    subprocess.run([*cmd, "-lpthread"], check=True, capture_output=True)
    return out


def _record(tmp_path: Path, *cmd: str) -> tuple[dict[str, str], Path]:
    trace = tmp_path / "t.duckdb"
    proc = run_cli("record", "--quiet", "-o", str(trace), "--", *cmd, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dict(line.split("=", 1) for line in proc.stdout.split() if "=" in line), trace


def _assert_message_not_passed(v: dict[str, str], trace: Path, waited_s: float) -> None:
    assert waited_s <= float(v["waited"]) < waited_s + 1.0
    assert 0 <= float(v["lag"]) < LAG_LIMIT_S, "a jump passed the message on its way"
    (virtual_s, wall_s) = q(trace, "SELECT virtual_end_ns / 1e9, wall_ns / 1e9 FROM run")[0]
    assert virtual_s >= 12.0 and wall_s < 8.0  # the receiver did not count as running
    assert set(violations(trace).values()) == {0}
    assert q(trace, "SELECT count(*) FROM jumps")[0][0] >= 2


@pytest.mark.parametrize("mode", ["socketpair", "pipe", "eventfd", "semaphore"])
def test_python_receiver_gets_the_message_at_its_send_time(tmp_path: Path, mode: str) -> None:
    v, trace = _record(tmp_path, sys.executable, str(PY_PROGRAM), mode)
    _assert_message_not_passed(v, trace, 2.0)


def test_python_tcp_loopback_request_and_reply(tmp_path: Path) -> None:
    """Client and server on TCP loopback: blocking accept and recv on both sides, 20 ms of host
    work in the server; the reply reaches the client before the server's 10 s sleep passes."""
    v, trace = _record(tmp_path, sys.executable, str(PY_PROGRAM), "tcp")
    assert 0.02 <= float(v["waited"]) < 1.0  # at least the server's host work
    assert 0 <= float(v["lag"]) < LAG_LIMIT_S
    (virtual_s, wall_s) = q(trace, "SELECT virtual_end_ns / 1e9, wall_ns / 1e9 FROM run")[0]
    assert virtual_s >= 12.0 and wall_s < 8.0
    assert set(violations(trace).values()) == {0}
    fd_waits = q(trace, "SELECT count(*) FROM syncs WHERE kind = 'poll'")[0][0]
    assert fd_waits >= 3  # accept, the server's recv, the client's recv


@pytest.mark.parametrize("mode", ["pipe", "socketpair", "eventfd", "semaphore"])
def test_c_receiver_gets_the_message_at_its_send_time(
    tmp_path: Path, c_program: Path, mode: str
) -> None:
    v, trace = _record(tmp_path, str(c_program), mode)
    _assert_message_not_passed(v, trace, 2.0)
    names = {n for (n,) in q(trace, "SELECT DISTINCT name FROM api_calls")}
    expected = {"pipe": "read", "socketpair": "recv", "eventfd": "read", "semaphore": "sem_wait"}
    assert expected[mode] in names


def test_c_receive_timeout_passes_in_virtual_time(tmp_path: Path, c_program: Path) -> None:
    """SO_RCVTIMEO of 3 s with nobody sending: EAGAIN after exactly 3 s of virtual time, in far
    less wall time."""
    v, trace = _record(tmp_path, str(c_program), "rcvtimeo")
    assert v["recv"] == "-1" and v["errno"] == "EAGAIN"
    assert 3.0 <= float(v["waited"]) < 3.05
    assert q(trace, "SELECT wall_ns < 2.5e9 FROM run") == [(True,)]
    assert set(violations(trace).values()) == {0}
