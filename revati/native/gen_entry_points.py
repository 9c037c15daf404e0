"""Regenerate `entry_points.tsv` from a real CUDA library's dynamic symbol table.

    python -m revati.native.gen_entry_points [--lib PATH] [--table PATH]
    python -m revati.native.gen_entry_points --docs-only   # refresh docs/entry-points.md only
    python -m revati.native.gen_entry_points --driver-header /usr/local/cuda/include/cuda.h
    python -m revati.native.gen_entry_points --nvml-bindings "$(python -c 'import pynvml; print(pynvml.__file__)')"

Reads every function the library exports (pyelftools, `.dynsym`), replaces that library's rows
in the table with one row per export, and keeps the status and notes of every name already
listed; new names start as `emulated` if they are in `INITIAL_EMULATED`, else `stub`. Rows of
other libraries are left alone. The table is committed, so building revati never needs the
CUDA toolkit; run this only when a new CUDA release adds or removes functions.

Machines without a GPU have no driver library to read: the driver's rows (`libcuda.so.1`) come
from `cuda.h`, preprocessed twice (default and per-thread default stream) so every versioned
name (`cuMemAlloc_v2`, `cuLaunchKernel_ptsz`) is listed; NVML's rows (`libnvidia-ml.so.1`)
from the names NVIDIA's Python bindings (nvidia-ml-py) look up in the library.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import subprocess
import sys
from pathlib import Path

from revati.elfinfo import LibrarySearch, read_elf
from revati.errors import RevatiConfigError, RevatiError
from revati.native.entry_table import TABLE_PATH, EntryPoint, read_table, write_table

DEFAULT_LIBRARY = "libcudart.so.13"

# What a basic CUDA program needs from the runtime: the shim implements these from day one.
# `_ptsz`/`_ptds` (per-thread default stream) variants follow their base name.
_EMULATED_BASES = {
    # registration and launch internals emitted by nvcc
    "__cudaRegisterFatBinary", "__cudaRegisterFatBinaryEnd", "__cudaUnregisterFatBinary",
    "__cudaRegisterFunction", "__cudaRegisterVar", "__cudaRegisterManagedVar",
    "__cudaPushCallConfiguration", "__cudaPopCallConfiguration", "__cudaGetKernel",
    "__cudaLaunchKernel", "__cudaInitModule",
    # launch
    "cudaLaunchKernel", "cudaLaunchKernelExC", "cudaLaunchCooperativeKernel",
    "cudaLaunchHostFunc", "cudaFuncGetAttributes", "cudaFuncSetAttribute",
    "cudaFuncSetCacheConfig", "cudaFuncGetName", "cudaGetFuncBySymbol",
    "cudaOccupancyMaxActiveBlocksPerMultiprocessor",
    "cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags",
    # memory
    "cudaMalloc", "cudaFree", "cudaMallocAsync", "cudaFreeAsync", "cudaMallocHost", "cudaFreeHost",
    "cudaHostAlloc", "cudaHostRegister", "cudaHostUnregister", "cudaHostGetDevicePointer",
    "cudaMallocManaged", "cudaMallocPitch", "cudaMemGetInfo", "cudaPointerGetAttributes",
    "cudaMemcpy", "cudaMemcpyAsync", "cudaMemcpyPeer", "cudaMemcpyPeerAsync",
    "cudaMemcpy2D", "cudaMemcpy2DAsync", "cudaMemcpyToSymbol", "cudaMemcpyToSymbolAsync",
    "cudaMemcpyFromSymbol", "cudaMemcpyFromSymbolAsync", "cudaGetSymbolAddress",
    "cudaGetSymbolSize", "cudaMemset", "cudaMemsetAsync", "cudaMemset2D", "cudaMemset2DAsync",
    # devices
    "cudaGetDevice", "cudaSetDevice", "cudaGetDeviceCount", "cudaGetDeviceProperties",
    "cudaDeviceGetAttribute", "cudaGetDeviceFlags", "cudaSetDeviceFlags", "cudaInitDevice",
    "cudaDeviceSynchronize", "cudaDeviceReset", "cudaDeviceGetStreamPriorityRange",
    "cudaDeviceCanAccessPeer", "cudaDeviceEnablePeerAccess", "cudaDeviceGetPCIBusId",
    "cudaDeviceGetLimit", "cudaDeviceSetLimit", "cudaChooseDevice",
    # streams and events
    "cudaStreamCreate", "cudaStreamCreateWithFlags", "cudaStreamCreateWithPriority",
    "cudaStreamDestroy", "cudaStreamSynchronize", "cudaStreamQuery", "cudaStreamWaitEvent",
    "cudaStreamGetPriority", "cudaStreamGetFlags", "cudaStreamGetId", "cudaStreamGetDevice",
    "cudaEventCreate", "cudaEventCreateWithFlags", "cudaEventDestroy", "cudaEventRecord",
    "cudaEventRecordWithFlags", "cudaEventSynchronize", "cudaEventQuery", "cudaEventElapsedTime",
    # graphs and capture (the path CUDA-graph users such as PyTorch take)
    "cudaStreamBeginCapture", "cudaStreamEndCapture", "cudaStreamIsCapturing",
    "cudaStreamGetCaptureInfo", "cudaThreadExchangeStreamCaptureMode", "cudaGraphCreate",
    "cudaGraphDestroy", "cudaGraphInstantiate", "cudaGraphInstantiateWithFlags",
    "cudaGraphInstantiateWithParams", "cudaGraphLaunch", "cudaGraphUpload",
    "cudaGraphExecDestroy", "cudaGraphGetNodes",
    # errors and versions
    "cudaGetLastError", "cudaPeekAtLastError", "cudaGetErrorString", "cudaGetErrorName",
    "cudaRuntimeGetVersion", "cudaDriverGetVersion",
    "cudaGetDriverEntryPoint", "cudaGetDriverEntryPointByVersion",
    "cudaProfilerStart", "cudaProfilerStop",
}  # fmt: skip
INITIAL_EMULATED = frozenset(
    _EMULATED_BASES | {f"{n}{s}" for n in _EMULATED_BASES for s in ("_ptsz", "_ptds")}
)


def find_library(soname: str = DEFAULT_LIBRARY) -> Path:
    """The real library: $CUDA_HOME, /usr/local/cuda*, the ldconfig cache, or an error."""
    roots = [os.environ.get("CUDA_HOME", ""), os.environ.get("CUDA_PATH", ""), "/usr/local/cuda"]
    roots += sorted(glob.glob("/usr/local/cuda-*"), reverse=True)
    candidates = [Path(root) / sub / soname for root in roots if root for sub in ("lib64", "lib")]
    candidates += [Path(p) for p in LibrarySearch().ldconfig_cache().get(soname, [])]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise RevatiConfigError(
        f"{soname} not found (looked in $CUDA_HOME, /usr/local/cuda*/lib64 and the ldconfig "
        "cache); install the CUDA toolkit or pass --lib /path/to/" + soname
    )


def merge(existing: list[EntryPoint], library: str, exports: list[str]) -> list[EntryPoint]:
    """`library`'s rows become one per export; known names keep their status and notes."""
    known = {row.name: row for row in existing}
    exported = set(exports)
    others = [row for row in existing if row.library != library and row.name not in exported]
    rows = []
    for name in sorted(exported):
        old = known.get(name)
        if old is not None:
            rows.append(EntryPoint(name, library, old.status, old.notes, old.fn))
        else:
            rows.append(
                EntryPoint(name, library, "emulated" if name in INITIAL_EMULATED else "stub")
            )
    return others + rows


