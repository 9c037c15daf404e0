"""Bad importer input: one clear RevatiImportError line, no output, never a clobbered file."""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from revati.recorder.importers import import_kineto, import_nsys
from revati.recorder.reader import open_trace

from revati.errors import RevatiImportError, RevatiUsageError

TINY = (
    "real-traces/facebookresearch__HolisticTraceAnalysis/tests/data/critical_path/"
    "cuda_event_sync/event_sync_trace.json.gz"
)
TINY_NSYS = "real-traces/GindaChen__nsys-ai/tests/fixtures/mock.sqlite"


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _one_line_naming(err: pytest.ExceptionInfo, path: Path, fragment: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg
    assert str(path) in msg
    assert fragment in msg


@pytest.fixture
def bad_inputs(tmp_path):
    (tmp_path / "text.json").write_text("this is not json\n")
    (tmp_path / "other.json").write_text(json.dumps({"hello": [1, 2, 3]}))
    (tmp_path / "chrome.json").write_text(
        json.dumps({"traceEvents": [{"ph": "X", "cat": "v8", "name": "x", "ts": 1, "dur": 2}]})
    )
    (tmp_path / "binary.json").write_bytes(b"\x00\xff\xfe" * 100)
    full = gzip.compress(json.dumps({"traceEvents": [{"cat": "kernel"}] * 2000}).encode())
    (tmp_path / "truncated.json.gz").write_bytes(full[: len(full) // 2])
    return tmp_path


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("text.json", "not valid JSON"),
        ("other.json", "not a PyTorch-profiler (Kineto) trace"),
        ("chrome.json", "not a PyTorch-profiler (Kineto) trace"),
        ("binary.json", "not a JSON text file"),
        ("truncated.json.gz", "truncated or corrupt gzip"),
        ("missing.json", "no such file"),
    ],
)
def test_bad_kineto_input(bad_inputs, name, fragment):
    out = bad_inputs / "out.duckdb"
    with pytest.raises(RevatiImportError) as err:
        import_kineto([bad_inputs / name], out)
    _one_line_naming(err, bad_inputs / name, fragment)
    assert not out.exists()
    assert _leftovers(bad_inputs) == []


def test_bad_second_rank_writes_nothing(bad_inputs, test_data):
    out = bad_inputs / "out.duckdb"
    with pytest.raises(RevatiImportError, match="truncated"):
        import_kineto([test_data / TINY, bad_inputs / "truncated.json.gz"], out)
    assert not out.exists() and _leftovers(bad_inputs) == []


def test_sqlite_without_cupti_tables(tmp_path):
    db = tmp_path / "plain.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (x INT)")
    con.commit()
    con.close()
    with pytest.raises(RevatiImportError) as err:
        import_nsys(db, tmp_path / "out.duckdb")
    _one_line_naming(err, db, "without CUPTI tables")
    assert not (tmp_path / "out.duckdb").exists()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b'{"traceEvents": []}', "not an SQLite database"),
        (b"", "not an SQLite database"),
        (None, "no such file"),
    ],
)
def test_not_sqlite(tmp_path, content, fragment):
    src = tmp_path / "report.sqlite"
    if content is not None:
        src.write_bytes(content)
    with pytest.raises(RevatiImportError) as err:
        import_nsys(src, tmp_path / "out.duckdb")
    _one_line_naming(err, src, fragment)


def test_truncated_sqlite(tmp_path, test_data):
    src = tmp_path / "cut.sqlite"
    data = (test_data / TINY_NSYS).read_bytes()
    src.write_bytes(data[: len(data) // 3])
    with pytest.raises(RevatiImportError) as err:
        import_nsys(src, tmp_path / "out.duckdb")
    assert str(src) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out.duckdb").exists()


def test_existing_output_is_not_clobbered_without_force(tmp_path, test_data):
    out = tmp_path / "real.duckdb"
    out.write_bytes(b"precious")
    with pytest.raises(RevatiUsageError, match="--force"):
        import_kineto([test_data / TINY], out)
    with pytest.raises(RevatiUsageError, match="--force"):
        import_nsys(test_data / TINY_NSYS, out)
    assert out.read_bytes() == b"precious"


def test_force_replaces_only_after_success(tmp_path, test_data):
    out = tmp_path / "real.duckdb"
    out.write_bytes(b"precious")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(RevatiImportError):
        import_kineto([tmp_path / "bad.json"], out, force=True)
    assert out.read_bytes() == b"precious"
    import_kineto([test_data / TINY], out, force=True)
    with open_trace(out) as r:
        assert r.counts()["kernels"] == 4
    assert _leftovers(tmp_path) == []


def test_output_folder_must_exist(tmp_path, test_data):
    with pytest.raises(RevatiUsageError, match="no such folder"):
        import_kineto([test_data / TINY], tmp_path / "nope" / "out.duckdb")
    with pytest.raises(RevatiUsageError, match="is a directory"):
        import_kineto([test_data / TINY], tmp_path)


def test_read_only_input_copy_imports(tmp_path, test_data):
    src = tmp_path / "ro.sqlite"
    shutil.copy(test_data / TINY_NSYS, src)
    src.chmod(0o444)
    import_nsys(src, tmp_path / "out.duckdb")
    assert src.read_bytes() == (test_data / TINY_NSYS).read_bytes()  # input untouched


def test_folder_input_means_its_trace_files(tmp_path, test_data):
    ranks = tmp_path / "ranks"
    ranks.mkdir()
    for name in ("sampled_rank-0.json.gz", "sampled_rank-1.json.gz"):
        shutil.copy(
            test_data
            / "real-traces/facebookresearch__HolisticTraceAnalysis/tests/data"
            / "trace_filter"
            / name,
            ranks / name,
        )
    (ranks / "notes.txt").write_text("not a trace")
    summary = import_kineto([ranks], tmp_path / "out.duckdb")
    assert summary.ranks == (0, 1)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RevatiImportError, match="holds no .json"):
        import_kineto([empty], tmp_path / "out2.duckdb")
