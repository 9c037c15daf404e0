/*
 * The CUDA runtime API, emulated: devices, memory, streams, events, synchronisation, errors.
 * Kernel registration, launches and graphs are in launch.c.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memory.h"
#include "mempool.h"
#include "objects.h"

#define API REVATI_EXPORT cudaError_t

static __thread int t_device;
static __thread cudaError_t t_last_error;

static cudaError_t ret(cudaError_t e) {
    if (e != cudaSuccess) t_last_error = e;
    return e;
}
cudaError_t revati_ret(cudaError_t e) { return ret(e); }

int revati_current_device(void) { return t_device; }
void revati_set_current_device(int device) { t_device = device; }

/* One plain API record with the host cost of its class. */
static cudaError_t plain(uint16_t fn, enum revati_cost_class cls, cudaError_t rc, uint64_t a, uint64_t b) {
    int64_t enter = revati_now();
    int64_t exit = revati_charge(cls, enter);
    revati_emit(REC_API, 0, fn, rc, enter, exit, a, b, 0, 0);
    return ret(rc);
}

/* ---- errors and versions ------------------------------------------------------------------- */

static const char *error_name(cudaError_t e) {
    switch (e) {
#define ERROR_NAME(name, value) case name: return #name;
    REVATI_CUDA_ERRORS(ERROR_NAME)
#undef ERROR_NAME
    default: return "cudaErrorUnknown";
    }
}

static const char *error_string(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorNotSupported: return "operation not supported (not emulated by revati)";
    default: return error_name(e);
    }
}

REVATI_EXPORT const char *cudaGetErrorName(cudaError_t e) { return error_name(e); }
REVATI_EXPORT const char *cudaGetErrorString(cudaError_t e) { return error_string(e); }
API cudaGetLastError(void) { cudaError_t e = t_last_error; t_last_error = cudaSuccess; return e; }
API cudaPeekAtLastError(void) { return t_last_error; }
API cudaDriverGetVersion(int *v) { if (!v) return ret(cudaErrorInvalidValue); *v = 13000; return cudaSuccess; }
API cudaRuntimeGetVersion(int *v) { if (!v) return ret(cudaErrorInvalidValue); *v = 13000; return cudaSuccess; }

/* ---- devices ------------------------------------------------------------------------------- */

API cudaGetDeviceCount(int *n) {
    revati_ensure_init();
    if (!n) return ret(cudaErrorInvalidValue);
    *n = g_cfg.device_count;
    return cudaSuccess;
}

API cudaGetDevice(int *d) { if (!d) return ret(cudaErrorInvalidValue); *d = t_device; return cudaSuccess; }

API cudaSetDevice(int d) {
    revati_ensure_init();
    if (d < 0 || d >= g_cfg.device_count) return ret(cudaErrorInvalidDevice);
    t_device = d;
    return cudaSuccess;
}

API cudaInitDevice(int d, unsigned int f, unsigned int g) { (void)f; (void)g; return cudaSetDevice(d) ; }
API cudaSetDeviceFlags(unsigned int f) { (void)f; return cudaSuccess; }
API cudaGetDeviceFlags(unsigned int *f) { if (f) *f = 0; return cudaSuccess; }
API cudaDeviceSetCacheConfig(int c) { (void)c; return cudaSuccess; }
API cudaDeviceGetCacheConfig(int *c) { if (c) *c = 0; return cudaSuccess; }
API cudaDeviceSetSharedMemConfig(int c) { (void)c; return cudaSuccess; }
API cudaDeviceSetLimit(int l, size_t v) { (void)l; (void)v; return cudaSuccess; }
API cudaDeviceGetLimit(size_t *v, int l) {
    static const size_t limits[] = {1024, 1 << 20, 8 << 20, 2048, 0, 0, 0};
    if (!v) return ret(cudaErrorInvalidValue);
    *v = l >= 0 && l < 7 ? limits[l] : 0;
    return cudaSuccess;
}
API cudaDeviceGetStreamPriorityRange(int *least, int *greatest) {
    if (least) *least = 0;
    if (greatest) *greatest = -5;
    return cudaSuccess;
}
API cudaDeviceCanAccessPeer(int *can, int d, int peer) {
    if (!can) return ret(cudaErrorInvalidValue);
    *can = d != peer && d < g_cfg.device_count && peer < g_cfg.device_count;
    return cudaSuccess;
}
API cudaDeviceEnablePeerAccess(int peer, unsigned int f) { (void)peer; (void)f; return cudaSuccess; }
API cudaDeviceDisablePeerAccess(int peer) { (void)peer; return cudaSuccess; }

API cudaChooseDevice(int *d, const struct cudaDeviceProp *p) { (void)p; if (d) *d = 0; return cudaSuccess; }

API cudaDeviceGetPCIBusId(char *buf, int len, int d) {
    if (!buf || len <= 0) return ret(cudaErrorInvalidValue);
    snprintf(buf, (size_t)len, "0000:%02x:00.0", 0x18 + revati_physical_device(d));
    return cudaSuccess;
}

