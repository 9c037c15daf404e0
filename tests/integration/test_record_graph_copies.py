"""CUDA-graph replays of a decode step with copies and memsets (tests/cuda/graph_copies.cu): each
launch after the first is one row of `graph_replays`, the views hold the kernels, copies and
memsets the node-by-node launches give, and the copies still move their bytes on every replay."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.record_helpers import REPO, build_cuda, q, run_cli
from tests.integration.test_record import assert_time_invariants, values

SOURCE = REPO / "tests" / "cuda" / "graph_copies.cu"
REPLAYS = 40

# Each operation relative to its graph launch (absolute times move with the host time the
# program spends between launches, addresses with the process's address layout): everything else
# must be the same in both traces.
_RELATIVE = "start_ns - launch_ns AS start, end_ns - launch_ns AS end, model, duration_source"
RELATIVE = {
    "kernels": f"""SELECT kernel_id, graph_id, call_id, device_id, stream_id, name, grid_x, block_x,
                   {_RELATIVE} FROM kernels ORDER BY kernel_id""",
    "copies": f"""SELECT copy_id, call_id, device_id, stream_id, kind, bytes, {_RELATIVE}
                  FROM copies ORDER BY copy_id""",
    "memsets": f"""SELECT memset_id, call_id, device_id, stream_id, bytes, value, {_RELATIVE}
                   FROM memsets ORDER BY memset_id""",
}


@pytest.fixture(scope="module")
def graph_copies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_cuda(tmp_path_factory.getbasetemp(), SOURCE, "-cudart", "shared")


def _record(tmp_path: Path, program: Path, *extra: str) -> tuple[Path, dict[str, str]]:
    out = tmp_path / f"t{len(extra)}.duckdb"
    proc = run_cli("record", "--quiet", "-o", str(out), *extra, "--", str(program), str(REPLAYS))
    assert proc.returncode == 0, proc.stderr
    return out, values(proc.stdout)


def test_replays_with_copies_and_memsets_are_one_row_each(
    tmp_path: Path, graph_copies: Path
) -> None:
    replayed, got = _record(tmp_path, graph_copies)
    sent, got_sent = _record(tmp_path, graph_copies, "--graph-nodes-every-launch")
    # the copies and memsets moved the step's bytes on every launch, replayed or not
    assert got["data_ok"] == got_sent["data_ok"] == str(REPLAYS)
    assert q(replayed, "SELECT count(*) FROM graph_replays") == [(REPLAYS - 1,)]
    assert q(sent, "SELECT count(*) FROM graph_replays") == [(0,)]
    stored = "SELECT (SELECT count(*) FROM copy_rows), (SELECT count(*) FROM memset_rows)"
    assert q(replayed, stored) == [(4, 2)]  # the first launch's
    for table, query in RELATIVE.items():
        rows = q(replayed, query)
        assert rows == q(sent, query), table
        assert len(rows) == REPLAYS * {"kernels": 3, "copies": 4, "memsets": 2}[table]
    for trace in (replayed, sent):  # each launch copies between the same addresses
        assert q(trace, "SELECT count(DISTINCT (src, dst)) FROM copies") == [(4,)]
        assert q(trace, "SELECT count(DISTINCT dst) FROM memsets") == [(2,)]
    # every launch took the same virtual time on the device (its critical path)
    spans = """SELECT DISTINCT max(end_ns) - min(start_ns) FROM (
                   SELECT launch_ns, start_ns, end_ns FROM kernels UNION ALL
                   SELECT launch_ns, start_ns, end_ns FROM copies UNION ALL
                   SELECT launch_ns, start_ns, end_ns FROM memsets) GROUP BY launch_ns"""
    assert len(q(replayed, spans)) == 1 and q(replayed, spans) == q(sent, spans)
    # the 8 MiB copy runs on the branch's stream, beside the small copies of the main one
    assert q(replayed, "SELECT count(DISTINCT stream_id) FROM copies") == [(2,)]
    for trace in (replayed, sent):
        assert_time_invariants(trace)
