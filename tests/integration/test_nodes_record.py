"""`revati record --nodes M --devices N`: an 8-rank NCCL program (tests/cuda/nccl_script.c) on
one node of 8 GPUs and on two nodes of 4: the same all-reduce within a node runs on NVLink,
across nodes on the network, and the trace says which."""

from __future__ import annotations

from pathlib import Path

from tests.integration.record_helpers import q, run_cli
from tests.integration.test_multirank_random import script_program  # noqa: F401 (fixture)

OPS = "ar:16777216:0:0:0"  # 64 MiB per rank, a virtual buffer


def _allreduce(tmp_path: Path, binary: Path, *flags: str) -> tuple[int, str]:
    trace = tmp_path / f"n{'-'.join(flags)}.duckdb"
    cli = ("record", "--quiet", *flags, "-o", str(trace), "--", str(binary), "8", "2", OPS)
    r = run_cli(*cli, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    ((duration, model),) = q(
        trace,
        "SELECT end_ns - release_ns, model FROM barriers WHERE collective = 'allreduce'",
    )
    return int(duration), str(model)


def test_an_allreduce_across_nodes_takes_the_network(tmp_path: Path, script_program: Path) -> None:  # noqa: F811
    intra, intra_model = _allreduce(tmp_path, script_program, "--devices", "8")
    inter, inter_model = _allreduce(tmp_path, script_program, "--devices", "4", "--nodes", "2")
    assert "pernode" not in intra_model
    assert inter_model.endswith("dgx/4pernode")
    assert inter > 3 * intra  # 50 GB/s of network per GPU against 450 GB/s of NVLink


def test_nodes_must_be_positive(tmp_path: Path) -> None:
    r = run_cli("record", "--nodes", "0", "-o", str(tmp_path / "t.duckdb"), "--", "true")
    assert r.returncode != 0
    assert "--nodes" in r.stderr and len(r.stderr.strip().splitlines()) == 1
