"""Re-simulation on synthetic traces (recorder/synth.py): identity, and the device model's rules
after durations change."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from revati.recorder.synth import synthesize
from revati.replay.durations import parse_scales
from revati.replay.session import replay_trace

from revati.errors import RevatiTraceError, RevatiUsageError
from tests.replay_checks import differing_tables


def q(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ranks=st.integers(1, 4), events=st.integers(2_000, 12_000), seed=st.integers(0, 2**16))
def test_identity_on_random_synthetic_traces(tmp_path: Path, ranks, events, seed) -> None:
    parent = tmp_path / f"s{ranks}-{events}-{seed}.duckdb"
    synthesize(parent, ranks=ranks, events=events, seed=seed, small_blocks=True, overwrite=True)
    out = tmp_path / "same.duckdb"
    s = replay_trace(parent, out, overwrite=True)
    assert s.ops > 0 and s.end_ns == s.parent_end_ns
    assert differing_tables(parent, out) == {}
    assert q(out, "SELECT source FROM run") == [("replayed",)]


def _invariants(path: Path) -> None:
    """docs/design.md §3's device model, checked on a replayed trace."""
    overlap = q(
        path,
        """SELECT count(*) FROM (SELECT start_ns, lag(end_ns) OVER (PARTITION BY stream_id
           ORDER BY start_ns, end_ns) AS prev FROM kernels) WHERE start_ns < prev""",
    )
    assert overlap == [(0,)]
    assert q(path, "SELECT count(*) FROM kernels WHERE end_ns < start_ns") == [(0,)]
    early = q(path, "SELECT count(*) FROM syncs WHERE resumed_ns < deadline_ns")
    assert early == [(0,)]
    back = q(
        path,
        """SELECT count(*) FROM (SELECT enter_ns, lag(exit_ns) OVER (PARTITION BY thread_id
           ORDER BY seq) AS prev FROM api_calls) WHERE enter_ns < prev""",
    )
    assert back == [(0,)]
    releases = q(
        path,
        """SELECT count(*) FROM barriers b JOIN (SELECT barrier_id, max(arrival_ns) AS last
           FROM barrier_arrivals GROUP BY 1) a USING (barrier_id)
           WHERE b.release_ns <> a.last OR b.end_ns < b.release_ns""",
    )
    assert releases == [(0,)]
    ends = q(
        path,
        """SELECT count(*) FROM barrier_arrivals a JOIN barriers b USING (barrier_id)
           JOIN kernels k USING (kernel_id) WHERE k.end_ns <> b.end_ns""",
    )
    assert ends == [(0,)]


@pytest.mark.parametrize("family,factor", [("gemm", 3.0), ("attention", 0.25), ("memcpy", 8.0)])
def test_changed_durations_keep_the_device_model(
    tmp_path: Path, family: str, factor: float
) -> None:
    parent = tmp_path / "p.duckdb"
    synthesize(parent, ranks=4, events=20_000, seed=3, small_blocks=True)
    out = tmp_path / "scaled.duckdb"
    s = replay_trace(parent, out, scale={family: factor})
    _invariants(out)
    assert (s.end_ns > s.parent_end_ns) == (factor > 1)
    # host intervals between calls are kept: per thread, the gap between one call's return
    # and the next call is exactly the recorded one (only time inside syncs changes)
    gaps = """SELECT call_id, enter_ns - lag(exit_ns) OVER (PARTITION BY thread_id ORDER BY seq)
              FROM api_calls"""
    assert dict(q(parent, gaps)) == dict(q(out, gaps))


def test_device_changes_durations_and_keeps_the_model(tmp_path: Path) -> None:
    parent = tmp_path / "p.duckdb"
    synthesize(parent, ranks=2, events=8_000, seed=1, small_blocks=True)
    out = tmp_path / "a100.duckdb"
    s = replay_trace(parent, out, device="a100-sxm-80gb")
    assert "device=a100-sxm-80gb" in s.durations
    _invariants(out)
    assert q(out, "SELECT device FROM run") == [("a100-sxm-80gb",)]
    assert q(out, "SELECT count(*) FROM kernels WHERE model = 'synthetic'") == [(0,)]


def test_bad_arguments_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RevatiUsageError, match="FAMILY=FACTOR"):
        parse_scales(["gemm"])
    parent = tmp_path / "p.duckdb"
    synthesize(parent, ranks=1, events=2_000, small_blocks=True)
    with pytest.raises(RevatiUsageError, match="no kernel of family 'gemmm'.*gemm"):
        replay_trace(parent, tmp_path / "x.duckdb", scale={"gemmm": 2.0})
    with pytest.raises(RevatiTraceError, match="already exists"):
        replay_trace(parent, parent)
    with pytest.raises(RevatiTraceError, match="no such file"):
        replay_trace(tmp_path / "missing.duckdb", tmp_path / "x.duckdb")
