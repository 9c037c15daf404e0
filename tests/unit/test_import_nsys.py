"""Nsight Systems importer on the real SQLite exports in tests/data/real-traces."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from revati.recorder.importers import import_nsys
from revati.recorder.importers.nsys import pid_of, tid_of
from revati.recorder.reader import open_trace

from revati.errors import RevatiImportError

NSYS_AI = "real-traces/GindaChen__nsys-ai/tests/fixtures"
FUSER_H100 = "real-traces/NVIDIA__Fuser/8fa9ec29/report1.sqlite"

# (file, kernels, runtime, memcpy, memset, NVTX) as tests/data/README.md lists them (schema 3.16-3.25)
MANIFEST_COUNTS = [
    (f"{NSYS_AI}/h100_2gpu_1s.sqlite", 3442, 5796, 904, 22, 16782),
    (f"{NSYS_AI}/mfu_2gpu_before.sqlite", 4010, 7466, 1020, 269, 19118),
    (f"{NSYS_AI}/mfu_2gpu_after.sqlite", 3587, 6682, 904, 242, 17113),
    (f"{NSYS_AI}/mock.sqlite", 2, 9, 1, 0, 0),
    ("real-traces/NVIDIA__Fuser/ee4fcf30/report1.sqlite", 18, 990, 3, 3, 13513),
    (FUSER_H100, 19, 967, 1, 1, 639),
]


@pytest.fixture(scope="module")
def fuser(tmp_path_factory, test_data):
    out = tmp_path_factory.mktemp("n") / "fuser.duckdb"
    import_nsys(test_data / FUSER_H100, out)
    with open_trace(out) as reader:
        yield reader


@pytest.mark.parametrize(
    ("rel", "kernels", "runtime", "memcpy", "memset", "nvtx"),
    MANIFEST_COUNTS,
    ids=lambda v: str(v).split("/")[-1] if isinstance(v, str) else None,
)
def test_counts_match_manifest(tmp_path, test_data, rel, kernels, runtime, memcpy, memset, nvtx):
    import_nsys(test_data / rel, tmp_path / "t.duckdb")
    with open_trace(tmp_path / "t.duckdb") as r:
        c = r.counts()
        # every NVTX row of these files is a push/pop range
        assert (c["kernels"], c["api_calls"], c["copies"], c["memsets"], c["nvtx_ranges"]) == (
            kernels,
            runtime,
            memcpy,
            memset,
            nvtx,
        )
        assert r.sql("SELECT source FROM run") == [("real",)]
        assert r.sql("SELECT DISTINCT duration_source FROM kernels") == [("measured",)]
        assert r.sql("SELECT min(enter_ns) FROM api_calls")[0][0] >= 0
        lows = r.sql(
            "SELECT least((SELECT min(enter_ns) FROM api_calls),"
            " (SELECT min(start_ns) FROM kernels))"
        )
        assert lows[0][0] == 0 or r.counts()["nvtx_ranges"] > 0


def test_known_kernel_name_duration_and_launch(fuser):
    # the nvjet GEMM of HopperMatmulTest: start 1848853036, end 1848944139 in the export
    row = fuser.sql(
        "SELECT k.end_ns - k.start_ns, k.grid_x, k.grid_y, k.grid_z, k.block_x, f.registers,"
        " a.name, k.launch_ns <= k.start_ns FROM kernels k JOIN api_calls a USING (call_id)"
        " JOIN kernel_features f USING (kernel_id)"
        " WHERE k.name = 'nvjet_hsh_128x256_64x4_2x1_v_bz_coopA_NTN'"
    )
    assert row == [(91103, 2, 64, 1, 384, 168, "cuLaunchKernelEx", True)]
    assert fuser.sql("SELECT count(*), count(call_id) FROM kernels") == [(19, 19)]


def test_names_processes_threads_and_device(fuser):
    # nsys names calls 'cudaLaunchKernel_v7000'; the version suffix is dropped
    assert fuser.sql(
        "SELECT count(*) FROM api_calls WHERE regexp_matches(name, '_v[0-9]{4,}$')"
    ) == [(0,)]
    assert fuser.sql("SELECT count(*) FROM api_calls WHERE name = 'cudaLaunchKernel'") == [(17,)]
    assert fuser.sql("SELECT pid, argv FROM processes") == [(227916, ["./bin/test_matmul"])]
    assert fuser.sql("SELECT pid, tid, name FROM threads") == [(227916, 227916, "test_matmul")]
    assert fuser.sql("SELECT name, model, memory_bytes FROM devices") == [
        ("NVIDIA H100 80GB HBM3", "h100-sxm", 84942979072)
    ]
    assert fuser.sql("SELECT kind, bytes FROM copies") == [("DtoH", 1)]
    assert fuser.sql("SELECT max(depth) FROM nvtx_ranges")[0][0] > 0


def test_two_processes_windowed_export_without_gpu_table(tmp_path, test_data):
    import_nsys(test_data / NSYS_AI / "mfu_2gpu_after.sqlite", tmp_path / "t.duckdb")
    with open_trace(tmp_path / "t.duckdb") as r:
        assert r.sql("SELECT pid FROM processes ORDER BY pid") == [(148,), (149,)]
        assert r.sql("SELECT ordinal, pid, name FROM devices ORDER BY ordinal") == [
            (0, 148, None),
            (1, 149, None),
        ]
        assert r.sql("SELECT kind, count(*) FROM copies GROUP BY 1 ORDER BY 1") == [
            ("DtoD", 872),
            ("HtoD", 32),
        ]
        # ncclDevKernel_SendRecv x31 in each process -> 31 two-party barriers
        assert r.sql("SELECT count(*), min(world_size), max(world_size) FROM barriers") == [
            (31, 2, 2)
        ]
        assert r.sql("SELECT count(DISTINCT pid) FROM barrier_arrivals") == [(2,)]


def test_global_ids_decode():
    assert pid_of(285298772900428) == 227916
    assert tid_of(285298772900428) == 227916
    assert pid_of(281477459738872) == 148 and tid_of(281477459738872) == 248


def test_older_schema_without_optional_columns_loads(tmp_path):
    """Exports of older Nsight versions lack many columns and tables; only the core is needed."""
    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db)
    gpid = 1234 << 24
    con.executescript(f"""
        CREATE TABLE StringIds (id INTEGER PRIMARY KEY, value TEXT);
        INSERT INTO StringIds VALUES (1, 'cudaLaunchKernel_v7000'), (2, 'my_kernel(float*)'),
                                     (3, 'my_kernel');
        CREATE TABLE CUPTI_ACTIVITY_KIND_RUNTIME (start INT, end INT, globalTid INT,
                                                  correlationId INT, nameId INT);
        INSERT INTO CUPTI_ACTIVITY_KIND_RUNTIME VALUES (1000, 1500, {gpid + 1235}, 7, 1);
        CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL (start INT, end INT, deviceId INT, streamId INT,
            correlationId INT, globalPid INT, demangledName INT, shortName INT, gridX INT,
            gridY INT, gridZ INT, blockX INT, blockY INT, blockZ INT);
        INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL VALUES (2000, 2600, 0, 7, 7, {gpid}, 2, 3,
                                                       4, 1, 1, 256, 1, 1);
        CREATE TABLE NVTX_EVENTS (start INT, end INT, eventType INT, text TEXT, globalTid INT);
        INSERT INTO NVTX_EVENTS VALUES (900, 3000, 59, 'step', {gpid + 1235});
    """)
    con.commit()
    con.close()
    import_nsys(db, tmp_path / "t.duckdb")
    with open_trace(tmp_path / "t.duckdb") as r:
        assert r.sql(
            "SELECT k.name, k.start_ns, k.end_ns, k.grid_x, k.block_x, a.name, a.enter_ns"
            " FROM kernels k JOIN api_calls a USING (call_id)"
        ) == [("my_kernel(float*)", 1100, 1700, 4, 256, "cudaLaunchKernel", 100)]
        assert r.sql("SELECT name, start_ns, end_ns FROM nvtx_ranges") == [("step", 0, 2100)]
        assert r.sql("SELECT pid FROM processes") == [(1234,)]
        assert r.sql("SELECT pid, tid FROM threads") == [(1234, 1235)]
        assert Path(tmp_path / "t.duckdb").exists()


def _with_text_in_cupti_columns(src: Path, dest: Path, rows: str) -> Path:
    """A copy of a real export whose CUPTI `start` column holds text in `rows` (a WHERE clause)."""
    shutil.copyfile(src, dest)
    con = sqlite3.connect(dest)
    for table in ("CUPTI_ACTIVITY_KIND_KERNEL", "CUPTI_ACTIVITY_KIND_RUNTIME"):
        con.execute(f"UPDATE {table} SET start = 'n/a' WHERE {rows}")
    con.commit()
    con.close()
    return dest


def test_rows_with_text_in_integer_columns_are_skipped_and_counted(tmp_path, test_data):
    src = test_data / FUSER_H100
    bad = _with_text_in_cupti_columns(src, tmp_path / "bad.sqlite", "rowid % 2 = 0")
    summary = import_nsys(bad, tmp_path / "t.duckdb")
    kernels_skipped = 19 - summary.counts["kernels"]
    calls_skipped = 967 - summary.counts["api_calls"]
    assert kernels_skipped > 0 and calls_skipped > 0
    assert dict(summary.malformed) == {
        "CUPTI_ACTIVITY_KIND_KERNEL row with a non-integer start": kernels_skipped,
        "CUPTI_ACTIVITY_KIND_RUNTIME row with a non-integer start": calls_skipped,
    }
    assert f"skipped {kernels_skipped + calls_skipped} malformed events" in summary.line()
    with open_trace(tmp_path / "t.duckdb") as r:
        assert json.loads(r.sql("SELECT config FROM run")[0][0])["malformed"] == dict(
            summary.malformed
        )


def test_an_export_whose_rows_are_all_malformed_is_an_error(tmp_path, test_data):
    src = test_data / f"{NSYS_AI}/mock.sqlite"
    bad = _with_text_in_cupti_columns(src, tmp_path / "bad.sqlite", "1")
    con = sqlite3.connect(bad)
    con.execute("UPDATE CUPTI_ACTIVITY_KIND_MEMCPY SET streamId = 'default'")
    con.commit()
    con.close()
    with pytest.raises(RevatiImportError) as err:
        import_nsys(bad, tmp_path / "t.duckdb")
    assert str(err.value).startswith(f"{bad}: every CUPTI row is malformed (")
    assert "CUPTI_ACTIVITY_KIND_MEMCPY row with a non-integer streamId 1" in str(err.value)
    assert not (tmp_path / "t.duckdb").exists()
