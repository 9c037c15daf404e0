"""The synthetic generator: deterministic, and every invariant of the time model holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from revati.recorder.reader import TraceReader, open_trace
from revati.recorder.synth import synthesize


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> TraceReader:
    path = tmp_path_factory.mktemp("synth") / "s.duckdb"
    synthesize(path, ranks=4, events=20_000, seed=5)
    reader = open_trace(path)
    yield reader
    reader.close()


def _table_digest(path: Path) -> list:
    with open_trace(path) as r:
        return [
            r.sql(f"SELECT * FROM {t} ORDER BY ALL")
            for t in ("kernels", "api_calls", "barriers", "barrier_arrivals", "jumps", "markers")
        ]


def test_same_seed_same_trace_other_seed_differs(tmp_path: Path) -> None:
    a, b, c = (tmp_path / f"{n}.duckdb" for n in "abc")
    synthesize(a, events=2000, seed=1)
    synthesize(b, events=2000, seed=1)
    synthesize(c, events=2000, seed=2)
    assert _table_digest(a) == _table_digest(b)
    assert _table_digest(a) != _table_digest(c)


@pytest.mark.parametrize("events", [1_000, 50_000])
def test_size_is_about_what_was_asked(tmp_path: Path, events: int) -> None:
    summary = synthesize(tmp_path / "n.duckdb", ranks=2, events=events, seed=0)
    assert 0.7 * events <= summary.events <= 1.3 * events


def test_has_every_kind_of_event_on_two_streams_per_rank(synth: TraceReader) -> None:
    counts = synth.counts()
    for table in (
        "api_calls",
        "kernels",
        "copies",
        "memsets",
        "syncs",
        "jumps",
        "barriers",
        "barrier_arrivals",
        "nvtx_ranges",
        "markers",
    ):
        assert counts[table] > 0, table
    per_rank = synth.sql(
        "SELECT s.pid, count(DISTINCT stream_id) FROM kernels k "
        "JOIN streams s USING (stream_id) GROUP BY 1"
    )
    assert len(per_rank) == 4 and all(n >= 2 for _, n in per_rank)
    kinds = {k for (k,) in synth.sql("SELECT DISTINCT kind FROM markers")}
    assert kinds == {"request_arrival", "first_token", "last_token", "iteration"}
    assert (
        synth.sql(
            "SELECT count(*) FROM kernels WHERE model IS NULL OR duration_source <> 'predicted'"
        )[0][0]
        == 0
    )


def test_streams_never_overlap_and_kernels_follow_launches(synth: TraceReader) -> None:
    overlaps = synth.sql("""
        SELECT count(*) FROM (
          SELECT start_ns, lag(end_ns) OVER (PARTITION BY stream_id ORDER BY start_ns, end_ns)
                 AS prev_end
          FROM (SELECT stream_id, start_ns, end_ns FROM kernels UNION ALL
                SELECT stream_id, start_ns, end_ns FROM copies UNION ALL
                SELECT stream_id, start_ns, end_ns FROM memsets))
        WHERE start_ns < prev_end""")[0][0]
    assert overlaps == 0
    early = synth.sql("""SELECT count(*) FROM kernels k JOIN api_calls a USING (call_id)
                         WHERE k.start_ns < k.launch_ns OR k.launch_ns < a.enter_ns
                            OR k.launch_ns > a.exit_ns""")[0][0]
    assert early == 0


def test_barriers_release_at_last_arrival_and_last_rank_straggles(synth: TraceReader) -> None:
    barriers = synth.barriers()
    for b in barriers[:200]:
        assert len(b.arrivals) == 4
        assert b.release_ns == max(a.arrival_ns for a in b.arrivals) < b.end_ns
        assert min(a.wait_ns for a in b.arrivals) == 0
    stragglers = [b.straggler_rank for b in barriers]
    assert max(set(stragglers), key=stragglers.count) == 3


def test_syncs_resume_at_deadline_and_jumps_move_forward(synth: TraceReader) -> None:
    bad = synth.sql("""SELECT count(*) FROM syncs
                       WHERE resumed_ns <> greatest(blocked_ns, deadline_ns)""")[0][0]
    assert bad == 0
    jumps = synth.sql("SELECT from_ns, to_ns, generation FROM jumps ORDER BY generation")
    assert jumps and all(f < t for f, t, _ in jumps)
    assert [g for *_, g in jumps] == list(range(1, len(jumps) + 1))
    deadlines = {d for (d,) in synth.sql("SELECT deadline_ns FROM syncs")}
    assert all(t in deadlines for _, t, _ in jumps)  # a jump lands on a pending deadline
