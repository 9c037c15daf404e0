"""Helpers shared by the `revati record` integration tests and benchmarks."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "tests" / "cuda" / "record_modes.cu"


def nvcc() -> str | None:
    return shutil.which("nvcc") or (
        "/usr/local/cuda/bin/nvcc" if os.path.exists("/usr/local/cuda/bin/nvcc") else None
    )


def build_modes(base: Path, *flags: str) -> Path:
    """tests/cuda/record_modes.cu built with nvcc FLAGS (cached by content); skips without nvcc."""
    return build_cuda(base, SOURCE, *flags)


def build_cuda(base: Path, source: Path, *flags: str) -> Path:
    """A CUDA test program built with nvcc FLAGS (cached by content); skips without nvcc."""
    compiler = nvcc()
    if not compiler:
        pytest.skip("nvcc (CUDA toolkit) is not installed: cannot build the CUDA test programs")
    digest = hashlib.sha256(source.read_bytes() + " ".join(flags).encode()).hexdigest()[:12]
    out = base / f"{source.stem}-{digest}"
    if not out.exists():
        subprocess.run(
            [compiler, *flags, "-o", str(out), str(source)], check=True, capture_output=True
        )
    return out


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "revati.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def q(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


# What a replay with the trace's own durations must reproduce, per table: (key, columns).
REPLAY_CHECKS = {
    "kernels": ("kernel_id", ("start_ns", "end_ns")),
    "barriers": ("barrier_id", ("release_ns", "end_ns", "straggler_rank")),
    "barrier_arrivals": ("barrier_id, rank", ("arrival_ns", "wait_ns")),
    "syncs": ("sync_id", ("resumed_ns", "deadline_ns")),
}


def assert_replay_reproduces(trace: Path, replayed: Path) -> None:
    """`revati replay` re-derives every time of `trace` from its host intervals, its durations
    and the device model (stream order, event waits, barriers); each must come out the same."""
    r = run_cli("replay", str(trace), "-o", str(replayed))
    assert r.returncode == 0, r.stderr
    for table, (key, cols) in REPLAY_CHECKS.items():
        differ = " OR ".join(f"a.{c} IS DISTINCT FROM b.{c}" for c in cols)
        rows = q(
            replayed,
            f"ATTACH '{trace}' AS o (READ_ONLY); "
            f"SELECT count(*) FILTER (WHERE {differ}), count(*) "
            f"FROM {table} a JOIN o.{table} b USING ({key})",
        )
        assert rows[0][0] == 0 and rows[0][1] > 0, (table, rows)
