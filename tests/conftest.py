"""Shared fixtures for every test tier."""

from __future__ import annotations

import lzma
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TEST_DATA = REPO / "tests" / "data"  # small real traces and tables, see tests/data/README.md
# A folder laid out like tests/data with larger real traces (optional, see tests/data/README.md).
CORPUS_VARIABLE = "REVATI_TEST_CORPUS"


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


def materialise_test_data(dest: Path) -> Path:
    """tests/data at `dest`, every `.xz` file decompressed (the others linked), same layout."""
    for src in sorted(TEST_DATA.rglob("*")):
        if src.is_dir():
            continue
        rel = src.relative_to(TEST_DATA)
        target = dest / (rel.with_suffix("") if src.suffix == ".xz" else rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix == ".xz":
            target.write_bytes(lzma.decompress(src.read_bytes()))
        else:
            target.symlink_to(src)
    return dest


@pytest.fixture(scope="session")
def test_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real traces and tables of tests/data, ready to read."""
    return materialise_test_data(tmp_path_factory.mktemp("data"))


def corpus() -> Path | None:
    """The optional larger corpus named by $REVATI_TEST_CORPUS, if set."""
    value = os.environ.get(CORPUS_VARIABLE)
    return Path(value) if value else None


def pytest_report_header() -> str:
    where = corpus()
    if where is None:
        return (
            f"larger trace corpus: not used (set {CORPUS_VARIABLE} to a folder laid out like "
            "tests/data to also import the traces listed in tests/data/README.md)"
        )
    return f"larger trace corpus: {where}"


def nvcc_path() -> str | None:
    return (
        shutil.which("nvcc")
        or (os.path.exists("/usr/local/cuda/bin/nvcc") and "/usr/local/cuda/bin/nvcc")
        or None
    )


@pytest.fixture(scope="session")
def transformers_serve_run(tmp_path_factory: pytest.TempPathFactory):
    """One `revati bench -- transformers serve` run, read by the serving and TUI tiers."""
    from tests.serving.hf_serve import record_transformers_serve

    return record_transformers_serve(tmp_path_factory.mktemp("hf-serve"))


@pytest.fixture(scope="session")
def vllm_offline_run(tmp_path_factory: pytest.TempPathFactory):
    """Record vLLM's offline generation once per session: the vLLM tests and the TUI tier read
    the same runs (each costs minutes). Modes: "eager" and "graph" (vLLM's defaults, the engine
    core in its own process) and "eager-inproc" (the engine core in the program's process,
    VLLM_ENABLE_V1_MULTIPROCESSING=0: every request is added before the first step, so the
    steps, and every kernel's shape and predicted duration, are the same in every run)."""
    from tests.integration.torch_helpers import record_python
    from tests.integration.vllm_helpers import (
        IDLE_S,
        MODEL_DIR,
        offline_program,
        require_vllm,
        vllm_env,
    )

    runs = {}

    def run(mode: str):
        require_vllm()
        if mode not in runs:
            inproc = mode == "eager-inproc"
            program = offline_program(
                MODEL_DIR, eager=mode != "graph", idle_s=0 if inproc else IDLE_S
            )
            env = vllm_env() | ({"VLLM_ENABLE_V1_MULTIPROCESSING": "0"} if inproc else {})
            tmp = tmp_path_factory.mktemp(f"vllm-{mode}")
            runs[mode] = record_python(tmp, program, env=env, timeout=1800)
        return runs[mode]

    return run