DRIVER_LIBRARY = "libcuda.so.1"
NVML_LIBRARY = "libnvidia-ml.so.1"
_DRIVER_DECLARATION = re.compile(r"\bCUresult\s+(cu[A-Z]\w*)\s*\(")
_NVML_LOOKUP = re.compile(r"_nvmlGetFunctionPointer\(\s*[\"'](nvml\w+)[\"']")


_VERSION_SUFFIX = re.compile(r"_v\d+$")


def with_legacy_names(names: set[str]) -> list[str]:
    """`names` plus the unversioned name of each `_vN` one: the real libraries keep exporting
    the older ABI under the old name (PyTorch looks up `nvmlDeviceGetComputeRunningProcesses`)."""
    return sorted(names | {_VERSION_SUFFIX.sub("", n) for n in names})


def driver_exports(header: Path) -> list[str]:
    """The driver functions `cuda.h` declares, under both default-stream modes."""
    from revati.native.build import compiler

    names: set[str] = set()
    for extra in ([], ["-DCUDA_API_PER_THREAD_DEFAULT_STREAM"]):
        proc = subprocess.run([compiler(), "-E", "-P", *extra, "-I", str(header.parent), str(header)],
                              capture_output=True, text=True)  # fmt: skip
        if proc.returncode != 0:
            raise RevatiConfigError(f"cannot preprocess {header}: {proc.stderr.strip()[:300]}")
        names.update(_DRIVER_DECLARATION.findall(proc.stdout))
    return with_legacy_names(names)


# NVML exports the bindings never look up (they initialise through nvmlInitWithFlags).
NVML_NOT_LOOKED_UP = frozenset({"nvmlInit", "nvmlInit_v2", "nvmlDeviceGetPciInfo_v2"})


def nvml_exports(bindings: Path) -> list[str]:
    """The NVML functions the Python bindings look up by name, and those they never do."""
    try:
        names = set(_NVML_LOOKUP.findall(bindings.read_text(encoding="utf-8")))
        return with_legacy_names(names | NVML_NOT_LOOKED_UP)
    except OSError as e:
        raise RevatiConfigError(f"cannot read {bindings}: {e.strerror}") from e


