"""`revati compare` on emulated, replayed and imported traces.

A trace compared with a replay of itself in which one kernel family takes longer must put that
family first; host time is unchanged by a replay, so the split must show no host difference.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from revati.recorder.reader import open_trace
from revati.recorder.synth import synthesize
from revati.replay.report import compare_report
from revati.replay.session import replay_trace

from tests.integration.record_helpers import run_cli
from tests.replay_checks import differing_tables


def _report(a: Path, b: Path) -> dict:
    proc = run_cli("compare", str(a), str(b), "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_perturbed_family_is_found_in_a_synthetic_replay(tmp_path: Path) -> None:
    parent = tmp_path / "tp.duckdb"
    synthesize(parent, ranks=4, events=20_000, seed=5, small_blocks=True)
    replay_trace(parent, tmp_path / "slow.duckdb", scale={"attention": 1.6})
    r = _report(parent, tmp_path / "slow.duckdb")
    assert r["alignment"]["extra"] == r["alignment"]["missing"] == 0
    assert r["families"][0]["family"] == "attention"
    assert r["families"][0]["error_pct"] < -30  # emulated attention is 1/1.6 of the "real"
    assert "flash" in r["kernel_names"][0]["name"]
    split = {p["part"]: p for p in r["split"]}
    assert split["host"]["delta_ns"] == 0 and split["device"]["delta_ns"] < 0
    assert r["total"]["delta_ns"] < 0
    assert r["steps"]["compared"] > 0 and r["steps"]["mean_abs_error_pct"] > 0
    assert r["serving"]["emulated"]["ttft_ns"] < r["serving"]["real"]["ttft_ns"]


def test_perturbed_family_is_found_in_a_recording(tmp_path: Path) -> None:
    trace = tmp_path / "ex.duckdb"
    proc = run_cli("record", "-o", str(trace), "--example", timeout=120)
    assert proc.returncode == 0, proc.stderr
    slow = tmp_path / "slow.duckdb"
    proc = run_cli("replay", str(trace), "-o", str(slow), "--scale", "memcpy=4")
    assert proc.returncode == 0, proc.stderr
    r = _report(trace, slow)
    assert r["families"][0]["family"] == "memcpy"
    assert r["kernel_names"][0]["name"].startswith("memcpy")
    assert r["serving"] is None  # no requests in this trace
    text = run_cli("compare", str(trace), str(slow))
    assert text.returncode == 0 and "kernel families" in text.stdout


def test_compare_against_an_imported_kineto_trace(tmp_path: Path) -> None:
    """The "real" side: a replay with slower elementwise kernels, exported to Chrome/Kineto
    JSON and imported back (source 'real', no API calls, other stream ids)."""
    trace = tmp_path / "ex.duckdb"
    assert run_cli("record", "-o", str(trace), "--example", timeout=120).returncode == 0
    replay_trace(trace, tmp_path / "slow.duckdb", scale={"elementwise": 1.5})
    assert run_cli("export", str(tmp_path / "slow.duckdb"), "-o", str(tmp_path / "k.json"))
    real = tmp_path / "real.duckdb"
    proc = run_cli("import", "kineto", str(tmp_path / "k.json"), "-o", str(real))
    assert proc.returncode == 0, proc.stderr
    with duckdb.connect(str(real), read_only=True) as con:
        assert con.execute("SELECT source FROM run").fetchall() == [("real",)]
    with open_trace(trace) as e, open_trace(real) as r:
        report = compare_report(e, r)
    assert report["alignment"]["matched"] == 100
    assert report["families"][0]["family"] == "elementwise"
    assert abs(report["families"][0]["error_pct"] - (100 / 1.5 - 100)) < 1
    assert report["kernel_names"][0]["name"].startswith("vector_add")
    # an imported trace (no API calls, no syncs) replays too: identity, and onto another device
    replay_trace(real, tmp_path / "same.duckdb")
    assert differing_tables(real, tmp_path / "same.duckdb") == {}
    s = replay_trace(real, tmp_path / "a100.duckdb", device="a100-sxm-80gb")
    assert s.ops == 100 and s.end_ns != s.parent_end_ns


def test_compare_refuses_a_missing_trace(tmp_path: Path) -> None:
    proc = run_cli("compare", str(tmp_path / "a.duckdb"), str(tmp_path / "b.duckdb"))
    assert proc.returncode == 3 and "no such file" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_serving_figures_come_from_a_requests_table_when_there_is_one(tmp_path: Path) -> None:
    from revati.replay.report import serving_figures

    trace = tmp_path / "s.duckdb"
    synthesize(trace, ranks=1, events=2_000, small_blocks=True)
    with open_trace(trace) as r:
        from_markers = serving_figures(r)
    assert from_markers["ttft_ns"] is not None
    with duckdb.connect(str(trace)) as con:
        con.execute(
            "INSERT INTO requests (request_id, arrival_ns, first_token_ns, end_ns, output_tokens,"
            " status) VALUES (0, 0, 1000, 11000, 11, 'ok'), (1, 500, 2500, 22500, 21, 'ok'), "
            "(2, 600, NULL, 700, 0, 'failed')"  # failures count in the span only
        )
    with open_trace(trace) as r:
        f = serving_figures(r)
    assert f == {
        "ttft_ns": 1500.0,
        "tpot_ns": 1000.0,
        "requests": 2,
        "throughput_rps": 2 / (22500 / 1e9),
    }
