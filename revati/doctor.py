"""Can revati run this program? A static look at a binary before anything runs.

`check_program(argv)` resolves the command like `execvp` would, reads the binary and every
shared library the loader would map for it (see `revati.elfinfo`), and reports the CUDA entry
points it imports, which of them revati emulates, which hit a generated stub (recorded as
unsupported at run time) and which belong to libraries revati does not intercept. A binary that
carries its own static CUDA runtime cannot run under emulation (it talks to the driver through
private tables): that is the one verdict that stops `revati record`. Python programs load CUDA
at run time, so for them the interpreter is checked and, if the target interpreter can find
`torch`, the imports of PyTorch's CUDA libraries are listed too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from revati.elfinfo import ElfInfo, LibrarySearch, is_elf, read_elf
from revati.native.entry_table import EntryPoint, read_table

# Undefined symbols that are CUDA entry points (runtime, driver, vendor libraries).
CUDA_SYMBOL = re.compile(
    r"^(__cuda|cuda[A-Z_]|cu[A-Z]|cublas|cudnn|cufft|curand|cusparse|cusolver|"
    r"nccl[A-Z]|nvml[A-Z]|nvrtc[A-Z]|nvtx|nvJitLink)"
)
# Shared libraries shipped by NVIDIA (each carries its own runtime; never a static-cudart suspect).
CUDA_LIBRARY = re.compile(
    r"^lib(cudart|cuda|cublas|cublasLt|cudnn\w*|cufft\w*|curand|cusparse\w*|cusolver\w*|nccl|"
    r"nvidia-ml|nvrtc[\w-]*|nvJitLink|nvToolsExt|cupti|caffe2_nvrtc)\.so"
)
FATBIN_SECTIONS = (".nv_fatbin", "__nv_relfatbin")
# SONAMEs revati's shim takes (the runtime) or preloads a library for (driver, NVML)
PROVIDED_BY_SHIM = re.compile(r"^(libcudart\.so|libcuda\.so\.1$|libnvidia-ml\.so\.1$)")
PYTHON_NAME = re.compile(r"^python[\d.]*$")
TORCH_CUDA_LIBRARIES = ("libtorch_cuda.so", "libc10_cuda.so", "libtorch_cuda_linalg.so")


@dataclass
class DoctorReport:
    """The verdict on one program; `problem` is the one line shown when it cannot run."""

    program: str
    path: str | None = None
    kind: str = "binary"  # "binary" | "python" | "script" | "missing"
    runnable: bool = True
    problem: str | None = None
    imports: list[str] = field(default_factory=list)  # CUDA entry points, sorted
    emulated: list[str] = field(default_factory=list)
    stubs: list[str] = field(default_factory=list)
    unintercepted: dict[str, list[str]] = field(default_factory=dict)  # library -> names
    # library -> {"emulated": n, "stub": n, "not intercepted": n} over the imported names
    shares: dict[str, dict[str, int]] = field(default_factory=dict)
    libraries: dict[str, str | None] = field(default_factory=dict)  # DT_NEEDED closure
    cuda_libraries: list[str] = field(default_factory=list)
    static_cudart: bool = False
    fatbin_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, problem: str) -> None:
        self.runnable = False
        self.problem = self.problem or problem

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def check_program(argv: list[str], env: dict[str, str] | None = None) -> DoctorReport:
    """Inspect `argv[0]` (resolved through PATH) without running it."""
    env = dict(os.environ if env is None else env)
    report = DoctorReport(program=argv[0] if argv else "")
    path = resolve_command(report.program, env)
    if path is None:
        report.kind = "missing"
        report.fail(f"{report.program}: command not found (not a file, not on PATH)")
        return report
    report.path = str(path.absolute())
    binary = _executable_image(path, env)
    if binary is None:
        report.fail(f"{report.program} is neither an ELF binary nor a #! script naming one")
        return report
    if binary != path:
        report.kind = "script"
        report.notes.append(f"{report.program} runs {binary}")
    elif not os.access(path, os.X_OK):
        report.fail(f"{report.program} is not executable (chmod +x it)")
        return report
    path = binary
    _check_binary(report, read_elf(path), env)
    return report


def static_runtime_problem(argv: list[str], env: dict[str, str] | None = None) -> str | None:
    """Why `argv[0]` cannot be emulated because it carries a static CUDA runtime, or None.

    The part of `check_program` that `revati record` needs before it starts a program: the
    program's own files and their loader closure, with symbols read only from files that hold
    device code (a Python program's run-time imports are not followed)."""
    env = dict(os.environ if env is None else env)
    path = resolve_command(argv[0] if argv else "", env)
    binary = None if path is None else _executable_image(path, env)
    if binary is None:
        return None  # not found or not ELF: starting it says why
    program = read_elf(binary)
    libraries, _missing = LibrarySearch(env).closure(program)
    own_files = [program] + [lib for lib in libraries if not _is_cuda_library(lib)]
    report = DoctorReport(program=argv[0])
    _check_static_runtime(report, program, own_files, libraries)
    return report.problem if report.static_cudart else None


def resolve_command(name: str, env: dict[str, str]) -> Path | None:
    """The file `execvp(name)` would run: a path as given, else the first PATH match."""
    if not name:
        return None
    if "/" in name:
        return Path(name) if os.path.isfile(name) else None
    found = shutil.which(name, path=env.get("PATH", os.defpath))
    return Path(found) if found else None


def _python_executable(launcher: Path, env: dict[str, str]) -> Path | None:
    """The interpreter a Python launcher script ends up running (`sys.executable`)."""
    code = "import sys; print(sys.executable)"
    try:
        out = subprocess.run([str(launcher), "-c", code], capture_output=True, text=True,
                             timeout=30, env=env)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    executable = Path(out.stdout.strip()) if out.returncode == 0 else None
    return executable if executable is not None and is_elf(executable) else None


def _executable_image(path: Path, env: dict[str, str], hops: int = 4) -> Path | None:
    """The ELF file the kernel ends up running for `path`: itself, or its `#!` interpreter
    (through `/usr/bin/env`), or for a Python launcher script (pyenv shim) its interpreter."""
    if is_elf(path):
        return path
    if hops == 0:
        return None
    if PYTHON_NAME.match(path.name):
        executable = _python_executable(path, env)
        if executable is not None:
            return executable
    interpreter = _shebang_interpreter(path, env)
    return None if interpreter is None else _executable_image(interpreter, env, hops - 1)


def _shebang_interpreter(path: Path, env: dict[str, str]) -> Path | None:
    """The interpreter a `#!` line names, resolved through PATH after `/usr/bin/env`."""
    try:
        with open(path, "rb") as f:
            first = f.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode(errors="replace").split()
    if words and os.path.basename(words[0]) == "env":
        words = [w for w in words[1:] if not w.startswith("-")]
    return resolve_command(words[0], env) if words else None


def _check_binary(report: DoctorReport, program: ElfInfo, env: dict[str, str]) -> None:
    search = LibrarySearch(env)
    libraries, missing = search.closure(program)
    report.libraries = {lib.path.name if lib.soname is None else lib.soname: str(lib.path)
                        for lib in libraries}  # fmt: skip
    report.libraries.update({name: None for name in missing})
    report.cuda_libraries = sorted(n for n in report.libraries if CUDA_LIBRARY.match(n))
    _check_missing(report, missing)
    own_files = [program] + [lib for lib in libraries if not _is_cuda_library(lib)]
    if _is_python(program):
        report.kind = "python"
        own_files += _check_python(report, program, env)
    _check_static_runtime(report, program, own_files, libraries)
    _classify_imports(report, own_files)
    if report.kind == "binary" and not report.imports and not report.fatbin_files:
        report.notes.append("no CUDA imports and no device code: revati only virtualizes its clock")


def _is_cuda_library(info: ElfInfo) -> bool:
    return bool(CUDA_LIBRARY.match(info.soname or info.path.name))


def _check_missing(report: DoctorReport, missing: list[str]) -> None:
    for name in missing:
        if PROVIDED_BY_SHIM.match(name):
            report.notes.append(f"{name} is not installed here; revati's shim stands in for it")
        elif CUDA_LIBRARY.match(name):
            report.notes.append(f"{name} is not found; calls into it cannot be emulated yet")
        else:
            report.fail(f"{report.program} needs {name}, which the loader cannot find; "
                        "add its folder to LD_LIBRARY_PATH")  # fmt: skip


def _check_static_runtime(
    report: DoctorReport, program: ElfInfo, own_files: list[ElfInfo], libraries: list[ElfInfo]
) -> None:
    """A file with device code (a fatbinary) whose loader closure has no libcudart.so."""
    by_name = {lib.soname or lib.path.name: lib for lib in libraries}
    for info in own_files:
        if any(section in info.sections for section in FATBIN_SECTIONS):
            report.fatbin_files.append(str(info.path))
        else:
            continue
        if _reaches_cudart(info, by_name) and not _defines_runtime(info):
            continue
        report.static_cudart = True
        where = report.program if info is program else f"{info.path} (loaded by {report.program})"
        report.fail(f"{where} carries a static CUDA runtime (no libcudart.so in DT_NEEDED); "
                    "rebuild it with `nvcc -cudart shared`")  # fmt: skip


def _reaches_cudart(info: ElfInfo, by_name: dict[str, ElfInfo]) -> bool:
    seen: set[str] = set()
    queue = list(info.needed)
    while queue:
        name = queue.pop()
        if PROVIDED_BY_SHIM.match(name):
            return True
        if name in seen:
            continue
        seen.add(name)
        child = by_name.get(name)
        if child is not None and not _is_cuda_library(child):
            queue += child.needed
    return False


def _defines_runtime(info: ElfInfo) -> bool:
    """Exports cudart's registration entry points itself (a static runtime linked -rdynamic)."""
    return info.exports_any({"__cudaRegisterFatBinary", "cudaLaunchKernel", "cudaMalloc"})


def _is_python(info: ElfInfo) -> bool:
    if PYTHON_NAME.match(info.path.name):
        return True
    return any(name.startswith("libpython") for name in info.needed) or any(
        sym.name == "Py_BytesMain" for sym in info.defined
    )


def _check_python(report: DoctorReport, program: ElfInfo, env: dict[str, str]) -> list[ElfInfo]:
    """Notes on a Python program; returns PyTorch's CUDA libraries if torch is importable."""
    report.notes.append("a Python program loads its CUDA libraries at run time (imports); "
                        "the trace's unsupported_calls table lists what it needed and did not get")  # fmt: skip
    torch_lib = _torch_lib_dir(program.path, env)
    if torch_lib is None:
        report.notes.append(f"torch is not importable by {program.path}")
        return []
    report.notes.append(f"torch found: {torch_lib}")
    report.notes.append("revati record turns PyTorch's cuDNN off in traced Python processes, "
                        "so cuDNN's imports are never called")  # fmt: skip
    paths = [torch_lib / name for name in TORCH_CUDA_LIBRARIES if (torch_lib / name).exists()]
    report.libraries.update({path.name: str(path) for path in paths})
    return [read_elf(path) for path in paths]


def _torch_lib_dir(interpreter: Path, env: dict[str, str]) -> Path | None:
    """torch's `lib/` folder as the target interpreter sees it (find_spec: torch is not imported)."""
    code = "import importlib.util as u; s = u.find_spec('torch'); print(s.origin if s else '')"
    try:
        out = subprocess.run([str(interpreter), "-c", code], capture_output=True, text=True,
                             timeout=30, env=env)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    origin = out.stdout.strip()
    if out.returncode != 0 or not origin:
        return None
    lib = Path(origin).parent / "lib"
    return lib if lib.is_dir() else None


def _classify_imports(report: DoctorReport, files: list[ElfInfo]) -> None:
    table = {row.name: row for row in read_table()}
    imports: dict[str, str | None] = {}
    for info in files:
        for sym in info.undefined:
            if CUDA_SYMBOL.match(sym.name) or (sym.version and CUDA_LIBRARY.match(sym.version)):
                imports.setdefault(sym.name, sym.version)
    report.imports = sorted(imports)
    unintercepted: dict[str, list[str]] = {}
    for name in report.imports:
        row = table.get(name)
        if row is None:
            unintercepted.setdefault(imports[name] or _library_family(name), []).append(name)
        elif row.status == "emulated":
            report.emulated.append(name)
        else:
            report.stubs.append(name)
    report.unintercepted = dict(sorted(unintercepted.items()))
    report.shares = _shares(report, table)
    if report.stubs:
        report.notes.append(f"{_count(report.stubs, 'imported entry point')} are stubs: a call "
                            "returns its library's not-supported status (cudaErrorNotSupported, "
                            "CUBLAS_STATUS_NOT_SUPPORTED) and is recorded as unsupported")  # fmt: skip
    for library, names in report.unintercepted.items():
        report.notes.append(f"{_count(names, 'entry point')} of {library} are not intercepted: "
                            "calling them reaches the real library, which needs a GPU")  # fmt: skip


def _shares(report: DoctorReport, table: dict[str, EntryPoint]) -> dict[str, dict[str, int]]:
    """Per library, how many of the program's imports are emulated, stubs or not intercepted."""
    shares: dict[str, dict[str, int]] = {}
    for status, names in (("emulated", report.emulated), ("stub", report.stubs)):
        for name in names:
            counts = shares.setdefault(table[name].library, {})
            counts[status] = counts.get(status, 0) + 1
    for library, names in report.unintercepted.items():
        shares.setdefault(library, {})["not intercepted"] = len(names)
    return dict(sorted(shares.items()))


def _count(names: list[str], noun: str) -> str:
    return f"{len(names)} {noun}{'' if len(names) == 1 else 's'}"


def _library_family(name: str) -> str:
    """Which library an unversioned CUDA symbol most likely comes from."""
    for prefix, library in (("cublasLt", "cuBLASLt"), ("cublas", "cuBLAS"), ("cudnn", "cuDNN"),
                            ("cufft", "cuFFT"), ("curand", "cuRAND"), ("cusparse", "cuSPARSE"),
                            ("cusolver", "cuSOLVER"), ("nccl", "NCCL"), ("nvml", "NVML"),
                            ("nvrtc", "NVRTC"), ("nvtx", "NVTX"), ("nvJitLink", "nvJitLink"),
                            ("cuda", "CUDA runtime"), ("__cuda", "CUDA runtime")):  # fmt: skip
        if name.startswith(prefix):
            return library
    return "CUDA driver"