def regenerate(library_path: Path, table_path: Path) -> tuple[list[EntryPoint], list[str]]:
    """Rewrite the table from `library_path`; returns the rows and the names dropped."""
    info = read_elf(library_path)
    library = info.soname or library_path.name
    exports = [sym.name for sym in info.defined_functions()]
    if not exports:
        raise RevatiConfigError(f"{library_path} exports no functions; is it a CUDA library?")
    return regenerate_from(library, exports, table_path)


def regenerate_from(
    library: str, exports: list[str], table_path: Path
) -> tuple[list[EntryPoint], list[str]]:
    """Rewrite `library`'s rows of the table as `exports`; returns the rows and names dropped."""
    if not exports:
        raise RevatiConfigError(f"no functions found for {library}")
    existing = read_table(table_path) if table_path.exists() else []
    rows = merge(existing, library, exports)
    dropped = sorted({r.name for r in existing if r.library == library} - set(exports))
    write_table(rows, table_path)
    return rows, dropped


DOCS_PATH = Path(__file__).resolve().parents[2] / "docs" / "entry-points.md"
DOCS_BEGIN = "<!-- BEGIN GENERATED: python -m revati.native.gen_entry_points --docs-only -->"
DOCS_END = "<!-- END GENERATED -->"


def docs_section(rows: list[EntryPoint]) -> str:
    """The generated part of docs/entry-points.md: counts, then every emulated name."""
    lines = [DOCS_BEGIN, "", "| library | emulated | stub |", "|---|---:|---:|"]
    for library in sorted({row.library for row in rows}):
        mine = [row for row in rows if row.library == library]
        emulated = sum(row.status == "emulated" for row in mine)
        lines.append(f"| `{library}` | {emulated} | {len(mine) - emulated} |")
    lines += ["", "Emulated (by library, then name):", ""]
    emulated_rows = sorted((row for row in rows if row.status == "emulated"),
                           key=lambda row: (row.library, row.name))  # fmt: skip
    lines += [f"- `{row.name}` ({row.library})" + (f": {row.notes}" if row.notes else "")
              for row in emulated_rows]  # fmt: skip
    return "\n".join([*lines, "", DOCS_END])


def refresh_docs(rows: list[EntryPoint], docs_path: Path = DOCS_PATH) -> bool:
    """Replace the generated section of the docs; False if the docs have no markers."""
    if not docs_path.exists():
        return False
    text = docs_path.read_text(encoding="utf-8")
    start, end = text.find(DOCS_BEGIN), text.find(DOCS_END)
    if start < 0 or end < start:
        return False
    docs_path.write_text(text[:start] + docs_section(rows) + text[end + len(DOCS_END) :], "utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m revati.native.gen_entry_points",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument(
        "--lib", type=Path, help=f"the real library (default: find {DEFAULT_LIBRARY})"
    )
    parser.add_argument("--table", type=Path, default=TABLE_PATH, help="the table to update")
    parser.add_argument("--driver-header", type=Path,
                        help=f"take {DRIVER_LIBRARY}'s functions from this cuda.h")  # fmt: skip
    parser.add_argument("--nvml-bindings", type=Path,
                        help=f"take {NVML_LIBRARY}'s functions from this pynvml.py")  # fmt: skip
    parser.add_argument("--docs-only", action="store_true",
                        help="only refresh the generated section of docs/entry-points.md")  # fmt: skip
    args = parser.parse_args(argv)
    if args.docs_only:
        return _refresh_docs_only(args.table)
    try:
        if args.driver_header or args.nvml_bindings:
            library_path = args.driver_header or args.nvml_bindings
            library = DRIVER_LIBRARY if args.driver_header else NVML_LIBRARY
            exports = (
                driver_exports(library_path) if args.driver_header else nvml_exports(library_path)
            )
            rows, dropped = regenerate_from(library, exports, args.table)
        else:
            library_path = args.lib or find_library()
            if not library_path.is_file():
                raise RevatiConfigError(
                    f"{library_path} does not exist; pass --lib the real library"
                )
            rows, dropped = regenerate(library_path, args.table)
    except RevatiError as e:
        print(f"gen_entry_points: error: {e}", file=sys.stderr)
        return e.exit_code
    emulated = sum(row.status == "emulated" for row in rows)
    print(f"{args.table}: {len(rows)} rows ({emulated} emulated) from {library_path}")
    if dropped:
        print(f"dropped (no longer exported): {', '.join(dropped)}")
    if args.table == TABLE_PATH and refresh_docs(rows):
        print(f"{DOCS_PATH}: generated section refreshed")
    return 0


def _refresh_docs_only(table_path: Path) -> int:
    try:
        rows = read_table(table_path)
    except RevatiError as e:
        print(f"gen_entry_points: error: {e}", file=sys.stderr)
        return e.exit_code
    if not refresh_docs(rows):
        print(f"gen_entry_points: error: {DOCS_PATH} lacks the generated-section markers",
              file=sys.stderr)  # fmt: skip
        return 1
    print(f"{DOCS_PATH}: generated section refreshed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
