"""`revati import` as a user runs it: real subprocesses, real trace files."""

from __future__ import annotations

from revati.recorder.reader import open_trace

DLRM = "real-traces/facebookresearch__param/et_replay/tests/inputs/dlrm_kineto.tar.gz.extracted/dlrm_kineto"
NSYS = "real-traces/NVIDIA__Fuser/ee4fcf30/report1.sqlite"


def test_import_kineto_ranks(cli, tmp_path, test_data):
    files = sorted(str(p) for p in (test_data / DLRM).glob("worker[0-3]_*.json"))
    out = tmp_path / "real.duckdb"
    proc = cli("import", "kineto", *files, "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "ranks 0, 1, 2, 3" in proc.stdout and "1116 kernels" in proc.stdout
    with open_trace(out) as r:
        assert r.sql("SELECT rank FROM processes ORDER BY rank") == [(0,), (1,), (2,), (3,)]
        assert r.sql("SELECT count(*) FROM barriers")[0][0] == 8
        assert r.sql("SELECT source FROM run") == [("real",)]


def test_import_nsys_default_output_and_force(cli, tmp_path, test_data):
    proc = cli("import", "nsys", str(test_data / NSYS), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "report1.duckdb"
    with open_trace(out) as r:
        assert r.counts()["kernels"] == 18
        assert r.sql("SELECT name FROM devices") == [("NVIDIA H200",)]
    again = cli("import", "nsys", str(test_data / NSYS), cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        f"revati: error: {out.name}: already exists; pass --force to replace it or choose "
        "another -o path"
    ]
    forced = cli("import", "nsys", str(test_data / NSYS), "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr


def test_bad_inputs_exit_4_with_one_line(cli, tmp_path):
    (tmp_path / "a.json").write_text("[1, 2")
    (tmp_path / "b.sqlite").write_text("not a database")
    for args in (
        ("kineto", str(tmp_path / "a.json")),
        ("nsys", str(tmp_path / "b.sqlite")),
        ("kineto", str(tmp_path / "missing.json.gz")),
    ):
        proc = cli("import", *args, "-o", str(tmp_path / "out.duckdb"))
        assert proc.returncode == 4, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("revati: error: ")
        assert args[1] in lines[0]
        assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.sqlite"]


def test_import_needs_a_format(cli):
    proc = cli("import")
    assert proc.returncode == 2
    assert "kineto" in proc.stderr and "nsys" in proc.stderr


def test_import_reports_what_it_did_not_import_and_refuses_duplicates(cli, tmp_path, test_data):
    files = sorted(str(p) for p in (test_data / DLRM).glob("worker0_*.json"))
    out = tmp_path / "real.duckdb"
    proc = cli("import", "kineto", *files, "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (
        "; not imported: 2,422 host-only events (cpu_op 1,633, ac2g 786, (no category) 2, Trace 1)"
        in proc.stdout
    )
    twice = cli("import", "kineto", files[0], files[0], "-o", str(tmp_path / "t.duckdb"))
    assert twice.returncode == 4
    assert (
        twice.stderr.strip()
        == f"revati: error: {files[0]}: given twice; give each rank's trace once"
    )
