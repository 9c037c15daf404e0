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
