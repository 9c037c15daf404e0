"""Build tests/cuda/cublas_gemms.c with gcc against the cuBLAS that PyTorch's CUDA 13 wheels
install (the `nvidia` namespace package, `nvidia/cu13/{include,lib}`), linked against the real
libcublas, libcublasLt and libcudart so the binary needs them as an application does."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "tests" / "cuda" / "cublas_gemms.c"
CUDA_HOME = Path("/usr/local/cuda")


def cublas_root() -> Path | None:
    """The folder holding cuBLAS's include/ and lib/ (nvidia/cu13), if installed."""
    spec = importlib.util.find_spec("nvidia")
    for base in spec.submodule_search_locations or [] if spec else []:
        root = Path(base) / "cu13"
        if (root / "include" / "cublasLt.h").exists() and (
            root / "lib" / "libcublas.so.13"
        ).exists():
            return root
    return None


def build_cublas_program(base: Path) -> Path:
    """The built program (cached by source content); skips, saying why, without the toolchain."""
    cc = shutil.which("gcc") or shutil.which("cc")
    root = cublas_root()
    if cc is None or root is None or not (CUDA_HOME / "include" / "cuda_runtime.h").exists():
        pytest.skip("needs gcc, the CUDA toolkit's headers and cuBLAS 13 (pip install torch)")
    digest = hashlib.sha256(SOURCE.read_bytes() + str(root).encode()).hexdigest()[:12]
    out = base / f"cublas_gemms-{digest}"
    if not out.exists():
        lib, cuda_lib = root / "lib", CUDA_HOME / "lib64"
        subprocess.run(
            [cc, "-O1", "-Wall", "-Werror", f"-I{CUDA_HOME / 'include'}", f"-I{root / 'include'}",
             "-o", str(out), str(SOURCE), f"-L{lib}", f"-Wl,-rpath,{lib}", "-l:libcublas.so.13",
             "-l:libcublasLt.so.13", f"-L{cuda_lib}", f"-Wl,-rpath,{cuda_lib}", "-lcudart"],
            check=True, capture_output=True,
        )  # fmt: skip
    return out
