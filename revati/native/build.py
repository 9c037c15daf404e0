"""Build the native shim with the system C compiler (no CUDA toolkit needed).

Outputs, in the build folder (`revati/native/_build/` when the package is writable, else
`$XDG_CACHE_HOME/revati/native-<hash>/`):
- `libcudart.so.13`: the preloaded shim (SONAME libcudart.so.13, so it also satisfies a plain
  `DT_NEEDED libcudart.so.13`), with a generated stub for every unemulated entry point listed
  in `entry_points.tsv` (`revati.native.stubgen.generate_stubs_c`), when that table exists;
- `libcuda.so.1` (and the name `libcuda.so`, which Triton links against), `libnvidia-ml.so.1`
  and `libnccl.so.2`: empty libraries with those SONAMEs whose one `DT_NEEDED` entry is the
  shim, preloaded with it. The driver, NVML and NCCL functions live in the shim itself (one
  device, context, stream and memory model for all of them); these names only satisfy a
  `dlopen("libcuda.so.1")` (PyTorch, Triton, NVML bindings), a `dlopen("libnccl.so.2")` (vLLM's
  own NCCL bindings), a `DT_NEEDED` entry or a link line, and `dlsym` on their handles finds the
  shim's functions through that dependency;
- `librevati_clock.so`: the coordinator's side of the clock page, loaded with ctypes.

Run `python -m revati.native.build` to build by hand, `--update-table` to mark every entry
point the shim defines as `emulated` in entry_points.tsv.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

NATIVE = Path(__file__).resolve().parent
# The shim, one file per concern (docs/entry-points.md, "The native layer"). A new library layer
# adds its files here.
SHIM_SOURCES = (
    "hooks.c",  # the real functions behind the interposers, resolved once
    "run.c",  # init, joining the run, fork
    "config.c",  # config.txt
    "clock.c",  # virtual time and the host-cost charge
    "clock_page.c",  # the clock page (shared with the coordinator's helper)
    "ring.c",  # records: ring, names file, thread numbering
    "threads.c",  # pthread_create/join and `running`
    "gomp.c",  # OpenMP workers count as running inside parallel regions only
    "spin_wait.c",  # sched_yield spin loops wait out of `running` when alone
    "block.c",  # blocking calls and fd waits on the coordinator
    "memory.c",
    "cudart.c",
    "launch.c",  # kernel registration and the launch hot path
    "kernel_args.c",  # argument bytes of launches whose layout is known
    "capture.c",  # stream capture
    "graph.c",  # CUDA graphs
    "libc_time.c",
    "io_wait.c",
    "io_read.c",  # blocking reads on sockets, pipes and eventfds as fd waits
    "host_fn.c",
    "proc_wait.c",
    "timed_wait.c",  # timed waits on this process's condition variables and semaphores
    "gemm.c",
    "cublas.c",
    "cublaslt.c",
    "devices.c",
    "driver.c",
    "driver_mem.c",
    "driver_vmm.c",
    "driver_module.c",
    "driver_tensormap.c",  # TMA descriptors
    "cubin.c",
    "nvml.c",
    "stream_attr.c",
    "mempool.c",
    "mempool_attr.c",
    "mempool_ipc.c",
    "graph_mem.c",
    "graph_nodes.c",
    "graph_cond.c",
    "ipc.c",
    "ipc_barrier.c",  # kernels that are barriers of processes sharing IPC buffers
    "nccl.c",  # NCCL at its API: communicators, collectives as barriers
    "nccl_data.c",  # NCCL: real bytes on backed buffers
    "dl_redirect.c",  # dlopen of NVIDIA's libraries by path: revati's of the same name
)
HELPER_SOURCES = ("clock_page.c", "clock_helper.c", "signal_relay.c")
VERSION_SCRIPT = "shim.map"
HEADERS = (
    "shim.map",
    "shim.h",
    "clock_page.h",
    "shim_internal.h",
    "core.h",
    "hooks.h",
    "cuda_errors.h",
    "memory.h",
    "objects.h",
    "mempool.h",
    "graph_mem.h",
    "cuda_types.h",
    "cublas_types.h",
    "driver.h",
    "cubin.h",
    "nccl_layer.h",
    "kernel_args.h",
)
SHIM_NAME = "libcudart.so.13"
HELPER_NAME = "librevati_clock.so"
# Libraries that stand in for NVIDIA's by name only (see the module docstring).
FACADE_NAMES = ("libcuda.so.1", "libnvidia-ml.so.1", "libnccl.so.2")
FACADE_LINKS = {"libcuda.so": "libcuda.so.1"}
TABLE = NATIVE / "entry_points.tsv"
FN_HEADER = "revati_fn.h"  # generated from TABLE into the build's work folder
CFLAGS = [
    "-O2",
    "-fPIC",
    "-std=gnu11",
    "-Wall",
    "-Wno-unused-function",
    "-fvisibility=hidden",
    "-D_GNU_SOURCE",
]


# The shim only. It is preloaded (a startup library), so its thread-locals can live in the static
# TLS block: one %fs-relative access instead of a __tls_get_addr call, several per launch.
SHIM_CFLAGS = ["-ftls-model=initial-exec"]
# Link-time optimisation of the shim, when the compiler has it: a launch then inlines the clock
# read, the ring reservation and the charge from their own files (`flatten` in launch.c) and makes
# no call. Fat objects keep `nm` (defined_symbols) working. See docs/time-model.md for the figures.
LTO_FLAGS = ["-flto", "-ffat-lto-objects"]
# REVATI_SANITIZE=undefined: the shim (not the helper) built with UndefinedBehaviorSanitizer,
# stopping the program at the first report, in its own folder. For tests and development.
SANITIZE_ENV = "REVATI_SANITIZE"
SANITIZE_FLAGS = ["-fsanitize=undefined", "-fno-sanitize-recover=undefined", "-g"]


class BuildError(RuntimeError):
    """The C compiler failed; the message holds its output."""


def _digested_files() -> list[tuple[Path, bytes]]:
    """The files the build depends on, each with what its bytes are prefixed with in the hash."""
    sources = sorted({*SHIM_SOURCES, *HELPER_SOURCES, *HEADERS})
    extras = (TABLE, NATIVE / "stubgen.py", NATIVE / "build.py", NATIVE / "entry_table.py")
    return [(NATIVE / name, name.encode() + b"\0") for name in sources] + [
        (extra, b"") for extra in extras if extra.exists()
    ]


_DIGESTS: dict[tuple[tuple[str, int, int], ...], str] = {}  # by (file, mtime, size): one hash


def source_digest() -> str:
    """A hash of the native sources; computed once per process while no file changes (a run
    asks several times, and hashing every source costs tens of ms)."""
    files = _digested_files()
    stamp = tuple((str(f), (st := f.stat()).st_mtime_ns, st.st_size) for f, _ in files)
    digest = _DIGESTS.get(stamp)
    if digest is None:
        h = hashlib.sha256()
        for f, prefix in files:
            h.update(prefix + f.read_bytes())
        digest = _DIGESTS[stamp] = h.hexdigest()[:16]
    return digest


def compiler() -> str:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise BuildError("no C compiler found (install gcc or set CC)")
    return cc


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"{' '.join(cmd)}\n{proc.stderr}")


def write_fn_header(out: Path) -> Path:
    """revati_fn.h (enum revati_fn) from the table's fn column, in out; returns out."""
    from revati.native.entry_table import fn_enum_c

    (out / FN_HEADER).write_text(fn_enum_c(TABLE))
    return out


