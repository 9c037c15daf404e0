/*
 * The CUDA driver API, emulated on the runtime's model: initialisation, versions, errors,
 * devices, primary contexts, streams and events, and the entry-point queries
 * (cuGetProcAddress, cudaGetDriverEntryPoint*) that hand out the shim's own driver functions.
 * Memory is in driver_mem.c and driver_vmm.c, modules and launches in driver_module.c.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "memory.h"
#include "objects.h"

#define CONTEXT_MAGIC 0x43545854u

/* One primary context per device; the current one follows the runtime's current device, as a
 * real runtime binds the primary context of the device it uses. */
struct revati_context {
    uint32_t magic;
    int device;
    int retained;
    unsigned int flags;
};

static struct revati_context g_contexts[REVATI_MAX_DEVICES];

static int valid_device(CUdevice d) { return d >= 0 && d < g_cfg.device_count; }

static struct revati_context *context_of(CUdevice d) {
    struct revati_context *c = &g_contexts[d];
    c->magic = CONTEXT_MAGIC;
    c->device = d;
    return c;
}

static struct revati_context *context_arg(CUcontext ctx) {
    struct revati_context *c = ctx;
    if (!c) return context_of(revati_current_device());
    return c->magic == CONTEXT_MAGIC ? c : NULL;
}

/* ---- initialisation, versions, errors ------------------------------------------------------ */

DRV cuInit(unsigned int flags) {
    revati_ensure_init();
    if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
    return g_cfg.device_count > 0 ? CUDA_SUCCESS : CUDA_ERROR_NO_DEVICE;
}

DRV cuDriverGetVersion(int *version) {
    if (!version) return CUDA_ERROR_INVALID_VALUE;
    *version = 13000;
    return CUDA_SUCCESS;
}

DRV cuGetErrorString(CUresult e, const char **s) {
    if (!s) return CUDA_ERROR_INVALID_VALUE;
    *s = cudaGetErrorString(e);
    return CUDA_SUCCESS;
}

DRV cuGetErrorName(CUresult e, const char **s) {
    if (!s) return CUDA_ERROR_INVALID_VALUE;
    switch (e) {
#define REVATI_CU_RESULT_NAME(name, value) case name: *s = #name; return CUDA_SUCCESS;
        REVATI_CU_RESULTS(REVATI_CU_RESULT_NAME)
#undef REVATI_CU_RESULT_NAME
    default: *s = "CUDA_ERROR_UNKNOWN"; return CUDA_SUCCESS;
    }
}

/* The driver's log callbacks: the emulated driver logs nothing, so a callback is never called. */
DRV cuLogsRegisterCallback(void (*callback)(void *, int, char *, size_t), void *data, void **handle) {
    (void)callback; (void)data;
    static int token;
    if (handle) *handle = &token;
    return CUDA_SUCCESS;
}
DRV cuLogsUnregisterCallback(void *handle) { (void)handle; return CUDA_SUCCESS; }

/* ---- devices ------------------------------------------------------------------------------- */

DRV cuDeviceGetCount(int *n) { return cudaGetDeviceCount(n); }

DRV cuDeviceGet(CUdevice *d, int ordinal) {
    revati_ensure_init();
    if (!d) return CUDA_ERROR_INVALID_VALUE;
    if (!valid_device(ordinal)) return CUDA_ERROR_INVALID_DEVICE;
    *d = ordinal;
    return CUDA_SUCCESS;
}

DRV cuDeviceGetName(char *name, int len, CUdevice d) {
    revati_ensure_init();
    if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    if (!valid_device(d)) return CUDA_ERROR_INVALID_DEVICE;
    snprintf(name, (size_t)len, "%s", g_cfg.dev.name);
    return CUDA_SUCCESS;
}

DRV cuDeviceGetUuid(cudaUUID_t *uuid, CUdevice d) {
    revati_ensure_init();
    if (!uuid) return CUDA_ERROR_INVALID_VALUE;
    if (!valid_device(d)) return CUDA_ERROR_INVALID_DEVICE;
    revati_device_uuid(revati_physical_device(d), (unsigned char *)uuid->bytes);
    return CUDA_SUCCESS;
}
DRV cuDeviceGetUuid_v2(cudaUUID_t *uuid, CUdevice d) { return cuDeviceGetUuid(uuid, d); }

DRV cuDeviceGetLuid(char *luid, unsigned int *mask, CUdevice d) {
    (void)luid; (void)mask; (void)d;
    return CUDA_ERROR_NOT_SUPPORTED; /* Windows only */
}

