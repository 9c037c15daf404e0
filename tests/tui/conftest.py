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


# Requests over the sample run (0..244 us): (arrival, first token, end, status) in ns; #1 and
# #2 overlap #0, so they take three lanes; #3 failed before any token.
SAMPLE_REQUESTS = (
    (8_000, 40_000, 150_000, "ok"),
    (20_000, 60_000, 200_000, "ok"),
    (50_000, 90_000, 236_000, "ok"),
    (160_000, None, 170_000, "failed"),
    (180_000, 190_000, 240_000, "ok"),
)


@pytest.fixture(scope="session")
def serving_trace(tmp_path_factory) -> Path:
    """The sample trace with requests, as `revati bench` would have added them."""
    import duckdb

    path = build_sample_trace(tmp_path_factory.mktemp("serving") / "serving.duckdb")
    with duckdb.connect(str(path)) as con:
        for i, (arrival, first, end, status) in enumerate(SAMPLE_REQUESTS):
            tokens = 0 if first is None else 4
            con.execute(
                "INSERT INTO requests VALUES (?, 1, ?, ?, ?, 16, ?, ?, ?)",
                [i, arrival, first, end, tokens, status, None if first else "HTTP 500"],
            )
    return path


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