def _compile_objects(
    cc: str, sources: tuple[str, ...], out: Path, extra: tuple[str, ...] = ()
) -> list[Path]:
    include = ("-I", str(write_fn_header(out)))
    objects = []
    for name in sources:
        obj = out / (name.removesuffix(".c") + ".o")
        _run([cc, *CFLAGS, *include, *extra, "-c", str(NATIVE / name), "-o", str(obj)])
        objects.append(obj)
    return objects


@functools.cache
def lto_flags(cc: str) -> tuple[str, ...]:
    """LTO_FLAGS if cc compiles and links with them and nm reads its objects, else none."""
    with tempfile.TemporaryDirectory() as tmp:
        src, obj, lib = Path(tmp, "probe.c"), Path(tmp, "probe.o"), Path(tmp, "probe.so")
        src.write_text("int revati_lto_probe(void) { return 0; }\n")
        for cmd in (
            [cc, *CFLAGS, *LTO_FLAGS, "-fvisibility=default", "-c", str(src), "-o", str(obj)],
            [cc, *CFLAGS, *LTO_FLAGS, "-shared", "-o", str(lib), str(obj)],
        ):
            if subprocess.run(cmd, capture_output=True).returncode != 0:
                return ()
        return tuple(LTO_FLAGS) if "revati_lto_probe" in defined_symbols([obj]) else ()


def defined_symbols(objects: list[Path]) -> set[str]:
    """Global function symbols the shim's own objects define."""
    proc = subprocess.run(
        ["nm", "-g", "--defined-only", *map(str, objects)], capture_output=True, text=True
    )
    return {line.split()[-1] for line in proc.stdout.splitlines() if " T " in line}


def _stub_source(emulated: set[str], out: Path) -> Path | None:
    """Generate stubs for the table's `stub` rows that the shim does not define itself."""
    if not TABLE.exists():
        return None
    try:
        from revati.native.stubgen import generate_stubs_c
    except ImportError:
        return None
    rows = []
    for line in TABLE.read_text().splitlines():
        cols = line.split("\t")
        if len(cols) >= 3 and cols[0] in emulated:
            cols[2] = "emulated"
        rows.append("\t".join(cols))
    table = out / "entry_points.effective.tsv"
    table.write_text("\n".join(rows) + "\n")
    src = out / "stubs.c"
    src.write_text(generate_stubs_c(str(table)))
    return src


