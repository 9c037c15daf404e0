"""The shim built with UndefinedBehaviorSanitizer (REVATI_SANITIZE=undefined) runs the record
modes without a report: a report stops the program (-fno-sanitize-recover) and names the line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.record_helpers import REPO, build_cuda, build_modes

# graphs (capture, hand-built, forked capture), streams, memory, host functions, threads, fork
MODES = ("graph", "graph_manual", "graph_fork", "streams", "memory", "hostfn", "threads", "fork")


@pytest.fixture(scope="module")
def modes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_modes(tmp_path_factory.getbasetemp(), "-cudart", "shared")


@pytest.mark.parametrize("mode", MODES)
def test_record_mode_has_no_undefined_behaviour(tmp_path: Path, modes: Path, mode: str) -> None:
    env = {**os.environ, "REVATI_SANITIZE": "undefined"}
    cmd = [
        sys.executable,
        "-m",
        "revati.cli",
        "record",
        "--quiet",
        "-o",
        str(tmp_path / "t.duckdb"),
    ]
    proc = subprocess.run(
        [*cmd, "--", str(modes), mode], env=env, capture_output=True, text=True, timeout=300
    )
    assert "runtime error" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr


def test_graph_replays_that_move_bytes_have_no_undefined_behaviour(tmp_path: Path) -> None:
    """Replays of a graph of kernels, copies and memsets (the shim moves their bytes)."""
    program = build_cuda(tmp_path, REPO / "tests" / "cuda" / "graph_copies.cu", "-cudart", "shared")
    env = {**os.environ, "REVATI_SANITIZE": "undefined"}
    out = str(tmp_path / "t.duckdb")
    cmd = [sys.executable, "-m", "revati.cli", "record", "--quiet", "-o", out, "--", str(program)]
    proc = subprocess.run([*cmd, "10"], env=env, capture_output=True, text=True, timeout=300)
    assert "runtime error" not in proc.stderr, proc.stderr
    assert proc.returncode == 0 and "data_ok=10" in proc.stdout, proc.stderr


def test_an_unknown_sanitizer_is_refused_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "REVATI_SANITIZE": "address"}
    cmd = [sys.executable, "-m", "revati.cli", "record", "-o", str(tmp_path / "t.duckdb")]
    proc = subprocess.run([*cmd, "--example"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "REVATI_SANITIZE='address'" in proc.stderr and "Traceback" not in proc.stderr
