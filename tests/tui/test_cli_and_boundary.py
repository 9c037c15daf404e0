"""`revati tui` on bad input, and the rule that the headless core never imports textual."""

from __future__ import annotations

import subprocess
import sys


def test_missing_file_is_one_clear_line(cli, tmp_path):
    proc = cli("tui", str(tmp_path / "nope.duckdb"))
    assert proc.returncode == 3
    assert proc.stderr.strip() == f"revati: error: {tmp_path / 'nope.duckdb'}: no such file"
    assert "Traceback" not in proc.stderr


def test_non_trace_file_is_one_clear_line(cli, tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello\n" * 10)
    proc = cli("tui", str(junk))
    assert proc.returncode == 3
    assert "not a DuckDB file, so not a revati trace" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_bad_against_file_is_reported_before_the_ui_starts(cli, sample_traces, tmp_path):
    proc = cli("tui", str(sample_traces[0]), "--against", str(tmp_path / "real.duckdb"))
    assert proc.returncode == 3 and "real.duckdb: no such file" in proc.stderr


def test_core_packages_do_not_import_textual():
    code = (
        "import sys, revati, revati.recorder, revati.replay, revati.replay.cursor, "
        "revati.replay.alignment, revati.replay.attribution, revati.recorder.reader, revati.cli\n"
        "revati.cli.build_parser()\n"
        "assert 'textual' not in sys.modules, sorted(m for m in sys.modules if 'textual' in m)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
