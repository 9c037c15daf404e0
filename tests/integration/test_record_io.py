"""poll/select/epoll in virtual time, with the two-phase jump (a Python program, no nvcc needed)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from tests.integration.record_helpers import q, run_cli

PROGRAM = textwrap.dedent("""
    import asyncio, select, socket, threading, time
    t0 = time.monotonic()
    select.select([], [], [], 5)                  # a select timeout: virtual 5 s
    t1 = time.monotonic()
    asyncio.run(asyncio.sleep(10))                # epoll_wait timeout: virtual 10 s
    t2 = time.monotonic()
    a, b = socket.socketpair()
    def writer():
        time.sleep(3)
        b.send(b"x")
    threading.Thread(target=writer).start()
    ready, _, _ = select.select([a], [], [], None)  # no timeout: woken by the fd at virtual +3 s
    t3 = time.monotonic()
    print(f"select_s={t1 - t0:.6f}")
    print(f"asyncio_s={t2 - t1:.6f}")
    print(f"fd_s={t3 - t2:.6f}")
    print(f"ready={len(ready)}")
""")


def test_io_waits_take_virtual_time(tmp_path: Path) -> None:
    script = tmp_path / "io_waits.py"
    script.write_text(PROGRAM)
    out = tmp_path / "t.duckdb"
    proc = run_cli("record", "-o", str(out), "--", sys.executable, str(script), timeout=120)
    assert proc.returncode == 0, proc.stderr
    v = dict(line.split("=", 1) for line in proc.stdout.splitlines())
    assert 5.0 <= float(v["select_s"]) < 5.05
    assert 10.0 <= float(v["asyncio_s"]) < 10.05
    assert 3.0 <= float(v["fd_s"]) < 3.05  # the jump to the writer's wake-up was not vetoed
    assert v["ready"] == "1"
    wall_ns, virtual_ns = q(out, "SELECT wall_ns, virtual_end_ns FROM run")[0]
    assert virtual_ns >= 18e9 and wall_ns < 10e9
    kinds = {k for (k,) in q(out, "SELECT DISTINCT kind FROM syncs")}
    assert {"poll", "sleep"} <= kinds
    # the fd wait had no deadline: a thread woken by an fd is not woken by the clock
    assert (
        q(out, "SELECT count(*) FROM syncs WHERE kind = 'poll' AND deadline_ns IS NULL")[0][0] >= 1
    )
