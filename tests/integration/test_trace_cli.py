"""`revati synth`, `info`, `export` as a user runs them, and every kind of bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import pytest

from tests.conftest import run_cli


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "synth.duckdb"
    proc = run_cli("synth", "-o", str(path), "--events", "3000", "--seed", "3", check=True)
    assert "events, 4 ranks" in proc.stdout
    return path


def _one_line_error(proc, exit_code: int, *needles: str) -> None:
    assert proc.returncode == exit_code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("revati: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0]


def test_info_text_and_json(trace: Path) -> None:
    text = run_cli("info", str(trace), check=True).stdout
    assert "ranks     0 (pid" in text and "ncclDevKernel_AllReduce_Sum_bf16_RING_LL" in text
    info = json.loads(run_cli("info", str(trace), "--json", check=True).stdout)
    assert [r["rank"] for r in info["ranks"]] == [0, 1, 2, 3]
    assert info["counts"]["barriers"] > 0 and info["counts"]["jumps"] > 0
    assert info["virtual_duration_ns"] > 0
    shares = [k["share"] for k in info["top_kernels"]]
    assert shares == sorted(shares, reverse=True) and len(shares) == 10
    models = info["model_shares"]  # every predicted op's time, by the model that predicted it
    assert abs(sum(models.values()) - 1.0) < 1e-9 and {"gemm", "collective"} <= set(models)
    assert list(models.values()) == sorted(models.values(), reverse=True)
    assert "predicted 0.0% of device time by a fallback model (gemm " in text


def test_export_chrome_loads_and_links_launches(trace: Path, tmp_path: Path) -> None:
    out = tmp_path / "trace.json.gz"
    run_cli("export", str(trace), "--format", "chrome", "-o", str(out), check=True)
    with gzip.open(out, "rt") as f:
        doc = json.load(f)
    events = doc["traceEvents"]
    kernels = [e for e in events if e.get("cat") == "kernel"]
    assert {e["pid"] for e in kernels} == {0, 1, 2, 3}  # pid = rank
    starts = {e["id"]: e for e in events if e["ph"] == "s"}
    ends = [e for e in events if e["ph"] == "f"]
    assert ends and all(e["id"] in starts for e in ends)
    assert all(starts[e["id"]]["ts"] <= e["ts"] for e in ends)  # launch before kernel start
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and "name" in e["args"]}
    assert "rank 0 (pid 4000)" in names and "virtual clock" in names


def test_output_is_never_clobbered_without_force(trace: Path, tmp_path: Path) -> None:
    out = tmp_path / "keep.json"
    out.write_text("precious")
    proc = run_cli("export", str(trace), "-o", str(out))
    _one_line_error(proc, 2, "already exists", "--force")
    assert out.read_text() == "precious"
    proc = run_cli("synth", "-o", str(out))
    _one_line_error(proc, 2, "already exists")
    assert out.read_text() == "precious"
    run_cli("export", str(trace), "-o", str(out), "--force", check=True)
    assert json.loads(out.read_text())["traceEvents"]


def _bad_inputs(tmp_path: Path, good: Path) -> dict[str, tuple[Path, str]]:
    text = tmp_path / "notes.duckdb"
    text.write_text("these are not the bytes you are looking for\n" * 10)
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE t (x INTEGER)")
    con.close()
    future = tmp_path / "future.duckdb"
    future.write_bytes(good.read_bytes())
    con = duckdb.connect(str(future))
    con.execute("UPDATE revati_meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    truncated = tmp_path / "truncated.duckdb"
    data = good.read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    gutted = tmp_path / "gutted.duckdb"
    gutted.write_bytes(data)
    con = duckdb.connect(str(gutted))
    con.execute("DROP VIEW kernels")
    con.close()
    return {
        "missing": (tmp_path / "nope.duckdb", "no such file"),
        "directory": (tmp_path, "is a directory"),
        "text": (text, "not a DuckDB file"),
        "other-duckdb": (other, "not a revati trace"),
        "schema-version": (future, "schema version 99"),
        "truncated": (truncated, "truncated or corrupt"),
        "missing-table": (gutted, "missing tables kernels"),
    }


@pytest.mark.parametrize("command", ["info", "export"])
def test_bad_inputs_get_one_clear_line(command: str, trace: Path, tmp_path: Path) -> None:
    cases = _bad_inputs(tmp_path, trace)
    if command == "export":  # the same reader path; keep the two cases that reach furthest
        cases = {k: cases[k] for k in ("truncated", "schema-version")}
    for label, (path, message) in cases.items():
        before = path.read_bytes() if path.is_file() else None
        args = [command, str(path)]
        if command == "export":
            args += ["-o", str(tmp_path / f"{label}.json")]
        proc = run_cli(*args)
        _one_line_error(proc, 3, message, path.name)
        if before is not None:
            assert path.read_bytes() == before, f"{label}: input was modified"
        assert not (tmp_path / f"{label}.json").exists()


def test_synth_rejects_bad_sizes(tmp_path: Path) -> None:
    _one_line_error(
        run_cli("synth", "-o", str(tmp_path / "x.duckdb"), "--events", "5"), 2, "--events"
    )
    _one_line_error(
        run_cli("synth", "-o", str(tmp_path / "x.duckdb"), "--ranks", "0"), 2, "--ranks"
    )
    _one_line_error(run_cli("synth", "-o", str(tmp_path / "no" / "x.duckdb")), 2, "no such folder")
