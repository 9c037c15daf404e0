"""Fixtures of the TUI tier: deterministic sample traces and a helper to let workers finish."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sample_trace import build_sample_trace  # noqa: E402

SIZE = (140, 40)


@pytest.fixture(scope="session")
def sample_traces(tmp_path_factory) -> tuple[Path, Path]:
    """(emulated, real) traces of the same run; the emulated one's elementwise kernels are 3x slow."""
    d = tmp_path_factory.mktemp("traces")
    emulated = build_sample_trace(d / "emulated.duckdb", scale={"elementwise": 3.0})
    real = build_sample_trace(d / "real.duckdb", source="real")
    return emulated, real


async def settle(pilot, rounds: int = 4) -> None:
    """Let the loading worker, screen switches and panel workers all finish."""
    for _ in range(rounds):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def sync(fn):
    """Run an async test body with asyncio.run (no async pytest plugin is a dependency)."""
    import asyncio
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper
