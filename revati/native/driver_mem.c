/*
 * The driver's classic memory calls on the runtime's memory model (docs/design.md §4): allocations,
 * copies, memsets of 1-, 2- and 4-byte elements, pointer attributes, and the stream memory
 * operations (write/wait value). The virtual-memory family is in driver_vmm.c.
 */
#define _GNU_SOURCE
#include <string.h>

#include "driver.h"
#include "memory.h"
#include "objects.h"

#define PTR(p) ((void *)(uintptr_t)(p))

/* ---- allocations: the runtime's ---------------------------------------------------------- */

DRV cuMemAlloc_v2(CUdeviceptr *p, size_t bytes) {
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    void *ptr = NULL;
    CUresult rc = cudaMalloc(&ptr, bytes);
    *p = (CUdeviceptr)(uintptr_t)ptr;
    return rc;
}
DRV cuMemAllocAsync(CUdeviceptr *p, size_t bytes, CUstream s) { (void)s; return cuMemAlloc_v2(p, bytes); }
DRV cuMemAllocPitch_v2(CUdeviceptr *p, size_t *pitch, size_t w, size_t h, unsigned int elem) {
    (void)elem;
    if (!pitch) return CUDA_ERROR_INVALID_VALUE;
    *pitch = (w + 511) & ~(size_t)511;
    return cuMemAlloc_v2(p, *pitch * h);
}
DRV cuMemAllocManaged(CUdeviceptr *p, size_t bytes, unsigned int flags) {
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    void *ptr = NULL;
    CUresult rc = cudaMallocManaged(&ptr, bytes, flags);
    *p = (CUdeviceptr)(uintptr_t)ptr;
    return rc;
}
DRV cuMemFree_v2(CUdeviceptr p) { return cudaFree(PTR(p)); }
DRV cuMemFreeAsync(CUdeviceptr p, CUstream s) { (void)s; return cudaFree(PTR(p)); }
DRV cuMemAllocHost_v2(void **p, size_t bytes) { return cudaMallocHost(p, bytes); }
DRV cuMemHostAlloc(void **p, size_t bytes, unsigned int flags) { return cudaHostAlloc(p, bytes, flags); }
DRV cuMemFreeHost(void *p) { return cudaFreeHost(p); }
DRV cuMemHostRegister_v2(void *p, size_t bytes, unsigned int flags) { return cudaHostRegister(p, bytes, flags); }
DRV cuMemHostUnregister(void *p) { return cudaHostUnregister(p); }
DRV cuMemHostGetDevicePointer_v2(CUdeviceptr *d, void *h, unsigned int flags) {
    (void)flags;
    if (!d) return CUDA_ERROR_INVALID_VALUE;
    *d = (CUdeviceptr)(uintptr_t)h;
    return CUDA_SUCCESS;
}
DRV cuMemGetInfo_v2(size_t *free_b, size_t *total) { return cudaMemGetInfo(free_b, total); }

DRV cuMemGetAddressRange_v2(CUdeviceptr *base, size_t *size, CUdeviceptr p) {
    struct revati_alloc a;
    if (!revati_device_lookup(PTR(p), &a)) return CUDA_ERROR_NOT_FOUND;
    if (base) *base = (CUdeviceptr)(uintptr_t)a.addr;
    if (size) *size = a.bytes;
    return CUDA_SUCCESS;
}

/* ---- copies: the runtime's path, direction from the addresses ----------------------------- */

#define COPY(name, async_name, dst_t, src_t, dst, src)                                              \
    DRV name(dst_t d, src_t s, size_t n) { return revati_copy(dst, src, n, cudaMemcpyDefault, NULL, 0, 0, FN_cudaMemcpy); } \
    DRV async_name(dst_t d, src_t s, size_t n, CUstream st) {                                       \
        return revati_copy(dst, src, n, cudaMemcpyDefault, st, 1, 0, FN_cudaMemcpyAsync);           \
    }
COPY(cuMemcpyHtoD_v2, cuMemcpyHtoDAsync_v2, CUdeviceptr, const void *, PTR(d), s)
COPY(cuMemcpyDtoH_v2, cuMemcpyDtoHAsync_v2, void *, CUdeviceptr, d, PTR(s))
COPY(cuMemcpyDtoD_v2, cuMemcpyDtoDAsync_v2, CUdeviceptr, CUdeviceptr, PTR(d), PTR(s))
COPY(cuMemcpy, cuMemcpyAsync, CUdeviceptr, CUdeviceptr, PTR(d), PTR(s))
#undef COPY

