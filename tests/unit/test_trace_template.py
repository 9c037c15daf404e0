"""A new trace starts as a copy of the empty template: the same tables, views, columns and meta
rows as one whose tables are created statement by statement, and a valid trace when no
template can be made."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from revati.recorder.reader import open_trace
from revati.recorder.trace_template import copy_empty_trace
from revati.recorder.writer import RunInfo, TraceWriter

CATALOG = """
SELECT table_name, table_type, column_name, data_type, ordinal_position
FROM information_schema.tables JOIN information_schema.columns USING (table_name)
ORDER BY ALL
"""


def _layout(path: Path) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Tables and views with their columns, the meta rows, and the run row's argv and device."""
    with duckdb.connect(str(path), read_only=True) as con:
        return (
            con.execute(CATALOG).fetchall(),
            con.execute("SELECT * FROM revati_meta ORDER BY ALL").fetchall(),
            con.execute("SELECT argv, device FROM run").fetchall(),
        )


def _write(path: Path, **kw: object) -> None:
    TraceWriter(path, RunInfo(argv=["./prog", "-n", "3"], device="h100-sxm"), **kw).close(  # type: ignore[arg-type]
        exit_status=0
    )


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "revati"


def test_template_trace_matches_created_one(tmp_path: Path, cache: Path) -> None:
    _write(tmp_path / "templated.duckdb")
    templates = list(cache.glob("empty-trace-*.duckdb"))
    assert len(templates) == 1 and not list(cache.glob("*.tmp*"))
    _write(tmp_path / "created.duckdb", block_size=262144)  # DuckDB's default, no template
    templated, created = (
        _layout(tmp_path / "templated.duckdb"),
        _layout(tmp_path / "created.duckdb"),
    )
    assert templated == created
    assert len(templated[0]) > 100 and ("format", "revati-trace") in templated[1]
    assert templated[2] == [(["./prog", "-n", "3"], "h100-sxm")]
    with open_trace(tmp_path / "templated.duckdb") as reader:
        assert reader.event_count() == 0


def test_template_is_made_once_and_reused(tmp_path: Path, cache: Path) -> None:
    _write(tmp_path / "a.duckdb")
    (template,) = cache.glob("empty-trace-*.duckdb")
    made = template.stat().st_mtime_ns
    _write(tmp_path / "b.duckdb")
    assert template.stat().st_mtime_ns == made
    assert _layout(tmp_path / "a.duckdb") == _layout(tmp_path / "b.duckdb")


def test_unwritable_cache_still_writes_the_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    dest = tmp_path / "t.duckdb"
    assert not copy_empty_trace(dest) and not dest.exists()
    _write(dest)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _write(tmp_path / "templated.duckdb")
    assert _layout(dest) == _layout(tmp_path / "templated.duckdb")