def _build_facades(cc: str, work: Path, shim: Path) -> list[Path]:
    """The libraries named in FACADE_NAMES: no code, one DT_NEEDED entry (the shim's SONAME)."""
    empty = work / "facade.c"
    empty.write_text("/* a name for the loader: the functions are the shim's */\n")
    built = []
    for name in FACADE_NAMES:
        path = work / name
        _run([cc, "-shared", "-fPIC", "-o", str(path), f"-Wl,-soname,{name}", str(empty),
              "-Wl,--no-as-needed", str(shim)])  # fmt: skip
        built.append(path)
    return built


def facade_paths(shim: Path) -> list[Path]:
    """The facade libraries built next to `shim`, in preload order."""
    return [shim.parent / name for name in FACADE_NAMES]


def sanitized() -> bool:
    """Whether this process builds and uses the sanitizer build (REVATI_SANITIZE=undefined)."""
    value = os.environ.get(SANITIZE_ENV, "")
    if value not in ("", "undefined"):
        raise BuildError(f"{SANITIZE_ENV}={value!r}: the only sanitizer supported is 'undefined'")
    return value == "undefined"


def build(out_dir: Path, sanitize: bool = False) -> tuple[Path, Path]:
    """Compile the shim and the helper into out_dir; return their paths."""
    cc = compiler()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        work = Path(tmp)
        shim_flags = (*SHIM_CFLAGS, *(SANITIZE_FLAGS if sanitize else lto_flags(cc)))
        objects = _compile_objects(cc, SHIM_SOURCES, work, shim_flags)
        stubs = _stub_source(defined_symbols(objects), work)
        if stubs is not None:
            stub_obj = work / "stubs.o"
            _run(
                [
                    cc,
                    *CFLAGS,
                    "-fvisibility=default",
                    "-I",
                    str(NATIVE),
                    "-c",
                    str(stubs),
                    "-o",
                    str(stub_obj),
                ]
            )
            objects.append(stub_obj)
        shim_tmp = work / SHIM_NAME
        _run(
            [
                cc,
                *CFLAGS,
                *shim_flags,
                "-shared",
                "-o",
                str(shim_tmp),
                f"-Wl,-soname,{SHIM_NAME}",
                f"-Wl,--version-script={NATIVE / VERSION_SCRIPT}",
                *map(str, objects),
                "-ldl",
                "-lpthread",
            ]
        )
        helper_tmp = work / HELPER_NAME
        (work / "helper").mkdir()
        helper_objs = _compile_objects(
            cc, HELPER_SOURCES, work / "helper", ("-fvisibility=default",)
        )
        _run([cc, "-shared", "-o", str(helper_tmp), *map(str, helper_objs)])
        facades = _build_facades(cc, work, shim_tmp)
        os.replace(shim_tmp, out_dir / SHIM_NAME)
        os.replace(helper_tmp, out_dir / HELPER_NAME)
        for facade in facades:
            os.replace(facade, out_dir / facade.name)
    for link, target in FACADE_LINKS.items():
        if not (out_dir / link).is_symlink():
            (out_dir / link).unlink(missing_ok=True)
            (out_dir / link).symlink_to(target)
    (out_dir / "digest").write_text(source_digest())
    return out_dir / SHIM_NAME, out_dir / HELPER_NAME


def build_dir(sanitize: bool = False) -> Path:
    suffix = "-ubsan" if sanitize else ""
    local = NATIVE / f"_build{suffix}"
    if os.access(NATIVE, os.W_OK):
        return local
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "revati" / f"native-{source_digest()}{suffix}"


def ensure_built() -> tuple[Path, Path]:
    """Paths of a shim and helper built from the current sources (building them if needed);
    the sanitizer build when REVATI_SANITIZE=undefined."""
    sanitize = sanitized()
    out = build_dir(sanitize)
    digest = out / "digest"
    shim, helper = out / SHIM_NAME, out / HELPER_NAME
    if (
        shim.exists()
        and helper.exists()
        and all(p.exists() for p in facade_paths(shim))
        and digest.exists()
        and digest.read_text() == source_digest()
    ):
        return shim, helper
    return build(out, sanitize)


def update_table() -> int:
    """Mark every entry point the shim defines as `emulated` in entry_points.tsv."""
    if not TABLE.exists():
        print(f"{TABLE} does not exist yet", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        emulated = defined_symbols(_compile_objects(compiler(), SHIM_SOURCES, Path(tmp)))
    lines, changed = [], 0
    for line in TABLE.read_text().splitlines():
        cols = line.split("\t")
        if len(cols) >= 3 and cols[0] in emulated and cols[2] != "emulated":
            cols[2] = "emulated"
            changed += 1
        lines.append("\t".join(cols))
    TABLE.write_text("\n".join(lines) + "\n")
    print(f"{changed} entry points marked emulated")
    return 0


if __name__ == "__main__":
    if "--update-table" in sys.argv:
        sys.exit(update_table())
    print("\n".join(map(str, build(build_dir()))))
