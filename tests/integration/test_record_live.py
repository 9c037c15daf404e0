"""A trace while it is being recorded: readers name the recorder instead of calling the file
corrupt, and `revati info` shows (and with --follow keeps showing) live snapshots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from revati.recorder.reader import open_trace

from revati.errors import RevatiTraceError
from tests.integration.record_helpers import build_modes, run_cli


@pytest.fixture(scope="module")
def modes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_modes(tmp_path_factory.getbasetemp(), "-cudart", "shared")


def start_recording(out: Path, modes: Path, steps: int = 400) -> subprocess.Popen[str]:
    """`revati record` of `survive STEPS` (~STEPS x 10 ms of real time), once it runs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "revati.cli", "record", "--quiet", "-o", str(out)]
        + ["--", str(modes), "survive", str(steps)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started=1"
    return proc


def test_a_trace_being_recorded_names_its_recorder(tmp_path: Path, modes: Path) -> None:
    out = tmp_path / "t.duckdb"
    proc = start_recording(out, modes)
    try:
        with pytest.raises(RevatiTraceError) as err:
            open_trace(out)
        assert f"being recorded right now by pid {proc.pid}" in str(err.value)
        assert "corrupt" not in str(err.value)
        export = run_cli("export", str(out), "-o", str(tmp_path / "t.json"))
        assert export.returncode == 3
        assert f"being recorded right now by pid {proc.pid}" in export.stderr
        assert "revati info --follow" in export.stderr
    finally:
        proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert open_trace(out).counts()["kernels"] == 400  # complete once the run has ended


def test_info_shows_a_live_snapshot(tmp_path: Path, modes: Path) -> None:
    out = tmp_path / "t.duckdb"
    proc = start_recording(out, modes)
    try:
        info = run_cli("info", str(out))
    finally:
        proc.communicate(timeout=120)
    assert info.returncode == 0, info.stderr
    assert f"ended     not yet: being recorded by pid {proc.pid} (a live snapshot)" in info.stdout
    kernels = int(info.stdout.split("kernels ")[1].split(",")[0].replace(",", ""))
    assert 0 < kernels < 400


def test_info_follows_a_recording_until_it_ends(tmp_path: Path, modes: Path) -> None:
    out = tmp_path / "t.duckdb"
    proc = start_recording(out, modes)
    follow = run_cli("info", "--follow", "--json", "--interval", "0.5", str(out))
    proc.communicate(timeout=120)
    assert follow.returncode == 0, follow.stderr
    shots = [json.loads(line) for line in follow.stdout.splitlines()]
    live = [s for s in shots if "live" in s]
    assert len(live) >= 2, [s["counts"]["kernels"] for s in shots]
    assert all(s["live"]["recorder_pid"] == proc.pid for s in live)
    kernels = [s["counts"].get("kernels", 0) for s in shots]
    assert kernels == sorted(kernels) and kernels[0] < 400  # rows land as it runs
    final = shots[-1]
    assert "live" not in final and final["counts"]["kernels"] == 400
    assert final["run"]["ending"] == "program exited with code 0"
    leftovers = {p.name for p in tmp_path.iterdir()}
    assert leftovers == {"t.duckdb"}, leftovers  # no lock, request or snapshot left behind
