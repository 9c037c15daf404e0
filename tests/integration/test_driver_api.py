"""A C program on the driver API (cuda.h, linked against libcuda.so.1 and libnvidia-ml.so.1 as
an extension module is): it loads a cubin nvcc built, launches its kernel on a stream, moves
data, and asks NVML; recorded, and checked by `revati doctor`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from revati.doctor import check_program
from revati.fatbin import cubin_kernels
from revati.native import build
from tests.conftest import nvcc_path
from tests.integration.record_helpers import q, run_cli

KERNEL_CU = r"""
extern "C" __global__ void add_one(float *a, int n) {
    __shared__ float tile[64];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { tile[i % 64] = a[i]; a[i] += tile[(i + 1) % 64]; }
}
"""

PROGRAM_C = r"""
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
int nvmlInit_v2(void);
int nvmlDeviceGetCount_v2(unsigned int *count);
#define CK(x) do { CUresult r_ = (x); if (r_) { printf("failed %s = %d\n", #x, (int)r_); return 1; } } while (0)

int main(int argc, char **argv) {
    static char image[1 << 20];
    FILE *f = fopen(argv[1], "rb");
    if (!f || fread(image, 1, sizeof image, f) == 0) return 2;
    fclose(f);
    CUdevice dev;
    CUcontext ctx;
    char name[128];
    int optin, regs, smem, n = 1024;
    CK(cuInit(0));
    CK(cuDeviceGet(&dev, 0));
    CK(cuDeviceGetName(name, sizeof name, dev));
    CK(cuDeviceGetAttribute(&optin, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, dev));
    printf("device %s|%d\n", name, optin);
    CK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CK(cuCtxSetCurrent(ctx));
    CUmodule mod;
    CUfunction fn;
    CK(cuModuleLoadData(&mod, image));
    CK(cuModuleGetFunction(&fn, mod, "add_one"));
    CK(cuFuncGetAttribute(&regs, CU_FUNC_ATTRIBUTE_NUM_REGS, fn));
    CK(cuFuncGetAttribute(&smem, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, fn));
    printf("attributes %d %d\n", regs, smem);
    printf("missing %d\n", (int)cuModuleGetFunction(&fn, mod, "no_such_kernel"));
    CK(cuModuleGetFunction(&fn, mod, "add_one"));
    float host[1024], back[1024];
    for (int i = 0; i < n; i++) host[i] = (float)i;
    CUdeviceptr d;
    CUstream s;
    CK(cuMemAlloc(&d, sizeof host));
    CK(cuMemcpyHtoD(d, host, sizeof host));
    CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    void *args[] = {&d, &n};
    CK(cuLaunchKernel(fn, 4, 1, 1, 256, 1, 1, 0, s, args, NULL));
    CK(cuMemsetD32Async(d + 4, 0x3f800000u, 2, s)); /* 1.0f twice, as 4-byte elements */
    CK(cuStreamSynchronize(s));
    CK(cuMemcpyDtoH(back, d, sizeof back));
    printf("data %g %g %g %g\n", back[0], back[1], back[2], back[1023]);
    unsigned int count = 0;
    int init = nvmlInit_v2(), got = nvmlDeviceGetCount_v2(&count);
    printf("nvml %d %d %u\n", init, got, count);
    return 0;
}
"""


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    nvcc, cc = nvcc_path(), shutil.which("cc") or shutil.which("gcc")
    if nvcc is None or cc is None:
        pytest.skip("nvcc and a C compiler are needed to build the driver-API test program")
    tmp = tmp_path_factory.mktemp("driver_api")
    (tmp / "k.cu").write_text(KERNEL_CU)
    (tmp / "prog.c").write_text(PROGRAM_C)
    cubin = tmp / "k.cubin"
    subprocess.run([nvcc, "-cubin", "-arch=sm_90", str(tmp / "k.cu"), "-o", str(cubin)], check=True)
    shim, _ = build.ensure_built()
    headers = [Path(nvcc).resolve().parents[1] / "include", Path("/usr/local/cuda/include")]
    include = next((h for h in headers if (h / "cuda.h").exists()), None)
    if include is None:
        pytest.skip("cuda.h (the CUDA toolkit's headers) is not installed")
    # as an extension module is linked: the runtime, the driver and NVML by SONAME
    libs = [f"-l:{shim.name}", *(f"-l:{p.name}" for p in build.facade_paths(shim))]
    exe = tmp / "driver_prog"
    subprocess.run([cc, "-I", str(include), str(tmp / "prog.c"), "-o", str(exe), "-L", str(shim.parent),
                    "-Wl,--no-as-needed", *libs], check=True)  # fmt: skip
    return exe, cubin


def test_a_cubin_loads_and_launches_through_the_driver(
    program: tuple[Path, Path], tmp_path: Path
) -> None:
    exe, cubin = program
    trace = tmp_path / "t.duckdb"
    proc = run_cli("record", "--quiet", "-o", str(trace), "--", str(exe), str(cubin), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert out["device"] == "NVIDIA H100 80GB HBM3|232448"  # the catalog's opt-in shared memory
    (kernel,) = cubin_kernels(cubin.read_bytes())  # the Python reading of the same cubin
    assert out["attributes"] == f"{kernel.registers} {kernel.shared_bytes}"
    assert out["missing"] == "500"  # CUDA_ERROR_NOT_FOUND: the cubin has no such kernel
    assert out["data"] == "0 1 1 1023"  # bytes moved; the 4-byte memset wrote 1.0f twice
    assert out["nvml"] == "0 0 1"
    rows = q(trace, "SELECT name, grid_x, block_x, shared_mem, stream_id FROM kernels")
    assert [r[:4] for r in rows] == [("add_one", 4, 256, kernel.shared_bytes)]
    on_stream = q(trace, "SELECT count(*) FROM streams WHERE stream_id = "
                         f"{rows[0][4]} AND NOT is_default")  # fmt: skip
    assert on_stream == [(1,)]
    assert q(trace, "SELECT count(*) FROM memsets") == [(1,)]
    assert q(trace, "SELECT name FROM unsupported_calls") == []


def test_doctor_reads_driver_and_nvml_imports_as_emulated(program: tuple[Path, Path]) -> None:
    exe, _ = program
    report = check_program([str(exe)])
    assert report.runnable
    assert {"cuInit", "cuModuleLoadData", "cuLaunchKernel", "nvmlInit_v2"} <= set(report.emulated)
    assert report.shares["libcuda.so.1"].get("emulated", 0) >= 10
    assert report.shares["libnvidia-ml.so.1"] == {"emulated": 2}