static void fill_props(struct cudaDeviceProp *p, int device) {
    const struct revati_device_props *d = &g_cfg.dev;
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", d->name);
    revati_device_uuid(revati_physical_device(device), (unsigned char *)p->uuid.bytes);
    p->totalGlobalMem = (size_t)revati_memory_capacity(device);
    p->sharedMemPerBlock = (size_t)d->shared_mem_per_block;
    p->regsPerBlock = d->regs_per_block;
    p->warpSize = d->warp_size;
    p->memPitch = 2147483647;
    p->maxThreadsPerBlock = d->max_threads_per_block;
    p->maxThreadsDim[0] = 1024; p->maxThreadsDim[1] = 1024; p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 2147483647; p->maxGridSize[1] = 65535; p->maxGridSize[2] = 65535;
    p->totalConstMem = 65536;
    p->major = d->cc_major;
    p->minor = d->cc_minor;
    p->textureAlignment = 512;
    p->texturePitchAlignment = 32;
    p->multiProcessorCount = d->sm_count;
    p->canMapHostMemory = 1;
    p->maxTexture1D = 131072;
    p->maxTexture2D[0] = 131072; p->maxTexture2D[1] = 65536;
    p->maxTexture3D[0] = p->maxTexture3D[1] = p->maxTexture3D[2] = 16384;
    p->surfaceAlignment = 512;
    p->concurrentKernels = 1;
    p->ECCEnabled = 1;
    p->pciBusID = 0x18 + revati_physical_device(device);
    p->asyncEngineCount = 3;
    p->unifiedAddressing = 1;
    p->memoryBusWidth = d->bus_width_bits;
    p->l2CacheSize = (int)d->l2_bytes;
    p->persistingL2CacheMaxSize = (int)(d->l2_bytes * 3 / 4);
    p->maxThreadsPerMultiProcessor = d->max_threads_per_sm;
    p->streamPrioritiesSupported = 1;
    p->globalL1CacheSupported = 1;
    p->localL1CacheSupported = 1;
    p->sharedMemPerMultiprocessor = (size_t)d->shared_mem_per_sm;
    p->regsPerMultiprocessor = d->regs_per_sm;
    p->managedMemory = 1;
    p->hostNativeAtomicSupported = 0;
    p->concurrentManagedAccess = 1;
    p->computePreemptionSupported = 1;
    p->cooperativeLaunch = 1;
    p->sharedMemPerBlockOptin = (size_t)d->shared_mem_per_block_optin;
    p->maxBlocksPerMultiProcessor = d->max_blocks_per_sm;
    p->accessPolicyMaxWindowSize = 134213632;
    p->reservedSharedMemPerBlock = 1024;
    p->hostRegisterSupported = 1;
    p->sparseCudaArraySupported = 1;
    p->timelineSemaphoreInteropSupported = 1;
    p->memoryPoolsSupported = 1;
    p->gpuDirectRDMASupported = 1;
    p->ipcEventSupported = 1;
    p->clusterLaunch = d->cc_major >= 9;
    p->unifiedFunctionPointers = 1;
    p->hostNumaId = -1;
    p->deviceNumaId = -1;
    p->gpuPciDeviceID = 0x233010de;
}

API cudaGetDeviceProperties(struct cudaDeviceProp *p, int device) {
    revati_ensure_init();
    if (!p) return ret(cudaErrorInvalidValue);
    if (device < 0 || device >= g_cfg.device_count) return ret(cudaErrorInvalidDevice);
    fill_props(p, device);
    return cudaSuccess;
}
API cudaGetDeviceProperties_v2(struct cudaDeviceProp *p, int device) { return cudaGetDeviceProperties(p, device); }

API cudaDeviceGetAttribute(int *value, int attr, int device) {
    revati_ensure_init();
    if (!value) return ret(cudaErrorInvalidValue);
    if (device < 0 || device >= g_cfg.device_count) return ret(cudaErrorInvalidDevice);
    struct cudaDeviceProp p;
    const struct revati_device_props *d = &g_cfg.dev;
    fill_props(&p, device);
    int v;
    switch (attr) {
    case 1: v = p.maxThreadsPerBlock; break;
    case 2: case 3: v = 1024; break;
    case 4: v = p.maxGridSize[0]; break;
    case 5: case 6: v = 65535; break;
    case 8: v = (int)p.sharedMemPerBlock; break;
    case 9: v = (int)p.totalConstMem; break;
    case 10: v = p.warpSize; break;
    case 11: v = (int)p.memPitch; break;
    case 12: v = p.regsPerBlock; break;
    case 13: v = d->sm_clock_mhz * 1000; break;
    case 14: v = 512; break;
    case 15: v = 1; break;
    case 16: v = p.multiProcessorCount; break;
    case 17: v = 0; break;
    case 18: v = 0; break;
    case 19: v = 1; break;
    case 20: v = 0; break;
    case 31: v = 1; break;
    case 32: v = 1; break;
    case 33: v = p.pciBusID; break;
    case 34: v = 0; break;
    case 36: v = d->mem_clock_mhz * 1000; break;
    case 37: v = p.memoryBusWidth; break;
    case 38: v = p.l2CacheSize; break;
    case 39: v = p.maxThreadsPerMultiProcessor; break;
    case 40: v = 3; break;
    case 41: v = 1; break;
    case 50: v = 0; break;
    case 75: v = p.major; break;
    case 76: v = p.minor; break;
    case 78: v = 1; break;
    case 79: v = 1; break;
    case 80: v = 1; break;
    case 81: v = (int)p.sharedMemPerMultiprocessor; break;
    case 82: v = p.regsPerMultiprocessor; break;
    case 83: v = 1; break;
    case 84: v = 0; break;
    case 85: v = 0; break;
    case 86: v = 1; break;
    case 87: v = 1; break;
    case 88: v = 0; break;
    case 89: v = 1; break;
    case 90: v = 1; break;
    case 91: v = 0; break;
    case 95: v = 1; break;
    case 96: v = 1; break;
    case 97: v = (int)p.sharedMemPerBlockOptin; break;
    case 98: v = 1; break;
    case 99: v = 1; break;
    case 100: v = 0; break;
    case 101: v = 0; break;
    case 106: v = p.maxBlocksPerMultiProcessor; break;
    case 107: v = 0; break;
    case 108: v = p.persistingL2CacheMaxSize; break;
    case 109: v = p.accessPolicyMaxWindowSize; break;
    case 111: v = 1024; break;
    case 115: v = 1; break;
    case 116: v = 1; break;
    case 118: case 119: v = 1; break;
    case 120: v = p.clusterLaunch; break;
    case 92: case 122: case 123: v = 1; break;   /* stream memory operations */
    case 102: case 103: case 110: v = 1; break;  /* virtual memory management, POSIX fd handles */
    case 126: v = 4; break;                      /* memory sync domains */
    case 127: v = p.major >= 9; break;           /* tensor maps */
    case 131: case 134: v = -1; break;           /* NUMA ids */
    case 139: v = p.gpuPciDeviceID; break;
    default: v = 0; break;
    }
    *value = v;
    return cudaSuccess;
}

