"""Every command that writes, as a careless user runs it: nothing lost, one line per mistake.

An output is checked before any work, written to a temporary file beside it and renamed over
it only once complete; an output that is also an input is refused; a second writer of the same
output is refused naming the first one's pid. Read-only folders and full disks are made real
with a private mount namespace (`unshare -m`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from revati.recorder.reader import open_trace

from tests.conftest import run_cli

BERT = (
    "real-traces/AMD-AGI__TraceLens/tests/traces/h100/gaunernst_bert-small-uncased__1016001.json.gz"
)
NSYS = "real-traces/NVIDIA__Fuser/8fa9ec29/report1.sqlite"


def _one_line(proc: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("revati: error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert ".partial" not in lines[0] and ".recording" not in lines[0]  # never a temporary name
    return lines[0]


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _in_namespace(mount: str, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`revati ARGS` in a private mount namespace where `mount` (a shell command using $D) has
    changed `folder`; the mount vanishes with the command."""
    unshare = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-r", "-m"]
    script = f'{mount} && exec "$@"'
    return subprocess.run(
        [*unshare, "sh", "-c", script, "sh", sys.executable, "-m", "revati.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "D": str(folder)},
        timeout=300,
    )


READ_ONLY = 'mount --bind -o ro "$D" "$D"'
TINY_DISK = 'mount -t tmpfs -o size=64k tmpfs "$D"'


@pytest.fixture
def trace(tmp_path: Path, test_data: Path) -> Path:
    path = tmp_path / "real.duckdb"
    run_cli("import", "kineto", str(test_data / BERT), "-o", str(path), check=True)
    return path


# ---- record ------------------------------------------------------------------------------------


def test_record_a_missing_program_keeps_the_existing_trace_and_leaves_nothing(
    tmp_path: Path, trace: Path
) -> None:
    before = trace.read_bytes()
    runs = tmp_path / "runs"
    runs.mkdir()
    (tmp_path / "noexec").write_text("#!/bin/sh\n")
    env = {**os.environ, "TMPDIR": str(runs)}  # where the run folder would go
    for program, fragment in (("./nosuchprog", "command not found"), ("./noexec", "chmod +x")):
        proc = run_cli("record", "--force", "-o", str(trace), "--", program, cwd=tmp_path, env=env)
        _one_line(proc, 6, program, fragment)
        assert trace.read_bytes() == before
    fresh = tmp_path / "new.duckdb"
    proc = run_cli("record", "-o", str(fresh), "--", "./nosuchprog", cwd=tmp_path, env=env)
    _one_line(proc, 6, "command not found")
    assert _listing(tmp_path) == ["noexec", "real.duckdb", "runs"]  # no empty trace, no lock
    assert _listing(runs) == []  # no run folder
    again = run_cli("record", "--quiet", "-o", str(fresh), "--", "true", env=env)
    assert again.returncode == 0, again.stderr  # the corrected rerun is not refused


def test_record_refuses_an_existing_output_naming_force(tmp_path: Path, trace: Path) -> None:
    proc = run_cli("record", "-o", str(trace), "--", "true")
    _one_line(proc, 2, str(trace), "already exists", "--force")


def test_record_never_writes_over_the_program_or_a_folder(tmp_path: Path) -> None:
    prog = tmp_path / "prog"
    shutil.copy("/bin/true", prog)
    before = prog.read_bytes()
    proc = run_cli("record", "--force", "-o", "./prog", "--", "./prog", cwd=tmp_path)
    _one_line(proc, 2, "./prog: is also an input", "choose another -o path")
    assert prog.read_bytes() == before
    script = tmp_path / "job.sh"
    script.write_text("exit 0\n")
    proc = run_cli("record", "--force", "-o", str(script), "--", "sh", str(script))
    _one_line(proc, 2, "is also an input")
    folder = tmp_path / "out"
    folder.mkdir()
    proc = run_cli("record", "--force", "-o", str(folder), "--", "true")
    _one_line(proc, 2, f"{folder}: is a directory")
    assert _listing(folder) == []


def test_two_recordings_of_one_output_the_second_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "same.duckdb"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    first = subprocess.Popen(
        [sys.executable, "-m", "revati.cli", "record", "--quiet", "--force", "-o", str(out),
         "--", "cat", str(fifo)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / ".same.duckdb.lock").exists():
            assert time.monotonic() < deadline and first.poll() is None, first.stderr
            time.sleep(0.05)
        second = run_cli("record", "--quiet", "--force", "-o", str(out), "--", "true")
        _one_line(second, 2, f"{out}: the output is being written by pid {first.pid}")
    finally:
        with open(fifo, "w") as f:
            f.write("done\n")
        stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert stdout == "done\n"
    with open_trace(out) as r:
        assert r.run()["argv"] == ["cat", str(fifo)]  # the first recording's trace, whole
    assert _listing(tmp_path) == ["fifo", "same.duckdb"]


def test_record_into_a_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    proc = _in_namespace(READ_ONLY, folder, "record", "-o", str(folder / "t.duckdb"), "--", "true")
    _one_line(proc, 2, f"{folder / 't.duckdb'}: cannot write in folder")


def test_record_on_a_full_disk_says_so_and_keeps_what_it_wrote(tmp_path: Path) -> None:
    folder = tmp_path / "small"
    folder.mkdir()
    out = folder / "t.duckdb"
    mount = f'{TINY_DISK} && "$@"; ls -a "$D" >&2; false'
    proc = _in_namespace(mount, folder, "record", "--quiet", "-o", str(out), "--", "true")
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith(f"revati: error: {out}: finishing the trace failed: ")
    assert "No space left on device" in lines[0] and ".recording" not in lines[0]
    assert sorted(lines[1:]) == sorted([".", "..", "t.duckdb", "t.duckdb.wal"])


# ---- export, import, calibrate -------------------------------------------------------------------


def test_output_equal_to_an_input_is_refused_everywhere(
    tmp_path: Path, trace: Path, test_data: Path
) -> None:
    kineto = tmp_path / "r.json.gz"
    shutil.copy(test_data / BERT, kineto)
    nsys = tmp_path / "r.sqlite"
    shutil.copy(test_data / NSYS, nsys)
    exported = tmp_path / "t.json"
    run_cli("export", str(trace), "-o", str(exported), check=True)
    link = tmp_path / "link.json.gz"
    link.symlink_to(kineto)
    cases = [
        ("import", "kineto", str(kineto), "-o", str(kineto)),
        ("import", "kineto", str(tmp_path), "-o", str(link)),  # a folder input, by another name
        ("import", "nsys", str(nsys), "-o", str(nsys)),
        ("calibrate", str(kineto), "-o", str(kineto)),
        ("export", str(exported), "-o", str(exported)),
    ]
    saved = {p: p.read_bytes() for p in (kineto, nsys, exported)}
    for args in cases:
        proc = run_cli(*args, "--force")
        _one_line(proc, 2, "is also an input of this command", "choose another -o path")
    assert {p: p.read_bytes() for p in saved} == saved


def test_export_into_a_read_only_folder(tmp_path: Path, trace: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    out = folder / "t.json"
    proc = _in_namespace(READ_ONLY, folder, "export", str(trace), "-o", str(out))
    _one_line(proc, 2, f"{out}: cannot write in folder {folder}")


def test_export_on_a_full_disk_keeps_the_old_file_whole(tmp_path: Path, trace: Path) -> None:
    folder = tmp_path / "small"
    folder.mkdir()
    out = folder / "t.json"
    old = b'{"traceEvents": []}'
    mount = f'{TINY_DISK} && printf %s \'{old.decode()}\' > "$D/t.json" && "$@"; ls -a "$D" >&2'
    mount += ' && cat "$D/t.json" >&2 && false'
    proc = _in_namespace(mount, folder, "export", str(trace), "-o", str(out), "--force")
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == (
        f"revati: error: {out}: cannot write the output: No space left on device; "
        "free some space or choose another -o path"
    )
    assert lines[1:] == [".", "..", "t.json", old.decode()]  # no temporary file; old file whole


def test_calibrate_output_a_folder_or_read_only(tmp_path: Path, test_data: Path) -> None:
    proc = run_cli("calibrate", str(test_data / BERT), "-o", str(tmp_path))
    _one_line(proc, 2, f"{tmp_path}: is a directory")
    folder = tmp_path / "ro"
    folder.mkdir()
    out = folder / "p.json"
    proc = _in_namespace(READ_ONLY, folder, "calibrate", str(test_data / BERT), "-o", str(out))
    _one_line(proc, 2, f"{out}: cannot write in folder")


def test_nsight_export_with_text_in_cupti_columns(tmp_path: Path, test_data: Path) -> None:
    import sqlite3

    bad = tmp_path / "bad.sqlite"
    shutil.copy(test_data / NSYS, bad)
    con = sqlite3.connect(bad)
    for table in ("KERNEL", "RUNTIME", "MEMCPY", "MEMSET", "SYNCHRONIZATION"):
        con.execute(f"UPDATE CUPTI_ACTIVITY_KIND_{table} SET start = 'n/a'")
    con.commit()
    con.close()
    for args in (
        ("import", "nsys", str(bad), "-o", str(tmp_path / "t.duckdb")),
        ("calibrate", str(bad), "-o", str(tmp_path / "p.json")),
        ("predict-report", "h100-vidur", "--against", str(bad)),
    ):
        _one_line(run_cli(*args), 4, f"{bad}: every CUPTI row is malformed")
    assert _listing(tmp_path) == ["bad.sqlite"]
