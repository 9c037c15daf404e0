"""The entry-point table: its format, its regeneration from a real library, status preservation."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from revati.elfinfo import read_elf
from revati.errors import RevatiConfigError
from revati.native import gen_entry_points
from revati.native.entry_table import (
    TABLE_PATH,
    EntryPoint,
    fn_enum_c,
    fn_names,
    read_table,
    write_table,
)

CUDART = Path("/usr/local/cuda/lib64/libcudart.so.13")
HEADER = "name\tlibrary\tstatus\tnotes\n"

# What every basic CUDA 13 program calls; the shim must answer these itself.
BASIC_PROGRAM_NEEDS = (
    "cudaMalloc", "cudaFree", "cudaMemcpy", "cudaMemcpyAsync", "cudaMemset", "cudaLaunchKernel",
    "cudaDeviceSynchronize", "cudaGetLastError", "cudaStreamCreate", "cudaEventRecord",
    "__cudaRegisterFatBinary", "__cudaRegisterFatBinaryEnd", "__cudaRegisterFunction",
    "__cudaUnregisterFatBinary", "__cudaPushCallConfiguration", "__cudaPopCallConfiguration",
    "__cudaGetKernel", "__cudaLaunchKernel", "__cudaLaunchKernel_ptsz", "cudaLaunchKernelExC",
)  # fmt: skip


def test_committed_table_is_well_formed():
    rows = read_table()
    assert len(rows) >= 400
    assert {row.status for row in rows} == {"emulated", "stub"}
    assert len({row.name for row in rows}) == len(rows)
    emulated = {row.name for row in rows if row.status == "emulated"}
    assert set(BASIC_PROGRAM_NEEDS) <= emulated
    assert "cudaGetExportTable" not in emulated


def test_committed_table_matches_the_real_cudart():
    if not CUDART.exists():
        pytest.skip(f"{CUDART} not installed (CUDA 13 toolkit missing)")
    exports = {sym.name for sym in read_elf(CUDART).defined_functions()}
    listed = {row.name for row in read_table() if row.library == "libcudart.so.13"}
    assert listed == exports


def test_merge_keeps_statuses_and_notes_and_other_libraries():
    existing = [
        EntryPoint("cudaFoo", "libcudart.so.13", "emulated", "done by hand"),
        EntryPoint("cudaGone", "libcudart.so.13", "stub"),
        EntryPoint("cublasCreate_v2", "libcublas.so.13", "emulated"),
    ]
    rows = gen_entry_points.merge(existing, "libcudart.so.13", ["cudaFoo", "cudaNew", "cudaMalloc"])
    by_name = {row.name: row for row in rows}
    assert by_name["cudaFoo"] == EntryPoint(
        "cudaFoo", "libcudart.so.13", "emulated", "done by hand"
    )
    assert by_name["cudaNew"].status == "stub"
    assert by_name["cudaMalloc"].status == "emulated"  # in INITIAL_EMULATED
    assert "cudaGone" not in by_name
    assert by_name["cublasCreate_v2"].library == "libcublas.so.13"


def test_regenerate_from_a_compiled_library(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc/gcc) on PATH")
    src = tmp_path / "fake.c"
    src.write_text("int cudaMalloc(void){return 0;}\nint cudaBrandNew(void){return 0;}\n"
                   "static int hidden(void){return 1;}\nint not_a_func = 3;\n")  # fmt: skip
    lib = tmp_path / "libfake.so.1"
    subprocess.run([cc, "-shared", "-fPIC", "-Wl,-soname,libfake.so.1", "-o", str(lib), str(src)],
                   check=True)  # fmt: skip
    table = tmp_path / "table.tsv"
    write_table([EntryPoint("cudaMalloc", "libfake.so.1", "stub", "flipped back")], table)
    assert gen_entry_points.main(["--lib", str(lib), "--table", str(table)]) == 0
    rows = {row.name: row for row in read_table(table)}
    assert set(rows) == {"cudaMalloc", "cudaBrandNew"}
    assert rows["cudaMalloc"] == EntryPoint("cudaMalloc", "libfake.so.1", "stub", "flipped back")
    assert rows["cudaBrandNew"].status == "stub"
    before = table.read_text()
    gen_entry_points.main(["--lib", str(lib), "--table", str(table)])
    assert table.read_text() == before  # idempotent


def test_missing_library_exits_with_a_clear_message(tmp_path, capsys):
    code = gen_entry_points.main(["--lib", str(tmp_path / "libcudart.so.13"), "--table",
                                  str(tmp_path / "t.tsv")])  # fmt: skip
    assert code == RevatiConfigError.exit_code
    err = capsys.readouterr().err
    assert "libcudart.so.13 does not exist" in err and "--lib" in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name\tstatus\n", "header"),
        (HEADER + "cudaX\tlib\tmaybe\t\n", "status 'maybe'"),
        (HEADER + "cudaX\tlib\tstub\t\ncudaX\tlib\tstub\t\n", "listed twice"),
        (HEADER + "cuda-x\tlib\tstub\t\n", "not a C identifier"),
        (HEADER + "cudaX\tstub\n", "4 tab-separated"),
        (HEADER + "cudaX\tlib\tstub\t\t0\n", "not an id"),
        (HEADER + "cudaX\tlib\tstub\t\tfive\n", "not an id"),
        (HEADER + "cudaX\tlib\tstub\t\t3\ncudaY\tlib\tstub\t\t3\n", "fn id 3 of cudaY is taken"),
    ],
)
def test_malformed_tables_name_file_and_line(tmp_path, text, message):
    table = tmp_path / "bad.tsv"
    table.write_text(text)
    with pytest.raises(RevatiConfigError, match=message) as info:
        read_table(table)
    assert str(table) in str(info.value)


def test_table_path_is_package_data():
    assert TABLE_PATH.parent.name == "native"


def test_bulk_symbol_reader_agrees_with_pyelftools():
    if not CUDART.exists():
        pytest.skip(f"{CUDART} not installed (CUDA 13 toolkit missing)")
    from elftools.elf.elffile import ELFFile

    with open(CUDART, "rb") as f:
        slow = {
            sym.name
            for sym in ELFFile(f).get_section_by_name(".dynsym").iter_symbols()
            if sym["st_shndx"] != "SHN_UNDEF" and sym["st_info"]["type"] == "STT_FUNC"
        }
    info = read_elf(CUDART)
    assert {sym.name for sym in info.defined_functions()} == slow
    assert {sym.version for sym in info.defined_functions()} == {"libcudart.so.13"}
    assert any(sym.name == "malloc" and sym.version.startswith("GLIBC_") for sym in info.undefined)


def test_docs_section_is_generated_between_markers(tmp_path):
    rows = [EntryPoint("cudaMalloc", "libcudart.so.13", "emulated", "ret:error"),
            EntryPoint("cudaFoo", "libcudart.so.13", "stub")]  # fmt: skip
    docs = tmp_path / "entry-points.md"
    docs.write_text(
        f"# T\n\n{gen_entry_points.DOCS_BEGIN}\nstale\n{gen_entry_points.DOCS_END}\ntail\n"
    )
    assert gen_entry_points.refresh_docs(rows, docs)
    text = docs.read_text()
    assert "stale" not in text and text.endswith("tail\n")
    assert "| `libcudart.so.13` | 1 | 1 |" in text and "- `cudaMalloc`" in text
    assert "cudaFoo`" not in text
    assert not gen_entry_points.refresh_docs(rows, tmp_path / "absent.md")


def test_fn_column_round_trips_and_names_record_ids(tmp_path):
    rows = [EntryPoint("cudaMalloc", "libcudart.so.13", "emulated", "", 1),
            EntryPoint("poll", "libc.so.6", "emulated", "libc", 3),
            EntryPoint("cudaFoo", "libcudart.so.13", "stub")]  # fmt: skip
    table = tmp_path / "t.tsv"
    write_table(rows, table)
    assert sorted(read_table(table), key=lambda r: r.name) == sorted(rows, key=lambda r: r.name)
    assert "cudaFoo\tlibcudart.so.13\tstub\t\n" in table.read_text()  # no fn: 4 columns
    assert fn_names(table) == ("unknown", "cudaMalloc", "unknown", "poll")  # 2: retired
    header = fn_enum_c(table)
    assert "FN_unknown = 0," in header and "FN_cudaMalloc = 1," in header
    assert "FN_poll = 3," in header and "FN_COUNT = 4," in header and "cudaFoo" not in header


def test_committed_fn_ids_are_stable():
    """Ring records carry these ids: they only change with the protocol version."""
    names = fn_names()
    assert names[:4] == ("unknown", "cudaMalloc", "cudaFree", "cudaMallocHost")
    assert names.index("cudaLaunchKernel") == 29 and names.index("__cudaLaunchKernel") == 31
    assert names.index("cudaGraphLaunch") == 56 and names.index("wait4") == 79
    assert names[69] == names[73] == "unknown"  # retired: not exported by CUDA 13


def test_every_function_the_shim_exports_has_a_row():
    from revati.native import build

    shim, _ = build.ensure_built()
    exported = {sym.name for sym in read_elf(shim).defined_functions()}
    listed = {row.name for row in read_table()}
    # the stubs' entry into the shim, and CUDA 12 names CUDA 13 no longer exports
    extra = {"revati_unsupported_call", "revati_unsupported_in", "cudaGetDeviceProperties_v2",
             "cudaThreadSynchronize", "cudaEventElapsedTime_v2"}  # fmt: skip
    assert exported - listed == extra