/* ---- synchronisation (the coordinator decides when we resume) ------------------------------ */

static cudaError_t block_on(uint16_t fn, uint8_t kind, int64_t a, int64_t b) {
    struct revati_msg m;
    if (kind != SYNC_COPY) revati_mempool_synchronized(); /* pools release above their threshold */
    if (revati_block(MSG_WAIT, kind, fn, a, b, 0, &m) < 0) return cudaSuccess;
    revati_charge(COST_SYNC, m.v);
    return ret(m.result);
}

static cudaError_t query(uint16_t fn, int what, int64_t a, int64_t b, int64_t *value) {
    struct revati_msg m;
    if (revati_block(MSG_QUERY, SYNC_QUERY, fn, a, b, what, &m) < 0) {
        if (value) *value = 0;
        return cudaSuccess;
    }
    if (value) *value = m.value;
    return ret(m.result);
}

API cudaDeviceSynchronize(void) {
    revati_ensure_init();
    revati_hostfn_gate_all(FN_cudaDeviceSynchronize);
    return block_on(FN_cudaDeviceSynchronize, SYNC_DEVICE, revati_physical_device(t_device), 0);
}
API cudaThreadSynchronize(void) { return cudaDeviceSynchronize(); }

API cudaDeviceReset(void) {
    revati_ensure_init();
    int device = revati_physical_device(t_device);
    cudaError_t rc = block_on(FN_cudaDeviceReset, SYNC_DEVICE, device, 0);
    int64_t now = revati_now();
    revati_emit(REC_DEVICE_RESET, 0, FN_cudaDeviceReset, rc, now, now, (uint64_t)device, 0, 0, 0);
    return rc;
}

/* ---- streams ------------------------------------------------------------------------------- */

/* A default stream belongs to the current device: its ref carries the node's device. */
static int64_t default_ref(int per_thread) {
    return ((int64_t)revati_physical_device(t_device) << REVATI_DEFAULT_STREAM_DEVICE_SHIFT) | (per_thread ? 2 : 0);
}

int64_t revati_default_stream_ref(int device) {
    return (int64_t)revati_physical_device(device) << REVATI_DEFAULT_STREAM_DEVICE_SHIFT;
}

int64_t revati_stream_ref(cudaStream_t s, int per_thread, struct revati_stream **obj) {
    *obj = NULL;
    if (s == NULL) return default_ref(per_thread);
    if (s == REVATI_STREAM_LEGACY) return default_ref(0);
    if (s == REVATI_STREAM_PER_THREAD) return default_ref(1);
    struct revati_stream *st = s;
    if (st->magic != STREAM_MAGIC) return -1;
    *obj = st;
    return (int64_t)(uintptr_t)s;
}

static cudaError_t stream_create(cudaStream_t *out, unsigned int flags, int priority, uint16_t fn) {
    revati_ensure_init();
    if (!out) return ret(cudaErrorInvalidValue);
    int64_t enter = revati_now();
    struct revati_stream *s = calloc(1, sizeof *s);
    if (!s) return ret(cudaErrorMemoryAllocation);
    s->magic = STREAM_MAGIC;
    s->flags = flags;
    s->priority = priority < -5 ? -5 : priority > 0 ? 0 : priority;
    s->device = t_device;
    *out = s;
    int64_t exit = revati_charge(COST_OTHER, enter);
    revati_emit(REC_STREAM_CREATE, 0, fn, 0, enter, exit, (uint64_t)(uintptr_t)s, flags,
                (uint64_t)(int64_t)s->priority, (uint64_t)revati_physical_device(t_device));
    return cudaSuccess;
}

API cudaStreamCreate(cudaStream_t *s) { return stream_create(s, 0, 0, FN_cudaStreamCreate); }
API cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int f) { return stream_create(s, f, 0, FN_cudaStreamCreateWithFlags); }
API cudaStreamCreateWithPriority(cudaStream_t *s, unsigned int f, int p) { return stream_create(s, f, p, FN_cudaStreamCreateWithPriority); }