DRV cuMemcpyPeer(CUdeviceptr d, CUcontext dc, CUdeviceptr s, CUcontext sc, size_t n) {
    (void)dc; (void)sc;
    return revati_copy(PTR(d), PTR(s), n, cudaMemcpyDefault, NULL, 0, 0, FN_cudaMemcpyPeer);
}
DRV cuMemcpyPeerAsync(CUdeviceptr d, CUcontext dc, CUdeviceptr s, CUcontext sc, size_t n, CUstream st) {
    (void)dc; (void)sc;
    return revati_copy(PTR(d), PTR(s), n, cudaMemcpyDefault, st, 1, 0, FN_cudaMemcpyPeerAsync);
}

/* ---- memsets of 1-, 2- and 4-byte elements ------------------------------------------------- */

static CUresult memset_elements(CUdeviceptr dst, unsigned int value, unsigned int size, size_t count,
                                CUstream s, int async, uint16_t fn) {
    return revati_memset_elements(PTR(dst), value, size, count * size, s, async, 0, fn);
}

DRV cuMemsetD8_v2(CUdeviceptr d, unsigned char v, size_t n) { return memset_elements(d, v, 1, n, NULL, 0, FN_cuMemsetD8_v2); }
DRV cuMemsetD16_v2(CUdeviceptr d, unsigned short v, size_t n) { return memset_elements(d, v, 2, n, NULL, 0, FN_cuMemsetD16_v2); }
DRV cuMemsetD32_v2(CUdeviceptr d, unsigned int v, size_t n) { return memset_elements(d, v, 4, n, NULL, 0, FN_cuMemsetD32_v2); }
DRV cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, CUstream s) { return memset_elements(d, v, 1, n, s, 1, FN_cuMemsetD8Async); }
DRV cuMemsetD16Async(CUdeviceptr d, unsigned short v, size_t n, CUstream s) { return memset_elements(d, v, 2, n, s, 1, FN_cuMemsetD16Async); }
DRV cuMemsetD32Async(CUdeviceptr d, unsigned int v, size_t n, CUstream s) { return memset_elements(d, v, 4, n, s, 1, FN_cuMemsetD32Async); }

/* ---- pointer attributes -------------------------------------------------------------------- */

enum {
    PA_CONTEXT = 1, PA_MEMORY_TYPE = 2, PA_DEVICE_POINTER = 3, PA_HOST_POINTER = 4, PA_SYNC_MEMOPS = 6,
    PA_BUFFER_ID = 7, PA_IS_MANAGED = 8, PA_DEVICE_ORDINAL = 9, PA_RANGE_START = 11, PA_RANGE_SIZE = 12,
    PA_MAPPED = 13, PA_ACCESS_FLAGS = 16, PA_MAPPING_SIZE = 18, PA_MAPPING_BASE = 19,
};
enum { CU_MEMORYTYPE_HOST = 1, CU_MEMORYTYPE_DEVICE = 2 };

static CUresult pointer_attribute(void *out, int attr, CUdeviceptr p) {
    struct revati_alloc a;
    int device_mem = revati_device_lookup(PTR(p), &a);
    if (!device_mem && !revati_host_lookup(PTR(p))) return CUDA_ERROR_INVALID_VALUE;
    int managed = device_mem && a.kind == ALLOC_MANAGED;
    switch (attr) {
    case PA_CONTEXT: {
        CUcontext ctx = NULL;
        cuCtxGetCurrent(&ctx);
        *(CUcontext *)out = ctx;
        return CUDA_SUCCESS;
    }
    case PA_MEMORY_TYPE: *(unsigned int *)out = device_mem ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST; return CUDA_SUCCESS;
    case PA_DEVICE_POINTER: *(CUdeviceptr *)out = p; return CUDA_SUCCESS;
    case PA_HOST_POINTER:
        if (device_mem && !managed) return CUDA_ERROR_INVALID_VALUE;
        *(void **)out = PTR(p);
        return CUDA_SUCCESS;
    case PA_SYNC_MEMOPS: case PA_MAPPED: *(int *)out = 1; return CUDA_SUCCESS;
    case PA_BUFFER_ID: *(unsigned long long *)out = device_mem ? (unsigned long long)(uintptr_t)a.addr : p; return CUDA_SUCCESS;
    case PA_IS_MANAGED: *(int *)out = managed; return CUDA_SUCCESS;
    case PA_DEVICE_ORDINAL: *(int *)out = device_mem ? a.device : revati_current_device(); return CUDA_SUCCESS;
    case PA_RANGE_START: case PA_MAPPING_BASE:
        *(CUdeviceptr *)out = device_mem ? (CUdeviceptr)(uintptr_t)a.addr : p;
        return CUDA_SUCCESS;
    case PA_RANGE_SIZE: case PA_MAPPING_SIZE: *(size_t *)out = device_mem ? a.bytes : 0; return CUDA_SUCCESS;
    case PA_ACCESS_FLAGS: *(int *)out = 3; return CUDA_SUCCESS; /* read-write */
    default: return CUDA_ERROR_INVALID_VALUE;
    }
}