DRV cuDeviceTotalMem_v2(size_t *bytes, CUdevice d) {
    revati_ensure_init();
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    if (!valid_device(d)) return CUDA_ERROR_INVALID_DEVICE;
    *bytes = (size_t)revati_memory_capacity(d);
    return CUDA_SUCCESS;
}
DRV cuDeviceTotalMem(size_t *bytes, CUdevice d) { return cuDeviceTotalMem_v2(bytes, d); }

DRV cuDeviceGetAttribute(int *value, int attr, CUdevice d) { return cudaDeviceGetAttribute(value, attr, d); }

DRV cuDeviceComputeCapability(int *major, int *minor, CUdevice d) {
    revati_ensure_init();
    if (!major || !minor) return CUDA_ERROR_INVALID_VALUE;
    if (!valid_device(d)) return CUDA_ERROR_INVALID_DEVICE;
    *major = g_cfg.dev.cc_major;
    *minor = g_cfg.dev.cc_minor;
    return CUDA_SUCCESS;
}

DRV cuDeviceGetPCIBusId(char *buf, int len, CUdevice d) { return cudaDeviceGetPCIBusId(buf, len, d); }

DRV cuDeviceGetByPCIBusId(CUdevice *d, const char *bus_id) {
    revati_ensure_init();
    if (!d || !bus_id) return CUDA_ERROR_INVALID_VALUE;
    for (int i = 0; i < g_cfg.device_count; i++) {
        char mine[32];
        cudaDeviceGetPCIBusId(mine, sizeof mine, i);
        if (!strcasecmp(mine, bus_id) || !strcasecmp(mine + 5, bus_id)) { *d = i; return CUDA_SUCCESS; }
    }
    return CUDA_ERROR_INVALID_DEVICE;
}

DRV cuDeviceCanAccessPeer(int *can, CUdevice d, CUdevice peer) { return cudaDeviceCanAccessPeer(can, d, peer); }

DRV cuDeviceGetP2PAttribute(int *value, int attr, CUdevice src, CUdevice dst) {
    revati_ensure_init();
    if (!value) return CUDA_ERROR_INVALID_VALUE;
    if (!valid_device(src) || !valid_device(dst)) return CUDA_ERROR_INVALID_DEVICE;
    /* 1 performance rank, 2 access supported, 3 native atomics, 4 CUDA arrays: NVLink peers */
    *value = src == dst ? 0 : attr == 1 ? 0 : 1;
    return CUDA_SUCCESS;
}

/* ---- contexts (primary contexts only; a created context is its device's primary) ---------- */

DRV cuDevicePrimaryCtxRetain(CUcontext *ctx, CUdevice d) {
    revati_ensure_init();
    if (!ctx) return CUDA_ERROR_INVALID_VALUE;
    if (!valid_device(d)) return CUDA_ERROR_INVALID_DEVICE;
    struct revati_context *c = context_of(d);
    __atomic_add_fetch(&c->retained, 1, __ATOMIC_ACQ_REL);
    *ctx = c;
    return CUDA_SUCCESS;
}

DRV cuDevicePrimaryCtxRelease_v2(CUdevice d) {
    if (!valid_device(d)) return CUDA_ERROR_INVALID_DEVICE;
    struct revati_context *c = context_of(d);
    if (__atomic_load_n(&c->retained, __ATOMIC_ACQUIRE) > 0) __atomic_sub_fetch(&c->retained, 1, __ATOMIC_ACQ_REL);
    return CUDA_SUCCESS;
}
DRV cuDevicePrimaryCtxRelease(CUdevice d) { return cuDevicePrimaryCtxRelease_v2(d); }

DRV cuDevicePrimaryCtxGetState(CUdevice d, unsigned int *flags, int *active) {
    revati_ensure_init();
    if (!flags || !active) return CUDA_ERROR_INVALID_VALUE;
    if (!valid_device(d)) return CUDA_ERROR_INVALID_DEVICE;
    struct revati_context *c = context_of(d);
    *flags = c->flags;
    /* the runtime's current device has its primary context, as after a real runtime's first call */
    *active = c->retained > 0 || d == revati_current_device();
    return CUDA_SUCCESS;
}