API cudaStreamDestroy(cudaStream_t s) {
    struct revati_stream *obj;
    if (revati_stream_ref(s, 0, &obj) < 0 || !obj) return ret(cudaErrorInvalidResourceHandle);
    int64_t now = revati_now();
    revati_emit(REC_STREAM_DESTROY, 0, FN_cudaStreamDestroy, 0, now, now, (uint64_t)(uintptr_t)s, 0, 0, 0);
    obj->magic = 0;
    free(obj->attrs);
    free(obj);
    return cudaSuccess;
}

API cudaStreamGetPriority(cudaStream_t s, int *p) {
    struct revati_stream *obj;
    if (revati_stream_ref(s, 0, &obj) < 0 || !p) return ret(cudaErrorInvalidValue);
    *p = obj ? obj->priority : 0;
    return cudaSuccess;
}
API cudaStreamGetPriority_ptsz(cudaStream_t s, int *p) { return cudaStreamGetPriority(s, p); }

API cudaStreamGetFlags(cudaStream_t s, unsigned int *f) {
    struct revati_stream *obj;
    if (revati_stream_ref(s, 0, &obj) < 0 || !f) return ret(cudaErrorInvalidValue);
    *f = obj ? obj->flags : 0;
    return cudaSuccess;
}
API cudaStreamGetFlags_ptsz(cudaStream_t s, unsigned int *f) { return cudaStreamGetFlags(s, f); }

API cudaStreamGetDevice(cudaStream_t s, int *d) {
    struct revati_stream *obj;
    if (revati_stream_ref(s, 0, &obj) < 0 || !d) return ret(cudaErrorInvalidValue);
    *d = obj ? obj->device : t_device;
    return cudaSuccess;
}

static cudaError_t stream_sync(cudaStream_t s, int per_thread) {
    revati_ensure_init();
    struct revati_stream *obj;
    int64_t ref = revati_stream_ref(s, per_thread, &obj);
    if (ref < 0) return ret(cudaErrorInvalidResourceHandle);
    if (obj && obj->capture) return ret(cudaErrorStreamCaptureUnsupported);
    revati_hostfn_gate(ref, FN_cudaStreamSynchronize);
    return block_on(FN_cudaStreamSynchronize, SYNC_STREAM, ref, 0);
}
API cudaStreamSynchronize(cudaStream_t s) { return stream_sync(s, 0); }
API cudaStreamSynchronize_ptsz(cudaStream_t s) { return stream_sync(s, 1); }

static cudaError_t stream_query(cudaStream_t s, int per_thread) {
    revati_ensure_init();
    struct revati_stream *obj;
    int64_t ref = revati_stream_ref(s, per_thread, &obj);
    if (ref < 0) return ret(cudaErrorInvalidResourceHandle);
    return query(FN_cudaStreamQuery, QUERY_STREAM, ref, 0, NULL);
}
API cudaStreamQuery(cudaStream_t s) { return stream_query(s, 0); }
API cudaStreamQuery_ptsz(cudaStream_t s) { return stream_query(s, 1); }

/* ---- events -------------------------------------------------------------------------------- */

static cudaError_t event_create(cudaEvent_t *e, unsigned int flags, uint16_t fn) {
    revati_ensure_init();
    if (!e) return ret(cudaErrorInvalidValue);
    struct revati_event *ev = calloc(1, sizeof *ev);
    if (!ev) return ret(cudaErrorMemoryAllocation);
    ev->magic = EVENT_MAGIC;
    ev->flags = flags;
    *e = ev;
    int64_t now = revati_now();
    revati_emit(REC_EVENT_CREATE, 0, fn, 0, now, now, (uint64_t)(uintptr_t)ev, flags, 0, 0);
    return cudaSuccess;
}
API cudaEventCreate(cudaEvent_t *e) { return event_create(e, 0, FN_cudaEventCreate); }
API cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int f) { return event_create(e, f, FN_cudaEventCreateWithFlags); }

static int valid_event(cudaEvent_t e) { return e && ((struct revati_event *)e)->magic == EVENT_MAGIC; }

API cudaEventDestroy(cudaEvent_t e) {
    if (!valid_event(e)) return ret(cudaErrorInvalidResourceHandle);
    uint64_t handle = (uint64_t)(uintptr_t)e;
    ((struct revati_event *)e)->magic = 0;
    free(e);
    return plain(FN_cudaEventDestroy, COST_OTHER, cudaSuccess, handle, 0);
}