DRV cuPointerGetAttribute(void *out, int attr, CUdeviceptr p) {
    revati_ensure_init();
    if (!out) return CUDA_ERROR_INVALID_VALUE;
    return pointer_attribute(out, attr, p);
}

DRV cuPointerGetAttributes(unsigned int n, int *attrs, void **out, CUdeviceptr p) {
    revati_ensure_init();
    if (!attrs || !out) return CUDA_ERROR_INVALID_VALUE;
    for (unsigned int i = 0; i < n; i++) {
        if (!out[i]) continue;
        /* an attribute a pointer does not have reads as zero here, as the real call answers */
        if (pointer_attribute(out[i], attrs[i], p) != CUDA_SUCCESS) memset(out[i], 0, attrs[i] == PA_CONTEXT ? sizeof(void *) : sizeof(int));
    }
    return CUDA_SUCCESS;
}

DRV cuPointerSetAttribute(const void *value, int attr, CUdeviceptr p) { (void)value; (void)attr; (void)p; return CUDA_SUCCESS; }

/* ---- stream memory operations -------------------------------------------------------------- */

/* A stream memory operation, recorded on its stream. */
static CUresult stream_op(CUstream s, CUdeviceptr addr, uint64_t value, uint16_t fn) {
    struct revati_stream *obj;
    int64_t ref = revati_stream_ref(s, 0, &obj);
    if (ref < 0) return CUDA_ERROR_INVALID_HANDLE;
    int64_t enter = revati_now();
    int64_t exit = revati_charge(COST_OTHER, enter);
    revati_emit(REC_API, 0, fn, 0, enter, exit, addr, value, (uint64_t)ref, 0);
    return CUDA_SUCCESS;
}

/* The write happens when the stream reaches it; the emulator has no device, so it happens now
 * (into backed memory; a virtual address takes no data). */
static CUresult write_value(CUstream s, CUdeviceptr addr, uint64_t value, unsigned int size, uint16_t fn) {
    struct revati_alloc a;
    uint8_t *p = PTR(addr);
    int device_mem = revati_device_lookup(p, &a);
    if (!device_mem && !revati_host_lookup(p)) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = stream_op(s, addr, value, fn);
    if (rc == CUDA_SUCCESS && (!device_mem || (a.backed && p + size <= a.addr + a.bytes))) memcpy(p, &value, size);
    return rc;
}

DRV cuStreamWriteValue32_v2(CUstream s, CUdeviceptr addr, unsigned int value, unsigned int flags) {
    (void)flags;
    return write_value(s, addr, value, 4, FN_cuStreamWriteValue32_v2);
}
DRV cuStreamWriteValue64_v2(CUstream s, CUdeviceptr addr, unsigned long long value, unsigned int flags) {
    (void)flags;
    return write_value(s, addr, value, 8, FN_cuStreamWriteValue64_v2);
}

/* A wait on a value is recorded; the emulated stream does not hold for it (nothing on a
 * device writes memory, so a wait on device-written values would never end). */
DRV cuStreamWaitValue32_v2(CUstream s, CUdeviceptr addr, unsigned int value, unsigned int flags) {
    (void)flags;
    return stream_op(s, addr, value, FN_cuStreamWaitValue32_v2);
}
DRV cuStreamWaitValue64_v2(CUstream s, CUdeviceptr addr, unsigned long long value, unsigned int flags) {
    (void)flags;
    return stream_op(s, addr, value, FN_cuStreamWaitValue64_v2);
}
