"""The generated stubs compile, export every stub name, return their library's "not supported"
status (801 for the runtime, 15 for cuBLAS/Lt) and report their name and library."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from revati.native.entry_table import TABLE_PATH, read_table
from revati.native.stubgen import (
    CUBLAS_NOT_SUPPORTED,
    NOT_SUPPORTED,
    emulated_names,
    generate_stubs_c,
    stub_names,
)

# A stand-in for the shim's recorder: remembers the last name and library, returns the status.
RECORDER_C = """
#include <string.h>
static char last_name[256], last_library[256];
static int calls;
int revati_unsupported_in(const char *name, const char *library, int status) {
    strncpy(last_name, name, sizeof last_name - 1);
    strncpy(last_library, library, sizeof last_library - 1);
    calls++;
    return status;
}
const char *test_last_name(void) { return last_name; }
const char *test_last_library(void) { return last_library; }
int test_calls(void) { return calls; }
"""

# A shim that implements one emulated function itself.
STRONG_C = "int cudaMalloc(void **p, unsigned long n) { (void)p; (void)n; return 0; }\n"


def compile_shared(tmp: Path, name: str, sources: dict[str, str]) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc/gcc) on PATH")
    paths = []
    for file_name, text in sources.items():
        path = tmp / file_name
        path.write_text(text)
        paths.append(str(path))
    out = tmp / name
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", str(out), *paths],
                   check=True, capture_output=True, text=True)  # fmt: skip
    return out


def exported_functions(path: Path) -> dict[str, str]:
    """Defined dynamic function symbols -> binding."""
    with open(path, "rb") as f:
        dynsym = ELFFile(f).get_section_by_name(".dynsym")
        return {
            sym.name: sym["st_info"]["bind"]
            for sym in dynsym.iter_symbols()
            if sym["st_shndx"] != "SHN_UNDEF" and sym["st_info"]["type"] == "STT_FUNC"
        }


@pytest.fixture(scope="module")
def stub_library(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("stubs")
    return compile_shared(tmp, "libstubs.so", {"stubs.c": generate_stubs_c(), "rec.c": RECORDER_C})


@pytest.fixture(scope="module")
def weak_library(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("weak")
    sources = {
        "stubs.c": generate_stubs_c(weak_emulated=True),
        "rec.c": RECORDER_C,
        "shim.c": STRONG_C,
    }
    return compile_shared(tmp, "libweak.so", sources)


def test_every_stub_row_is_exported_and_no_emulated_row_is(stub_library):
    exported = exported_functions(stub_library)
    stubs = stub_names()
    assert len(stubs) > 200
    assert set(stubs) <= set(exported)
    assert not set(emulated_names()) & set(exported)


def test_calling_a_stub_returns_801_and_reports_its_name(stub_library):
    lib = ctypes.CDLL(str(stub_library))
    lib.test_last_name.restype = ctypes.c_char_p
    # Stubs that return cudaError_t (no `ret:` tag), taken from the table: rows flip to
    # `emulated` as the shim grows, so no name is hard-coded here.
    error_stubs = [
        row.name
        for row in read_table()
        if row.status == "stub"
        and not row.notes.startswith("ret:")
        and row.library in ("libcudart.so.13", "libcuda.so.1")
    ]
    for name in error_stubs[:: max(1, len(error_stubs) // 5)]:
        fn = getattr(lib, name)
        fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]  # the real args are ignored
        assert fn(None, 7, 1 << 40) == NOT_SUPPORTED
        assert lib.test_last_name() == name.encode()


def test_cublas_stubs_return_cublas_not_supported_and_name_their_library(stub_library):
    lib = ctypes.CDLL(str(stub_library))
    lib.test_last_name.restype = ctypes.c_char_p
    lib.test_last_library.restype = ctypes.c_char_p
    for name, library in (("cublasStrsm_v2", b"libcublas.so.13"),
                          ("cublasLtMatrixTransform", b"libcublasLt.so.13")):  # fmt: skip
        assert getattr(lib, name)(None, 0, 0) == CUBLAS_NOT_SUPPORTED
        assert lib.test_last_name() == name.encode()
        assert lib.test_last_library() == library


def test_legacy_cublas_value_returning_stubs_return_zeros(stub_library):
    lib = ctypes.CDLL(str(stub_library))
    lib.test_last_name.restype = ctypes.c_char_p
    lib.cublasSdot.restype = ctypes.c_float
    lib.cublasDnrm2.restype = ctypes.c_double
    assert lib.cublasSdot(4, None, 1, None, 1) == 0.0
    assert lib.test_last_name() == b"cublasSdot"
    assert lib.cublasDnrm2(4, None, 1) == 0.0

    class DoubleComplex(ctypes.Structure):
        _fields_ = [("x", ctypes.c_double), ("y", ctypes.c_double)]

    lib.cublasZdotu.restype = DoubleComplex
    value = lib.cublasZdotu(4, None, 1, None, 1)
    assert (value.x, value.y) == (0.0, 0.0)
    assert lib.test_last_name() == b"cublasZdotu"


def test_an_nvml_stub_returns_nvml_not_supported_and_names_its_library(stub_library):
    lib = ctypes.CDLL(str(stub_library))
    lib.test_last_name.restype = lib.test_last_library.restype = ctypes.c_char_p
    nvml_stubs = [
        r.name for r in read_table() if r.status == "stub" and r.library == "libnvidia-ml.so.1"
    ]
    driver_stubs = [
        r.name for r in read_table() if r.status == "stub" and r.library == "libcuda.so.1"
    ]
    assert getattr(lib, nvml_stubs[0])(None) == 3  # NVML_ERROR_NOT_SUPPORTED
    assert (lib.test_last_name(), lib.test_last_library()) == (
        nvml_stubs[0].encode(),
        b"libnvidia-ml.so.1",
    )
    assert getattr(lib, driver_stubs[0])(None) == 801  # CUDA_ERROR_NOT_SUPPORTED
    assert lib.test_last_library() == b"libcuda.so.1"


def test_the_stub_names_array_is_sorted_for_bsearch():
    source = generate_stubs_c()
    listed = re.findall(r'^    "(\w+)",$', source.split("revati_stub_names[]", 1)[1], re.M)
    assert listed == sorted(stub_names(), key=str.encode)


def test_nccl_stubs_return_invalid_usage(stub_library):
    lib = ctypes.CDLL(str(stub_library))
    lib.test_last_name.restype = ctypes.c_char_p
    nccl = [r.name for r in read_table() if r.status == "stub" and r.library == "libnccl.so.2"]
    assert "ncclCommShrink" in nccl
    for name in nccl[:: max(1, len(nccl) // 5)]:
        assert getattr(lib, name)() == 5  # ncclInvalidUsage
        assert lib.test_last_name() == name.encode()


def test_pointer_and_struct_returning_stubs_return_zeros(stub_library):
    lib = ctypes.CDLL(str(stub_library))
    lib.test_last_name.restype = ctypes.c_char_p
    lib.__cudaGetProcAddress.restype = ctypes.c_void_p
    assert lib.__cudaGetProcAddress(b"cuInit") is None
    assert lib.test_last_name() == b"__cudaGetProcAddress"

    class ChannelDesc(ctypes.Structure):
        _fields_ = [(c, ctypes.c_int) for c in ("x", "y", "z", "w", "f")]

    lib.cudaCreateChannelDesc.restype = ChannelDesc
    lib.cudaCreateChannelDesc.argtypes = [ctypes.c_int] * 5
    desc = lib.cudaCreateChannelDesc(8, 8, 8, 8, 1)
    assert (desc.x, desc.y, desc.z, desc.w, desc.f) == (0, 0, 0, 0, 0)
    assert lib.test_last_name() == b"cudaCreateChannelDesc"


def test_weak_emulated_stubs_yield_to_the_shims_definitions(weak_library):
    exported = exported_functions(weak_library)
    assert set(emulated_names()) | set(stub_names()) <= set(exported)
    assert exported["cudaMalloc"] == "STB_GLOBAL"  # the shim's strong definition won
    assert exported["cudaFree"] == "STB_WEAK"
    lib = ctypes.CDLL(str(weak_library))
    lib.test_last_name.restype = ctypes.c_char_p
    assert lib.cudaMalloc(None, 16) == 0
    assert lib.test_calls() == 0
    assert lib.cudaFree(None) == NOT_SUPPORTED
    assert lib.test_last_name() == b"cudaFree"


def test_an_unknown_return_tag_is_a_config_error(tmp_path):
    from revati.errors import RevatiConfigError

    table = tmp_path / "t.tsv"
    table.write_text("name\tlibrary\tstatus\tnotes\ncudaX\tlibcudart.so.13\tstub\tret:quaternion\n")
    with pytest.raises(RevatiConfigError, match="ret:quaternion"):
        generate_stubs_c(table)


def test_the_committed_table_is_the_default():
    assert TABLE_PATH.name == "entry_points.tsv" and TABLE_PATH.exists()


def test_unimplemented_lists_emulated_rows_a_shim_lacks(stub_library, weak_library):
    from revati.native.stubgen import unimplemented

    assert unimplemented(stub_library) == emulated_names()
    assert unimplemented(weak_library) == []