static cudaError_t event_record(cudaEvent_t e, cudaStream_t s, int per_thread, uint16_t fn) {
    revati_ensure_init();
    if (!valid_event(e)) return ret(cudaErrorInvalidResourceHandle);
    struct revati_stream *obj;
    int64_t ref = revati_stream_ref(s, per_thread, &obj);
    if (ref < 0) return ret(cudaErrorInvalidResourceHandle);
    struct revati_event *ev = e;
    ev->capture = obj ? obj->capture : NULL;
    if (ev->capture) { /* a fork/join point inside a capture: remember the stream's leaves */
        ev->deps = obj->deps;
        return cudaSuccess;
    }
    revati_hostfn_gate(ref, FN_cudaEventRecord);
    int64_t enter = revati_now();
    int64_t exit = revati_charge(COST_EVENT, enter);
    revati_emit(REC_EVENT_RECORD, 0, fn, 0, enter, exit, (uint64_t)(uintptr_t)e, (uint64_t)ref, 0, 0);
    return cudaSuccess;
}
API cudaEventRecord(cudaEvent_t e, cudaStream_t s) { return event_record(e, s, 0, FN_cudaEventRecord); }
API cudaEventRecord_ptsz(cudaEvent_t e, cudaStream_t s) { return event_record(e, s, 1, FN_cudaEventRecord); }
API cudaEventRecordWithFlags(cudaEvent_t e, cudaStream_t s, unsigned int f) { (void)f; return event_record(e, s, 0, FN_cudaEventRecordWithFlags); }
API cudaEventRecordWithFlags_ptsz(cudaEvent_t e, cudaStream_t s, unsigned int f) { (void)f; return event_record(e, s, 1, FN_cudaEventRecordWithFlags); }

API cudaEventSynchronize(cudaEvent_t e) {
    revati_ensure_init();
    if (!valid_event(e)) return ret(cudaErrorInvalidResourceHandle);
    revati_hostfn_gate_all(FN_cudaEventSynchronize);
    return block_on(FN_cudaEventSynchronize, SYNC_EVENT, (int64_t)(uintptr_t)e, 0);
}

API cudaEventQuery(cudaEvent_t e) {
    revati_ensure_init();
    if (!valid_event(e)) return ret(cudaErrorInvalidResourceHandle);
    return query(FN_cudaEventQuery, QUERY_EVENT, (int64_t)(uintptr_t)e, 0, NULL);
}

API cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
    revati_ensure_init();
    if (!ms) return ret(cudaErrorInvalidValue);
    if (!valid_event(start) || !valid_event(end)) return ret(cudaErrorInvalidResourceHandle);
    int64_t ns = 0;
    cudaError_t rc = query(FN_cudaEventElapsedTime, QUERY_EVENT_ELAPSED, (int64_t)(uintptr_t)start,
                           (int64_t)(uintptr_t)end, &ns);
    if (rc == cudaSuccess) *ms = (float)((double)ns / 1e6);
    return rc;
}
API cudaEventElapsedTime_v2(float *ms, cudaEvent_t start, cudaEvent_t end) { return cudaEventElapsedTime(ms, start, end); }

static cudaError_t stream_wait_event(cudaStream_t s, cudaEvent_t e, int per_thread) {
    revati_ensure_init();
    if (!valid_event(e)) return ret(cudaErrorInvalidResourceHandle);
    struct revati_stream *obj;
    int64_t ref = revati_stream_ref(s, per_thread, &obj);
    if (ref < 0) return ret(cudaErrorInvalidResourceHandle);
    struct revati_event *ev = e;
    if (ev->capture && obj && capture_live(ev->capture)) {
        if (obj->capture != ev->capture) { /* the stream joins the capture (fork) */
            struct revati_graph *g = ev->capture;
            if (obj->capture) return ret(cudaErrorStreamCaptureIsolation);
            obj->capture = g;
            obj->deps = ev->deps;
            if (g->njoined < sizeof g->joined / sizeof g->joined[0]) g->joined[g->njoined++] = obj;
            return cudaSuccess;
        }
        for (uint32_t i = 0; i < ev->deps.n; i++) { /* join: the leaves of both */
            uint32_t j = 0;
            while (j < obj->deps.n && obj->deps.node[j] != ev->deps.node[i]) j++;
            if (j == obj->deps.n && obj->deps.n < CAPTURE_MAX_DEPS) obj->deps.node[obj->deps.n++] = ev->deps.node[i];
        }
        return cudaSuccess;
    }
    int64_t enter = revati_now();
    int64_t exit = revati_charge(COST_EVENT, enter);
    revati_emit(REC_STREAM_WAIT, 0, FN_cudaStreamWaitEvent, 0, enter, exit, (uint64_t)ref,
                (uint64_t)(uintptr_t)e, 0, 0);
    return cudaSuccess;
}
API cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int f) { (void)f; return stream_wait_event(s, e, 0); }
API cudaStreamWaitEvent_ptsz(cudaStream_t s, cudaEvent_t e, unsigned int f) { (void)f; return stream_wait_event(s, e, 1); }

/* ---- memory -------------------------------------------------------------------------------- */

static cudaError_t device_alloc(void **p, size_t bytes, int kind, uint16_t fn) {
    revati_ensure_init();
    if (!p) return ret(cudaErrorInvalidValue);
    int64_t enter = revati_now();
    int backed = 0;
    void *ptr = bytes ? revati_device_alloc(bytes, t_device, kind, &backed) : NULL;
    cudaError_t rc = bytes && !ptr ? cudaErrorMemoryAllocation : cudaSuccess;
    *p = ptr;
    int64_t exit = revati_charge(COST_ALLOC, enter);
    uint8_t k = (uint8_t)(kind | (backed ? REC_F_BACKED : 0) | (rc ? ALLOC_FAILED : 0));
    revati_emit(REC_ALLOC, k, fn, rc, enter, exit, (uint64_t)(uintptr_t)ptr, bytes, (uint64_t)revati_physical_device(t_device), 0);
    return ret(rc);
}

