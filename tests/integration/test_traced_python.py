"""What `revati record` adds to a traced Python process: its sitecustomize (which turns
PyTorch's cuDNN off when torch is imported) runs first and then the one the environment had."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.integration.record_helpers import run_cli

PROGRAM = "import sys; print('torch_loaded', 'torch' in sys.modules); print('user', USER_SITE)"


def test_the_environments_sitecustomize_still_runs_and_torch_is_not_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = tmp_path / "user_site"
    user.mkdir()
    (user / "sitecustomize.py").write_text("import builtins\nbuiltins.USER_SITE = 'ran'\n")
    monkeypatch.setenv("PYTHONPATH", str(user))
    proc = run_cli("record", "--quiet", "-o", str(tmp_path / "t.duckdb"), "--",
                   sys.executable, "-c", PROGRAM, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["torch_loaded False", "user ran"]
