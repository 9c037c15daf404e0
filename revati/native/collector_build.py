"""Build the CUPTI collector of `revati record --real` (revati/native/cupti_collector.c).

It needs CUPTI's headers and library: the `nvidia-cuda-cupti` pip package that comes with
PyTorch (site-packages/nvidia/*/include/cupti.h, .../lib/libcupti.so*) or a CUDA toolkit
($CUDA_HOME, /usr/local/cuda). The headers include `crt/host_defines.h`, which the pip package
lacks; a toolkit's or Triton's bundled CUDA include folder supplies it. Where no headers are
found the collector is not built and `collector_status()` says why.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from revati.native.build import NATIVE, BuildError, _run, build_dir, compiler

SOURCES = ("cupti_collector.c", "measured.h")
COLLECTOR_NAME = "librevati_cupti.so"


@dataclass(frozen=True)
class CuptiPaths:
    include_dirs: tuple[Path, ...]
    lib: Path


def _site_roots() -> list[Path]:
    try:
        import nvidia  # the namespace package of NVIDIA's pip wheels

        return [Path(p) for p in nvidia.__path__]
    except ImportError:
        return []


def _toolkits() -> list[Path]:
    homes = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    return [Path(h) for h in homes if h and Path(h).exists()]


def find_cupti() -> CuptiPaths | None:
    """CUPTI's header folder (plus one holding crt/host_defines.h) and libcupti, or None."""
    candidates: list[tuple[Path, list[Path]]] = []
    for root in _site_roots():
        for header in sorted(root.glob("*/include/cupti.h")):
            base = header.parent.parent
            candidates.append((header.parent, sorted((base / "lib").glob("libcupti.so*"))))
    for tk in _toolkits():
        for inc in (tk / "include", tk / "extras" / "CUPTI" / "include"):
            if (inc / "cupti.h").exists():
                libs = [*(tk / "lib64").glob("libcupti.so*"), *(tk / "lib").glob("libcupti.so*")]
                libs += sorted((tk / "extras" / "CUPTI" / "lib64").glob("libcupti.so*"))
                candidates.append((inc, libs))
    extra = [tk / "include" for tk in _toolkits()]
    try:
        import triton

        extra.append(Path(triton.__file__).parent / "backends" / "nvidia" / "include")
    except ImportError:
        pass
    crt = [d for d in extra if (d / "crt" / "host_defines.h").exists()]
    for inc, libs in candidates:
        has_crt = (inc / "crt" / "host_defines.h").exists()
        if libs and (has_crt or crt):
            dirs = (inc,) if has_crt else (inc, crt[0])
            return CuptiPaths(dirs, min(libs, key=lambda p: len(p.name)))
    return None


def collector_status() -> str | None:
    """None if the collector can be built here, else one line saying what is missing."""
    if find_cupti() is None:
        return (
            "CUPTI headers and library not found (pip install nvidia-cuda-cupti, which comes "
            "with PyTorch, or install the CUDA toolkit and set CUDA_HOME)"
        )
    return None


def _digest(paths: CuptiPaths) -> str:
    h = hashlib.sha256()
    for name in SOURCES:
        h.update((NATIVE / name).read_bytes())
    h.update(str(paths).encode())
    return h.hexdigest()[:16]


def ensure_collector() -> Path:
    """The collector library built from the current sources (building it if needed)."""
    paths = find_cupti()
    if paths is None:
        raise BuildError(collector_status() or "CUPTI not found")
    out_dir = build_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    lib, digest = out_dir / COLLECTOR_NAME, out_dir / "collector.digest"
    want = _digest(paths)
    if lib.exists() and digest.exists() and digest.read_text() == want:
        return lib
    tmp = out_dir / f".{COLLECTOR_NAME}.{os.getpid()}"
    libdir = paths.lib.parent
    _run(
        [
            compiler(),
            "-O2", "-fPIC", "-shared", "-std=gnu11", "-Wall", "-fvisibility=hidden",
            *(f"-I{d}" for d in paths.include_dirs),
            "-o", str(tmp), str(NATIVE / "cupti_collector.c"),
            f"-L{libdir}", f"-l:{paths.lib.name}", f"-Wl,-rpath,{libdir}",
        ]
    )  # fmt: skip
    os.replace(tmp, lib)
    digest.write_text(want)
    return lib


if __name__ == "__main__":
    import sys

    try:
        print(ensure_collector())
    except BuildError as e:
        print(f"revati: cannot build the CUPTI collector: {e}", file=sys.stderr)
        sys.exit(1)