API cudaMalloc(void **p, size_t bytes) { return device_alloc(p, bytes, ALLOC_DEVICE, FN_cudaMalloc); }
API cudaMallocManaged(void **p, size_t bytes, unsigned int f) { (void)f; return device_alloc(p, bytes, ALLOC_MANAGED, FN_cudaMallocManaged); }
API cudaMallocPitch(void **p, size_t *pitch, size_t w, size_t h) {
    if (!pitch) return ret(cudaErrorInvalidValue);
    *pitch = (w + 511) & ~(size_t)511;
    return device_alloc(p, *pitch * h, ALLOC_DEVICE, FN_cudaMallocPitch);
}

static cudaError_t device_free(void *ptr, uint16_t fn) {
    revati_ensure_init();
    if (!ptr) return cudaSuccess; /* cudaFree(0) initialises the context */
    int64_t enter = revati_now();
    struct revati_alloc a;
    cudaError_t rc;
    if (!revati_mempool_free_sync(ptr, &rc)) /* else a stream-ordered allocation went back to its pool */
        rc = revati_device_free(ptr, &a) == 0 ? cudaSuccess : cudaErrorInvalidValue;
    int64_t exit = revati_charge(COST_ALLOC, enter);
    revati_emit(REC_FREE, 0, fn, rc, enter, exit, (uint64_t)(uintptr_t)ptr, 0, 0, 0);
    return ret(rc);
}
API cudaFree(void *p) { return device_free(p, FN_cudaFree); }

static cudaError_t host_alloc(void **p, size_t bytes, uint16_t fn) {
    revati_ensure_init();
    if (!p) return ret(cudaErrorInvalidValue);
    int64_t enter = revati_now();
    void *ptr = NULL;
    cudaError_t rc = posix_memalign(&ptr, 4096, bytes ? bytes : 1) ? cudaErrorMemoryAllocation : cudaSuccess;
    if (ptr) revati_host_track(ptr, bytes, 0);
    *p = ptr;
    int64_t exit = revati_charge(COST_ALLOC, enter);
    revati_emit(REC_ALLOC, ALLOC_HOST | REC_F_BACKED, fn, rc, enter, exit, (uint64_t)(uintptr_t)ptr, bytes, 0, 0);
    return ret(rc);
}
API cudaMallocHost(void **p, size_t bytes) { return host_alloc(p, bytes, FN_cudaMallocHost); }
API cudaHostAlloc(void **p, size_t bytes, unsigned int f) { (void)f; return host_alloc(p, bytes, FN_cudaHostAlloc); }

API cudaFreeHost(void *p) {
    size_t bytes;
    if (!p) return cudaSuccess;
    if (revati_host_untrack(p, &bytes) != 0) return ret(cudaErrorInvalidValue);
    uint64_t addr = (uint64_t)(uintptr_t)p;
    free(p);
    int64_t now = revati_now();
    revati_emit(REC_FREE, 0, FN_cudaFreeHost, 0, now, now, addr, 0, 0, 0);
    return cudaSuccess;
}

API cudaHostRegister(void *p, size_t bytes, unsigned int f) {
    (void)f;
    if (!p) return ret(cudaErrorInvalidValue);
    revati_host_track(p, bytes, 1);
    return plain(FN_cudaHostRegister, COST_ALLOC, cudaSuccess, (uint64_t)(uintptr_t)p, bytes);
}
API cudaHostUnregister(void *p) {
    size_t bytes;
    cudaError_t rc = revati_host_untrack(p, &bytes) == 0 ? cudaSuccess : cudaErrorInvalidValue;
    return plain(FN_cudaHostUnregister, COST_ALLOC, rc, (uint64_t)(uintptr_t)p, 0);
}
API cudaHostGetDevicePointer(void **d, void *h, unsigned int f) { (void)f; if (!d) return ret(cudaErrorInvalidValue); *d = h; return cudaSuccess; }
API cudaHostGetFlags(unsigned int *f, void *h) { (void)h; if (f) *f = 0; return cudaSuccess; }

API cudaMemGetInfo(size_t *free_b, size_t *total) {
    revati_ensure_init();
    int64_t cap = revati_memory_capacity(t_device), used = revati_memory_used(t_device);
    if (free_b) *free_b = (size_t)(cap - used > 0 ? cap - used : 0);
    if (total) *total = (size_t)cap;
    return cudaSuccess;
}

API cudaPointerGetAttributes(struct cudaPointerAttributes *attr, const void *ptr) {
    revati_ensure_init();
    if (!attr) return ret(cudaErrorInvalidValue);
    memset(attr, 0, sizeof *attr);
    struct revati_alloc a;
    if (revati_device_lookup(ptr, &a)) {
        attr->type = a.kind == ALLOC_MANAGED ? cudaMemoryTypeManaged : cudaMemoryTypeDevice;
        attr->device = a.device;
        attr->devicePointer = (void *)ptr;
        attr->hostPointer = a.kind == ALLOC_MANAGED ? (void *)ptr : NULL;
    } else if (revati_host_lookup(ptr)) {
        attr->type = cudaMemoryTypeHost;
        attr->devicePointer = attr->hostPointer = (void *)ptr;
    } else {
        attr->type = cudaMemoryTypeUnregistered;
        attr->device = -2;
    }
    return cudaSuccess;
}

