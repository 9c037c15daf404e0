// Faults the shim must answer like CUDA does, without crashing or leaking.
// Built by the tests with: nvcc -cudart shared -o shim_faults shim_faults.cu
// Mode `null_copy`: copies and memsets with a NULL host pointer return cudaErrorInvalidValue.
// Mode `clone_oom`: cudaGraphClone fails when memory runs out and leaves nothing allocated.
// Mode `error_names`: cudaGetErrorName names every error the shim returns.
// Prints `key=value` lines; exits non-zero when a check fails.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>

extern "C" {
void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void __libc_free(void *);
}

// The program's own allocator (it interposes the shim's calls too): while `g_track` is set it
// remembers the blocks it hands out and forgets the ones freed; `g_fail_realloc` makes realloc
// fail, as when memory runs out.
enum { TRACKED = 64 };
static bool g_track, g_fail_realloc;
static void *g_live[TRACKED];

static void remember(void *p) {
    if (!g_track || !p) return;
    for (auto &slot : g_live)
        if (!slot) { slot = p; return; }
}
static void forget(void *p) {
    for (auto &slot : g_live)
        if (slot == p) slot = nullptr;
}
static int live_blocks() {
    int n = 0;
    for (void *p : g_live) n += p != nullptr;
    return n;
}

// CUDA's headers declare malloc and free __host__ __device__; these are host-only.
#pragma nv_diag_suppress 20011
extern "C" void *malloc(size_t n) noexcept { void *p = __libc_malloc(n); remember(p); return p; }
extern "C" void *calloc(size_t a, size_t b) noexcept { void *p = __libc_calloc(a, b); remember(p); return p; }
extern "C" void free(void *p) noexcept { forget(p); __libc_free(p); }
extern "C" void *realloc(void *old, size_t n) noexcept {
    if (g_fail_realloc) return nullptr;
    void *p = __libc_realloc(old, n);
    if (p != old) { forget(old); remember(p); }
    return p;
}
#pragma nv_diag_default 20011

__global__ void scale(float *x, float f, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= f;
}

static int null_copy() {
    char host[16] = {0};
    float *dev;
    if (cudaMalloc(&dev, 1 << 12) != cudaSuccess) return 3;
    cudaError_t to_null = cudaMemcpy(nullptr, host, sizeof host, cudaMemcpyHostToHost);
    cudaError_t from_null = cudaMemcpy(host, nullptr, sizeof host, cudaMemcpyHostToHost);
    cudaError_t set_null = cudaMemset(nullptr, 0, sizeof host);
    cudaGetLastError();
    printf("copy_to_null=%d\ncopy_from_null=%d\nmemset_null=%d\n", to_null, from_null, set_null);
    return to_null == cudaErrorInvalidValue && from_null == cudaErrorInvalidValue &&
                   set_null == cudaErrorInvalidValue
               ? 0
               : 1;
}

static int clone_oom() {
    float *x;
    if (cudaMalloc(&x, 1 << 16) != cudaSuccess) return 3;
    cudaGraph_t g;
    if (cudaGraphCreate(&g, 0) != cudaSuccess) return 3;
    int n = 1 << 14;
    float f = 2.0f;
    void *args[] = {&x, &f, &n};
    cudaKernelNodeParams kp = {};
    kp.func = (void *)scale;
    kp.gridDim = dim3(64);
    kp.blockDim = dim3(256);
    kp.kernelParams = args;
    cudaGraphNode_t k;
    if (cudaGraphAddKernelNode(&k, g, nullptr, 0, &kp) != cudaSuccess) return 3;
    cudaGraph_t copy = nullptr;
    g_track = g_fail_realloc = true;
    cudaError_t rc = cudaGraphClone(&copy, g);
    g_track = g_fail_realloc = false;
    int leaked = live_blocks();
    cudaGetLastError();
    cudaGraph_t ok = nullptr;
    cudaError_t again = cudaGraphClone(&ok, g);
    printf("clone_oom=%d\nleaked_blocks=%d\nclone_after=%d\n", rc, leaked, again);
    return rc == cudaErrorMemoryAllocation && leaked == 0 && again == cudaSuccess ? 0 : 1;
}

// Attributes of a host function that is not a registered kernel: the shim answers
// cudaErrorInvalidDeviceFunction (98), and names it.
static int error_names() {
    cudaFuncAttributes attr;
    cudaError_t rc = cudaFuncGetAttributes(&attr, (const void *)&error_names);
    cudaGetLastError();
    printf("func_attributes=%d\nname=%s\n", rc, cudaGetErrorName(rc));
    printf("name_904=%s\nname_999=%s\n", cudaGetErrorName(cudaErrorStreamCaptureUnjoined),
           cudaGetErrorName(cudaErrorUnknown));
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "null_copy")) return null_copy();
    if (!strcmp(mode, "clone_oom")) return clone_oom();
    if (!strcmp(mode, "error_names")) return error_names();
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
