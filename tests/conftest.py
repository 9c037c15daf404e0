"""Shared fixtures for every test tier."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def run_cli(*args: str, check: bool = False, **kw) -> subprocess.CompletedProcess[str]:
    """Run `revati ARGS` in a subprocess (the installed entry point's module)."""
    proc = subprocess.run(
        [sys.executable, "-m", "revati.cli", *args], capture_output=True, text=True, **kw
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"revati {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data folder {SHARED_DATA} is not present beside the repository")
    return SHARED_DATA


def nvcc_path() -> str | None:
    return (
        shutil.which("nvcc")
        or (os.path.exists("/usr/local/cuda/bin/nvcc") and "/usr/local/cuda/bin/nvcc")
        or None
    )