/* Copies and memsets: move bytes per docs/design.md §4, record the operation, block if synchronous. */
cudaError_t revati_copy(void *dst, const void *src, size_t n, int kind, cudaStream_t s, int async,
                        int per_thread, uint16_t fn) {
    revati_ensure_init();
    struct revati_stream *obj;
    int64_t ref = revati_stream_ref(s, per_thread, &obj);
    if (ref < 0) return ret(cudaErrorInvalidResourceHandle);
    if (kind < 0 || kind > cudaMemcpyDefault) return ret(cudaErrorInvalidMemcpyDirection);
    if (!(obj && obj->capture)) revati_hostfn_gate(ref, fn);
    int64_t enter = revati_now();
    int moved = 0, seen = 0;
    if (n >= REVATI_PAUSE_MIN_BYTES) revati_pause_begin();
    cudaError_t rc = revati_copy_bytes(dst, src, n, &moved, &seen);
    if (n >= REVATI_PAUSE_MIN_BYTES) revati_pause_end();
    if (obj && obj->capture && rc == cudaSuccess) {
        struct graph_node node = {.type = REC_COPY, .kind = (uint8_t)seen, .dst = dst, .src = src, .bytes = n};
        return ret(capture_append(obj, &node) ? cudaErrorMemoryAllocation : cudaSuccess);
    }
    int64_t exit = revati_charge(COST_COPY, enter);
    uint8_t k = (uint8_t)(seen | (async ? REC_F_ASYNC : 0) | (moved ? REC_F_BACKED : 0));
    revati_emit(REC_COPY, k, fn, rc, enter, exit, (uint64_t)(uintptr_t)dst, (uint64_t)(uintptr_t)src, n, (uint64_t)ref);
    if (rc != cudaSuccess) return ret(rc);
    /* A pageable device-to-host copy returns once the data arrived; treat every sync copy so. */
    if (!async) return block_on(fn, SYNC_COPY, ref, 0);
    return cudaSuccess;
}

API cudaMemcpy(void *d, const void *s, size_t n, int k) { return revati_copy(d, s, n, k, NULL, 0, 0, FN_cudaMemcpy); }
API cudaMemcpy_ptds(void *d, const void *s, size_t n, int k) { return revati_copy(d, s, n, k, NULL, 0, 1, FN_cudaMemcpy); }
API cudaMemcpyAsync(void *d, const void *s, size_t n, int k, cudaStream_t st) { return revati_copy(d, s, n, k, st, 1, 0, FN_cudaMemcpyAsync); }
API cudaMemcpyAsync_ptsz(void *d, const void *s, size_t n, int k, cudaStream_t st) { return revati_copy(d, s, n, k, st, 1, 1, FN_cudaMemcpyAsync); }
API cudaMemcpyPeer(void *d, int dd, const void *s, int sd, size_t n) { (void)dd; (void)sd; return revati_copy(d, s, n, cudaMemcpyDefault, NULL, 0, 0, FN_cudaMemcpyPeer); }
API cudaMemcpyPeerAsync(void *d, int dd, const void *s, int sd, size_t n, cudaStream_t st) { (void)dd; (void)sd; return revati_copy(d, s, n, cudaMemcpyDefault, st, 1, 0, FN_cudaMemcpyPeerAsync); }

static cudaError_t copy_2d(void *d, size_t dp, const void *s, size_t sp, size_t w, size_t h, int k,
                           cudaStream_t st, int async, int pt, uint16_t fn) {
    if (w > dp || w > sp) return ret(cudaErrorInvalidValue);
    for (size_t row = 0; row + 1 < h; row++) {
        int moved, seen;
        revati_copy_bytes((char *)d + row * dp, (const char *)s + row * sp, w, &moved, &seen);
    }
    if (h == 0) return cudaSuccess;
    /* The last row goes through the recorded path; the record carries all w*h bytes' time. */
    return revati_copy((char *)d + (h - 1) * dp, (const char *)s + (h - 1) * sp, w, k, st, async, pt, fn);
}
API cudaMemcpy2D(void *d, size_t dp, const void *s, size_t sp, size_t w, size_t h, int k) { return copy_2d(d, dp, s, sp, w, h, k, NULL, 0, 0, FN_cudaMemcpy2D); }
API cudaMemcpy2D_ptds(void *d, size_t dp, const void *s, size_t sp, size_t w, size_t h, int k) { return copy_2d(d, dp, s, sp, w, h, k, NULL, 0, 1, FN_cudaMemcpy2D); }
API cudaMemcpy2DAsync(void *d, size_t dp, const void *s, size_t sp, size_t w, size_t h, int k, cudaStream_t st) { return copy_2d(d, dp, s, sp, w, h, k, st, 1, 0, FN_cudaMemcpy2DAsync); }
API cudaMemcpy2DAsync_ptsz(void *d, size_t dp, const void *s, size_t sp, size_t w, size_t h, int k, cudaStream_t st) { return copy_2d(d, dp, s, sp, w, h, k, st, 1, 1, FN_cudaMemcpy2DAsync); }

