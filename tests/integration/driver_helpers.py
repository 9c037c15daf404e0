"""A C program on the driver API (cuda.h), linked against libcuda.so.1 and libnvidia-ml.so.1 as
an extension module is, with a cubin nvcc builds: for the driver tests and the driver benchmark.

`driver_prog CUBIN` loads the cubin, reads kernel attributes, launches on a stream, moves data
and asks NVML, printing `key value` lines; `driver_prog CUBIN launchcost N` times N
cuLaunchKernel calls (real ns per launch, median of batches of 1,000, with an unwarped clock).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from revati.native import build
from tests.conftest import nvcc_path

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
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
int nvmlInit_v2(void);
int nvmlDeviceGetCount_v2(unsigned int *count);
#define CK(x) do { CUresult r_ = (x); if (r_) { printf("failed %s = %d\n", #x, (int)r_); return 1; } } while (0)

static double real_s(void) { /* the real clock: the shim warps clock_gettime */
    struct timespec ts;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Host cost of cuLaunchKernel: the median of batches of 1,000 launches on one stream. */
static int launchcost(CUfunction fn, CUdeviceptr d, int launches) {
    enum { BATCH = 1000 };
    int n = 1024, batches = launches / BATCH > 0 ? launches / BATCH : 1;
    void *args[] = {&d, &n};
    double *per = malloc(batches * sizeof(double));
    CK(cuLaunchKernel(fn, 4, 1, 1, 256, 1, 1, 0, NULL, args, NULL)); /* warm up */
    for (int b = 0; b < batches; b++) {
        double start = real_s();
        for (int i = 0; i < BATCH; i++) cuLaunchKernel(fn, 4, 1, 1, 256, 1, 1, 0, NULL, args, NULL);
        per[b] = (real_s() - start) * 1e9 / BATCH;
    }
    CK(cuCtxSynchronize());
    qsort(per, batches, sizeof(double), by_value);
    printf("launch_median_ns %.1f\nlaunch_min_ns %.1f\nlaunches %d\n", per[batches / 2], per[0], batches * BATCH);
    free(per);
    return 0;
}

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
    if (argc > 3 && !strcmp(argv[2], "launchcost")) {
        CUdeviceptr buf;
        CK(cuMemAlloc(&buf, 4096));
        return launchcost(fn, buf, atoi(argv[3]));
    }
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
    /* a TMA descriptor of a 32x32 float tile: valid, then misaligned, then re-pointed */
    CUtensorMap map;
    cuuint64_t dims[2] = {32, 32}, strides[1] = {32 * sizeof(float)};
    cuuint32_t box[2] = {16, 16}, unit[2] = {1, 1};
#define ENCODE(addr) cuTensorMapEncodeTiled(&map, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 2, (void *)(addr), dims, strides, \
    box, unit, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_NONE, \
    CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE)
    int misaligned = ENCODE(d + 4), encoded = ENCODE(d);
    printf("tensormap %d %d %d\n", encoded, misaligned, (int)cuTensorMapReplaceAddress(&map, (void *)(d + 64)));
    unsigned int count = 0;
    int init = nvmlInit_v2(), got = nvmlDeviceGetCount_v2(&count);
    printf("nvml %d %d %u\n", init, got, count);
    return 0;
}
"""


def build_driver_program(tmp: Path) -> tuple[Path, Path]:
    """(the program, the cubin), built in tmp; skips without nvcc, a C compiler or cuda.h."""
    nvcc, cc = nvcc_path(), shutil.which("cc") or shutil.which("gcc")
    if nvcc is None or cc is None:
        pytest.skip("nvcc and a C compiler are needed to build the driver-API test program")
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