DRV cuDevicePrimaryCtxSetFlags_v2(CUdevice d, unsigned int flags) {
    if (!valid_device(d)) return CUDA_ERROR_INVALID_DEVICE;
    context_of(d)->flags = flags;
    return CUDA_SUCCESS;
}
DRV cuDevicePrimaryCtxSetFlags(CUdevice d, unsigned int flags) { return cuDevicePrimaryCtxSetFlags_v2(d, flags); }
DRV cuDevicePrimaryCtxReset_v2(CUdevice d) { return valid_device(d) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE; }
DRV cuDevicePrimaryCtxReset(CUdevice d) { return cuDevicePrimaryCtxReset_v2(d); }

DRV cuCtxGetCurrent(CUcontext *ctx) {
    revati_ensure_init();
    if (!ctx) return CUDA_ERROR_INVALID_VALUE;
    *ctx = context_of(revati_current_device());
    return CUDA_SUCCESS;
}

DRV cuCtxSetCurrent(CUcontext ctx) {
    if (!ctx) return CUDA_SUCCESS;
    struct revati_context *c = context_arg(ctx);
    if (!c) return CUDA_ERROR_INVALID_CONTEXT;
    revati_set_current_device(c->device);
    return CUDA_SUCCESS;
}
DRV cuCtxPushCurrent_v2(CUcontext ctx) { return cuCtxSetCurrent(ctx); }
DRV cuCtxPushCurrent(CUcontext ctx) { return cuCtxSetCurrent(ctx); }
DRV cuCtxPopCurrent_v2(CUcontext *ctx) { return ctx ? cuCtxGetCurrent(ctx) : CUDA_SUCCESS; }
DRV cuCtxPopCurrent(CUcontext *ctx) { return cuCtxPopCurrent_v2(ctx); }

DRV cuCtxCreate_v4(CUcontext *ctx, void *params, unsigned int flags, CUdevice d) {
    (void)params; (void)flags;
    CUresult rc = cuDevicePrimaryCtxRetain(ctx, d);
    return rc == CUDA_SUCCESS ? cuCtxSetCurrent(*ctx) : rc;
}
DRV cuCtxDestroy_v2(CUcontext ctx) {
    struct revati_context *c = context_arg(ctx);
    return c ? cuDevicePrimaryCtxRelease_v2(c->device) : CUDA_ERROR_INVALID_CONTEXT;
}

DRV cuCtxGetDevice(CUdevice *d) {
    if (!d) return CUDA_ERROR_INVALID_VALUE;
    *d = revati_current_device();
    return CUDA_SUCCESS;
}
DRV cuCtxGetDevice_v2(CUdevice *d, CUcontext ctx) {
    struct revati_context *c = context_arg(ctx);
    if (!d) return CUDA_ERROR_INVALID_VALUE;
    if (!c) return CUDA_ERROR_INVALID_CONTEXT;
    *d = c->device;
    return CUDA_SUCCESS;
}

DRV cuCtxSynchronize(void) { return cudaDeviceSynchronize(); }
DRV cuCtxSynchronize_v2(CUcontext ctx) { (void)ctx; return cudaDeviceSynchronize(); }

