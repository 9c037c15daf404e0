"""A child that Python starts with `subprocess` or `multiprocessing`'s spawn (vfork, then exec)
counts as running from the start: while its new image loads, before the shim in it joins the
run, the clock must not jump through a parent's long timed wait."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.integration.record_helpers import run_cli

# The parent waits up to 100 s for a byte its child writes once started; the child's start-up
# (exec, loading Python and the shim) takes well under a second of wall time.
PROGRAM = """
import select, subprocess, sys, time
for _ in range(ROUNDS):
    child = subprocess.Popen([sys.executable, "-c", "import os; os.write(1, b'x')"],
                             stdout=subprocess.PIPE)
    started = time.monotonic()
    ready, _, _ = select.select([child.stdout], [], [], 100)
    print("waited", time.monotonic() - started, bool(ready))
    child.wait()
"""
ROUNDS = 5


def test_a_long_timed_wait_does_not_jump_through_a_childs_start_up(tmp_path: Path) -> None:
    program = PROGRAM.replace("ROUNDS", str(ROUNDS))
    proc = run_cli("record", "--quiet", "-o", str(tmp_path / "t.duckdb"), "--",
                   sys.executable, "-c", program, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    waits = [line.split() for line in proc.stdout.splitlines() if line.startswith("waited")]
    assert len(waits) == ROUNDS, proc.stdout
    for _, seconds, ready in waits:
        assert ready == "True" and float(seconds) < 30, proc.stdout
