"""What a CUDA graph holding group barrier kernels costs (run:
`pytest tests/bench/test_graph_barrier_bench.py -s`).

Two ranks (tests/cuda/ipc_allreduce.cu, `bench`) each launch a graph of NODES kernels captured
on one stream, every EVERY-th of them vLLM's custom all-reduce (a barrier of both ranks), LAUNCHES
times with a sync after each; replayed in segments between the barriers, and sent node by node
at every launch (`--graph-nodes-every-launch`), and the same graph without the all-reduces.
Printed: revati's wall time for the run and per launch, and the virtual time. Asserted: every
kernel and barrier is in the trace, never a speed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.integration.record_helpers import REPO, build_cuda, q, run_cli

SOURCE = REPO / "tests" / "cuda" / "ipc_allreduce.cu"
NODES, EVERY, LAUNCHES = 500, 50, 200
pytestmark = pytest.mark.bench


@pytest.mark.parametrize("every", [EVERY, 0], ids=["barriers", "none"])
@pytest.mark.parametrize("mode", ["replayed", "sent"])
def test_graph_with_barriers_launch_cost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, every: int
) -> None:
    program = build_cuda(tmp_path.parent, SOURCE, "-cudart", "shared")
    trace = tmp_path / "t.duckdb"
    options = ["--graph-nodes-every-launch"] if mode == "sent" else []
    for name, value in {"NODES": NODES, "EVERY": every, "LAUNCHES": LAUNCHES}.items():
        monkeypatch.setenv(name, str(value))
    t0 = time.monotonic()
    proc = run_cli("record", "--quiet", "-o", str(trace), "--devices", "2", *options,
                   "--", str(program), "bench", timeout=600)  # fmt: skip
    wall = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    barriers = LAUNCHES * (NODES // every) if every else 0
    kernels = 2 * LAUNCHES * NODES  # a barrier is one kernel on each rank
    assert q(trace, "SELECT count(*) FROM kernels") == [(kernels,)]
    assert q(trace, "SELECT count(*) FROM barriers WHERE collective = 'allreduce'") == [(barriers,)]
    [(virtual_ns,)] = q(trace, "SELECT virtual_end_ns FROM run")
    load = "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    print(
        f"\ngraph of {NODES} kernels, {NODES // every if every else 0} of them all-reduces, "
        f"2 ranks x {LAUNCHES} launches, {mode}: {wall:.2f} s wall "
        f"({wall / LAUNCHES * 1e3:.2f} ms per launch of both ranks), virtual "
        f"{virtual_ns / 1e6:.0f} ms; {load}"
    )