DRV cuCtxGetApiVersion(CUcontext ctx, unsigned int *version) {
    if (!version) return CUDA_ERROR_INVALID_VALUE;
    if (!context_arg(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
    *version = 13000;
    return CUDA_SUCCESS;
}

DRV cuCtxGetFlags(unsigned int *flags) {
    if (!flags) return CUDA_ERROR_INVALID_VALUE;
    *flags = context_of(revati_current_device())->flags;
    return CUDA_SUCCESS;
}
DRV cuCtxSetFlags(unsigned int flags) { context_of(revati_current_device())->flags = flags; return CUDA_SUCCESS; }

DRV cuCtxGetId(CUcontext ctx, unsigned long long *id) {
    struct revati_context *c = context_arg(ctx);
    if (!id) return CUDA_ERROR_INVALID_VALUE;
    if (!c) return CUDA_ERROR_INVALID_CONTEXT;
    *id = (unsigned long long)c->device + 1;
    return CUDA_SUCCESS;
}

DRV cuCtxGetLimit(size_t *value, int limit) {
    static const size_t limits[] = {1024, 1 << 20, 8 << 20, 2048, 0, 0, 0};
    if (!value) return CUDA_ERROR_INVALID_VALUE;
    *value = limit >= 0 && limit < 7 ? limits[limit] : 0;
    return CUDA_SUCCESS;
}
DRV cuCtxSetLimit(int limit, size_t value) { (void)limit; (void)value; return CUDA_SUCCESS; }
DRV cuCtxGetCacheConfig(int *config) { if (config) *config = 0; return CUDA_SUCCESS; }
DRV cuCtxSetCacheConfig(int config) { (void)config; return CUDA_SUCCESS; }

DRV cuCtxGetStreamPriorityRange(int *least, int *greatest) {
    if (least) *least = 0;
    if (greatest) *greatest = -5;
    return CUDA_SUCCESS;
}

DRV cuCtxEnablePeerAccess(CUcontext peer, unsigned int flags) { (void)flags; return context_arg(peer) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT; }
DRV cuCtxDisablePeerAccess(CUcontext peer) { return context_arg(peer) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT; }

/* ---- streams and events: the runtime's own objects ----------------------------------------- */

DRV cuStreamCreate(CUstream *s, unsigned int flags) { return cudaStreamCreateWithPriority(s, flags, 0); }
DRV cuStreamCreateWithPriority(CUstream *s, unsigned int flags, int priority) { return cudaStreamCreateWithPriority(s, flags, priority); }
DRV cuStreamDestroy_v2(CUstream s) { return cudaStreamDestroy(s); }
DRV cuStreamDestroy(CUstream s) { return cudaStreamDestroy(s); }
DRV cuStreamSynchronize(CUstream s) { return cudaStreamSynchronize(s); }
DRV cuStreamQuery(CUstream s) { return cudaStreamQuery(s); }
DRV cuStreamWaitEvent(CUstream s, CUevent e, unsigned int flags) { return cudaStreamWaitEvent(s, e, flags); }
DRV cuStreamGetPriority(CUstream s, int *p) { return cudaStreamGetPriority(s, p); }
DRV cuStreamGetFlags(CUstream s, unsigned int *f) { return cudaStreamGetFlags(s, f); }
DRV cuStreamGetId(CUstream s, unsigned long long *id) {
    if (!id) return CUDA_ERROR_INVALID_VALUE;
    *id = (unsigned long long)(uintptr_t)s;
    return CUDA_SUCCESS;
}
DRV cuStreamGetCtx(CUstream s, CUcontext *ctx) {
    struct revati_stream *obj;
    if (!ctx || revati_stream_ref(s, 0, &obj) < 0) return CUDA_ERROR_INVALID_HANDLE;
    *ctx = context_of(obj ? obj->device : revati_current_device());
    return CUDA_SUCCESS;
}
DRV cuStreamGetDevice(CUstream s, CUdevice *d) {
    struct revati_stream *obj;
    if (!d || revati_stream_ref(s, 0, &obj) < 0) return CUDA_ERROR_INVALID_HANDLE;
    *d = obj ? obj->device : revati_current_device();
    return CUDA_SUCCESS;
}
DRV cuStreamAddCallback(CUstream s, cudaStreamCallback_t cb, void *data, unsigned int flags) {
    cudaError_t cudaStreamAddCallback(cudaStream_t, cudaStreamCallback_t, void *, unsigned int);
    return cudaStreamAddCallback(s, cb, data, flags);
}
DRV cuLaunchHostFunc(CUstream s, cudaHostFn_t fn, void *data) { return cudaLaunchHostFunc(s, fn, data); }
DRV cuStreamBeginCapture_v2(CUstream s, int mode) { return cudaStreamBeginCapture(s, mode); }
DRV cuStreamEndCapture(CUstream s, cudaGraph_t *g) { return cudaStreamEndCapture(s, g); }
DRV cuStreamIsCapturing(CUstream s, int *status) { return cudaStreamIsCapturing(s, status); }
DRV cuGraphInstantiateWithFlags(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long f) { return cudaGraphInstantiateWithFlags(e, g, f); }
DRV cuGraphLaunch(cudaGraphExec_t e, CUstream s) { return cudaGraphLaunch(e, s); }
DRV cuGraphExecDestroy(cudaGraphExec_t e) { return cudaGraphExecDestroy(e); }
DRV cuGraphDestroy(cudaGraph_t g) { return cudaGraphDestroy(g); }

DRV cuEventCreate(CUevent *e, unsigned int flags) { return cudaEventCreateWithFlags(e, flags); }
DRV cuEventDestroy_v2(CUevent e) { return cudaEventDestroy(e); }
DRV cuEventDestroy(CUevent e) { return cudaEventDestroy(e); }
DRV cuEventRecord(CUevent e, CUstream s) { return cudaEventRecord(e, s); }
DRV cuEventRecordWithFlags(CUevent e, CUstream s, unsigned int f) { return cudaEventRecordWithFlags(e, s, f); }
DRV cuEventSynchronize(CUevent e) { return cudaEventSynchronize(e); }
DRV cuEventQuery(CUevent e) { return cudaEventQuery(e); }
DRV cuEventElapsedTime(float *ms, CUevent a, CUevent b) { return cudaEventElapsedTime(ms, a, b); }
DRV cuEventElapsedTime_v2(float *ms, CUevent a, CUevent b) { return cudaEventElapsedTime(ms, a, b); }

/* ---- entry points: the shim's own definitions, by name ------------------------------------- */

extern const char *const revati_stub_names[] __attribute__((weak));
extern const unsigned int revati_stub_count __attribute__((weak));

static int by_name(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* A generated stub (records an unsupported call when called), as opposed to an emulation. */
static int is_stub(const char *name) {
    if (!revati_stub_names || !&revati_stub_count) return 0;
    return bsearch(&name, revati_stub_names, revati_stub_count, sizeof *revati_stub_names, by_name) != NULL;
}

static void *shim_symbol(const char *name) {
    static void *self;
    if (!self) {
        Dl_info info;
        if (dladdr((void *)cuInit, &info) && info.dli_fname) self = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
        if (!self) return NULL;
    }
    return dlsym(self, name);
}

/* `symbol` as a driver function of the shim: its newest `_vN` variant (and the per-thread
 * stream one when asked), an emulation preferred to a stub. NULL when the shim has none. */
static void *driver_symbol(const char *symbol, int per_thread) {
    static const char *const versions[] = {"_v4", "_v3", "_v2", ""};
    static const char *const streams[] = {"_ptsz", "_ptds"};
    void *stub = NULL;
    char name[256];
    if (!symbol || strncmp(symbol, "cu", 2) || strlen(symbol) > 200) return NULL;
    for (size_t v = 0; v < sizeof versions / sizeof versions[0]; v++) {
        for (size_t s = 0; s < (per_thread ? 3u : 1u); s++) {
            if (per_thread && s < 2) snprintf(name, sizeof name, "%s%s%s", symbol, versions[v], streams[s]);
            else snprintf(name, sizeof name, "%s%s", symbol, versions[v]);
            void *fn = shim_symbol(name);
            if (!fn) continue;
            if (!is_stub(name)) return fn;
            if (!stub) stub = fn;
        }
    }
    return stub;
}

static CUresult proc_address(const char *symbol, void **pfn, int per_thread, int *status) {
    if (!pfn) return CUDA_ERROR_INVALID_VALUE;
    *pfn = driver_symbol(symbol, per_thread);
    if (status) *status = *pfn ? CU_GET_PROC_ADDRESS_SUCCESS : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    return *pfn ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

DRV cuGetProcAddress_v2(const char *symbol, void **pfn, int version, unsigned long long flags, int *status) {
    (void)version;
    return proc_address(symbol, pfn, (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0, status);
}
DRV cuGetProcAddress(const char *symbol, void **pfn, int version, unsigned long long flags) {
    return cuGetProcAddress_v2(symbol, pfn, version, flags, NULL);
}

/* The runtime's way to the driver (PyTorch asks for ~35 entry points so). */
REVATI_EXPORT cudaError_t cudaGetDriverEntryPointByVersion(const char *symbol, void **pfn, unsigned int version,
                                                           unsigned long long flags, int *status) {
    (void)version;
    revati_ensure_init();
    CUresult rc = proc_address(symbol, pfn, (flags & cudaEnablePerThreadDefaultStream) != 0, status);
    return rc == CUDA_SUCCESS ? cudaSuccess : (status ? cudaSuccess : cudaErrorInvalidValue);
}
REVATI_EXPORT cudaError_t cudaGetDriverEntryPoint(const char *symbol, void **pfn, unsigned long long flags, int *status) {
    return cudaGetDriverEntryPointByVersion(symbol, pfn, 13000, flags, status);
}
REVATI_EXPORT cudaError_t cudaGetDriverEntryPoint_ptsz(const char *symbol, void **pfn, unsigned long long flags, int *status) {
    return cudaGetDriverEntryPointByVersion(symbol, pfn, 13000, flags | cudaEnablePerThreadDefaultStream, status);
}
REVATI_EXPORT cudaError_t cudaGetDriverEntryPointByVersion_ptsz(const char *symbol, void **pfn, unsigned int version,
                                                                unsigned long long flags, int *status) {
    return cudaGetDriverEntryPointByVersion(symbol, pfn, version, flags | cudaEnablePerThreadDefaultStream, status);
}
