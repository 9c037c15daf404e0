"""recorder.output: the lock and the temporary file behind every command that writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from revati.recorder.output import OutputFile, atomic_output, check_output, writer_of

from revati.errors import RevatiTraceError, RevatiUsageError


def test_writer_of_names_the_pid_and_temporary_file_while_writing(tmp_path: Path) -> None:
    out = tmp_path / "t.duckdb"
    assert writer_of(out) is None
    with OutputFile(out) as output:
        assert writer_of(out) == (os.getpid(), output.tmp.resolve())
        with pytest.raises(RevatiUsageError, match=f"being written by pid {os.getpid()}"):
            OutputFile(out).acquire()
        output.tmp.write_text("new")
        output.commit()
    assert writer_of(out) is None
    assert out.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.duckdb"]


def test_a_failed_write_keeps_the_old_file_and_names_the_users_path(tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    out.write_text("old")
    with pytest.raises(RevatiTraceError) as err, atomic_output(out) as tmp:
        tmp.write_text("half")
        raise RevatiTraceError(f"{tmp}: writing kernels failed")
    assert str(err.value) == f"{out}: writing kernels failed"
    assert out.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]


def test_a_committed_trace_takes_its_log_and_drops_a_stale_one(tmp_path: Path) -> None:
    out = tmp_path / "t.duckdb"
    (tmp_path / "t.duckdb.wal").write_text("stale log of the old trace")
    with OutputFile(out) as output:
        output.tmp.write_text("db")
        output.commit()
    assert not (tmp_path / "t.duckdb.wal").exists()
    with OutputFile(out) as output:
        output.tmp.write_text("db2")
        Path(f"{output.tmp}.wal").write_text("log")
        output.commit()
    assert (tmp_path / "t.duckdb.wal").read_text() == "log"


def test_check_output_refuses_an_input_under_another_name(tmp_path: Path) -> None:
    data = tmp_path / "data.json"
    data.write_text("{}")
    (tmp_path / "alias.json").symlink_to(data)
    with pytest.raises(RevatiUsageError, match="is also an input"):
        check_output(tmp_path / "alias.json", force=True, inputs=[data])
    assert check_output(tmp_path / "new.json", force=False, inputs=[data]) == tmp_path / "new.json"