/* A memset of n bytes as `size`-byte elements (1, 2 or 4) of `value`. */
cudaError_t revati_memset_elements(void *dst, uint32_t value, unsigned int size, size_t n, cudaStream_t s,
                                   int async, int per_thread, uint16_t fn) {
    revati_ensure_init();
    struct revati_stream *obj;
    int64_t ref = revati_stream_ref(s, per_thread, &obj);
    if (ref < 0) return ret(cudaErrorInvalidResourceHandle);
    if (!(obj && obj->capture)) revati_hostfn_gate(ref, fn);
    int64_t enter = revati_now();
    int moved = 0;
    if (n >= REVATI_PAUSE_MIN_BYTES) revati_pause_begin();
    cudaError_t rc = revati_fill(dst, value, size, n, &moved);
    if (n >= REVATI_PAUSE_MIN_BYTES) revati_pause_end();
    if (obj && obj->capture && rc == cudaSuccess) {
        struct graph_node node = {.type = REC_MEMSET, .dst = dst, .bytes = n, .value = (int)value, .element_size = size};
        return ret(capture_append(obj, &node) ? cudaErrorMemoryAllocation : cudaSuccess);
    }
    int64_t exit = revati_charge(COST_COPY, enter);
    uint8_t k = (uint8_t)((async ? REC_F_ASYNC : 0) | (moved ? REC_F_BACKED : 0));
    revati_emit(REC_MEMSET, k, fn, rc, enter, exit, (uint64_t)(uintptr_t)dst, n, (uint64_t)(value & 0xff), (uint64_t)ref);
    return ret(rc);
}
cudaError_t revati_memset(void *dst, int value, size_t n, cudaStream_t s, int async, int per_thread, uint16_t fn) {
    return revati_memset_elements(dst, (uint32_t)(value & 0xff), 1, n, s, async, per_thread, fn);
}
API cudaMemset(void *d, int v, size_t n) { return revati_memset(d, v, n, NULL, 0, 0, FN_cudaMemset); }
API cudaMemset_ptds(void *d, int v, size_t n) { return revati_memset(d, v, n, NULL, 0, 1, FN_cudaMemset); }
API cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t s) { return revati_memset(d, v, n, s, 1, 0, FN_cudaMemsetAsync); }
API cudaMemsetAsync_ptsz(void *d, int v, size_t n, cudaStream_t s) { return revati_memset(d, v, n, s, 1, 1, FN_cudaMemsetAsync); }
API cudaMemset2D(void *d, size_t pitch, int v, size_t w, size_t h) {
    for (size_t r = 0; r + 1 < h; r++) { int m; revati_set_bytes((char *)d + r * pitch, v, w, &m); }
    return h ? revati_memset((char *)d + (h - 1) * pitch, v, w, NULL, 0, 0, FN_cudaMemset2D) : cudaSuccess;
}
API cudaMemset2DAsync(void *d, size_t pitch, int v, size_t w, size_t h, cudaStream_t s) {
    for (size_t r = 0; r + 1 < h; r++) { int m; revati_set_bytes((char *)d + r * pitch, v, w, &m); }
    return h ? revati_memset((char *)d + (h - 1) * pitch, v, w, s, 1, 0, FN_cudaMemset2DAsync) : cudaSuccess;
}

API cudaMemPrefetchAsync(const void *p, size_t n, struct cudaMemLocation loc, unsigned int f, cudaStream_t s) {
    (void)loc; (void)f; (void)s;
    return plain(FN_cudaMemPrefetchAsync, COST_OTHER, cudaSuccess, (uint64_t)(uintptr_t)p, n);
}
API cudaMemAdvise(const void *p, size_t n, int advice, struct cudaMemLocation loc) { (void)p; (void)n; (void)advice; (void)loc; return cudaSuccess; }

/* ---- host functions: run on the worker thread when the stream reaches them (host_fn.c) ------ */

static cudaError_t host_fn(cudaStream_t s, cudaHostFn_t fn, cudaStreamCallback_t cb, void *data, uint16_t id) {
    revati_ensure_init();
    struct revati_stream *obj;
    int64_t ref = revati_stream_ref(s, 0, &obj);
    if (ref < 0 || (!fn && !cb)) return ret(cudaErrorInvalidValue);
    if (obj && obj->capture) {
        if (cb) return ret(cudaErrorStreamCaptureUnsupported);
        struct graph_node node = {.type = REC_HOST_FN, .host_fn = fn, .host_data = data};
        return ret(capture_append(obj, &node) ? cudaErrorMemoryAllocation : cudaSuccess);
    }
    int64_t enter = revati_now();
    int64_t exit = revati_charge(COST_OTHER, enter);
    revati_emit(REC_HOST_FN, 0, id, 0, enter, exit, (uint64_t)ref, 0, 0, 0);
    if (revati_hostfn_enqueue(ref, s, fn, cb, data) != 0) { /* no worker: run it now */
        if (cb) cb(s, cudaSuccess, data);
        else fn(data);
    }
    return cudaSuccess;
}
API cudaLaunchHostFunc(cudaStream_t s, cudaHostFn_t fn, void *data) { return host_fn(s, fn, NULL, data, FN_cudaLaunchHostFunc); }
API cudaLaunchHostFunc_ptsz(cudaStream_t s, cudaHostFn_t fn, void *data) { return host_fn(s, fn, NULL, data, FN_cudaLaunchHostFunc); }
API cudaStreamAddCallback(cudaStream_t s, cudaStreamCallback_t cb, void *data, unsigned int f) {
    (void)f;
    return host_fn(s, NULL, cb, data, FN_cudaStreamAddCallback);
}
API cudaStreamAddCallback_ptsz(cudaStream_t s, cudaStreamCallback_t cb, void *data, unsigned int f) { return cudaStreamAddCallback(s, cb, data, f); }
