"""A dlopen of NVIDIA's runtime, driver, NVML or NCCL by path, under `revati record`, opens
revati's library of that name; any other dlopen goes through unchanged, seen by the loader as
made by its real caller (a bare name is searched in the caller's RUNPATH)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.integration.record_helpers import run_cli
from tests.integration.torch_helpers import require_torch

# PyTorch preloads its wheels' CUDA libraries by path; vLLM and FlashInfer then open the first
# "libcudart" of /proc/self/maps with ctypes.
BY_PATH = """
import ctypes, os, torch
import nvidia.cu13, nvidia.nccl
maps = open("/proc/self/maps").read()
print("real_mapped", any(p in maps for p in ("nvidia/cu13/lib/libcudart", "nvidia/nccl/lib")))
for pkg, lib, fn in ((nvidia.cu13, "libcudart.so.13", "cudaMalloc"),
                     (nvidia.nccl, "libnccl.so.2", "ncclCommInitRank")):
    path = os.path.join(list(pkg.__path__)[0], "lib", lib)
    opened = getattr(ctypes.CDLL(path), fn)
    shim = getattr(ctypes.CDLL(None), fn)
    print(lib, ctypes.cast(opened, ctypes.c_void_p).value == ctypes.cast(shim, ctypes.c_void_p).value)
"""


def test_nvidias_libraries_opened_by_path_are_revatis(tmp_path: Path) -> None:
    require_torch()
    r = run_cli("record", "--quiet", "-o", str(tmp_path / "t.duckdb"), "--",
                sys.executable, "-c", BY_PATH, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["real_mapped", "False", "libcudart.so.13", "True",
                                "libnccl.so.2", "True"], r.stdout  # fmt: skip


def build(tmp: Path, name: str, source: str, *flags: str) -> Path:
    src, out = tmp / f"{name}.c", tmp / name
    src.write_text(source)
    subprocess.run(["gcc", "-O1", "-fPIC", str(src), "-o", str(out), *flags], check=True)
    return out


def test_a_bare_name_is_still_searched_in_the_callers_runpath(tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    build(inner, "libinner.so", "int inner_value(void) { return 42; }\n", "-shared")
    build(tmp_path, "libouter.so", """
        #include <dlfcn.h>
        int outer_value(void) {
            void *h = dlopen("libinner.so", RTLD_NOW);
            int (*f)(void) = h ? (int (*)(void))dlsym(h, "inner_value") : 0;
            return f ? f() : -1;
        }
        """, "-shared", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/inner", "-ldl")  # fmt: skip
    program = build(tmp_path, "main", """
        #include <stdio.h>
        int outer_value(void);
        int main(void) { printf("value %d\\n", outer_value()); return 0; }
        """, f"-L{tmp_path}", "-louter", f"-Wl,-rpath,{tmp_path}")  # fmt: skip
    r = run_cli("record", "--quiet", "-o", str(tmp_path / "t.duckdb"), "--", str(program))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "value 42", r.stdout
