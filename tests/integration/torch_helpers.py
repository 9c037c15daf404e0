"""Recording stock PyTorch programs under `revati record` (real torch, no GPU).

A recording with `import torch` costs seconds, so each test module records one small program
once (a module-scoped fixture) and its tests check that program's output and its trace.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.record_helpers import q


@dataclass
class TorchRun:
    """One recorded Python program: what it printed and where its trace is."""

    proc: subprocess.CompletedProcess[str]
    trace: Path

    def lines(self, key: str) -> list[str]:
        """The words after `key` on each printed line that starts with it."""
        return [line.split(" ", 1)[1] if " " in line else "" for line in self.proc.stdout.splitlines()
                if line.split(" ", 1)[0] == key]  # fmt: skip

    def value(self, key: str) -> str:
        found = self.lines(key)
        assert found, (
            f"the program printed no {key!r} line:\n{self.proc.stdout}\n{self.proc.stderr}"
        )
        return found[0]

    def q(self, sql: str) -> list[tuple]:
        return q(self.trace, sql)


def require_torch() -> None:
    """PyTorch is a dev dependency (`pip install -e '.[dev]'`); say so where it is missing."""
    pytest.importorskip("torch", reason="PyTorch is not installed: pip install -e '.[torch]'")


def record_python(
    tmp: Path, code: str, *record_args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> TorchRun:
    """Record `python -c CODE` with `revati record RECORD_ARGS`; the run must succeed."""
    require_torch()
    script = tmp / "program.py"
    script.write_text(textwrap.dedent(code))
    trace = tmp / "t.duckdb"
    proc = subprocess.run(
        [sys.executable, "-m", "revati.cli", "record", "--quiet", "-o", str(trace), *record_args,
         "--", sys.executable, str(script)],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return TorchRun(proc, trace)


def launch_costs(trace: Path, names: tuple[str, ...]) -> dict[str, set[int]]:
    """The distinct virtual durations of each named launching call, beside the run's modelled
    launch host cost (`host_costs.launch_ns`)."""
    placeholders = ", ".join(f"'{n}'" for n in names)
    rows = q(
        trace,
        f"""SELECT name, list(DISTINCT exit_ns - enter_ns) FROM api_calls
            WHERE name IN ({placeholders}) GROUP BY name""",
    )
    return {name: set(costs) for name, costs in rows}


def modelled_launch_cost(trace: Path) -> int:
    return int(q(trace, "SELECT config->'host_costs'->>'launch_ns' FROM run")[0][0])
