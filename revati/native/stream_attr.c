/*
 * Stream attributes (cudaStreamSetAttribute / cudaStreamGetAttribute): each stream keeps what
 * was set and answers it back. The attributes change no timing: the cost model has no L2
 * residency or synchronisation-policy term. Priority is the stream's own priority (the one
 * cudaStreamGetPriority answers), clamped to the device's range like cudaStreamCreateWithPriority.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "objects.h"

#define API REVATI_EXPORT cudaError_t

/* cudaLaunchAttributeID values valid for streams (CUDA 13 driver_types.h). */
enum {
    ATTR_ACCESS_POLICY_WINDOW = 1,
    ATTR_SYNCHRONIZATION_POLICY = 3,
    ATTR_PRIORITY = 8,
    ATTR_MEM_SYNC_DOMAIN_MAP = 9,
    ATTR_MEM_SYNC_DOMAIN = 10,
    ATTR_NVLINK_UTIL_CENTRIC = 16,
};
enum { SYNC_POLICY_AUTO = 1, SYNC_POLICY_BLOCKING = 4 };
enum { ACCESS_NORMAL = 0, ACCESS_STREAMING = 1, ACCESS_PERSISTING = 2 };
#define MAX_WINDOW_BYTES 134213632ULL /* cudaDeviceProp.accessPolicyMaxWindowSize */
#define PRIORITY_GREATEST (-5)
#define WINDOW_FIELD_MAX ((1ULL << 40) - 1) /* the record's window-size field saturates here */

struct access_policy_window {
    void *base_ptr;
    size_t num_bytes;
    float hit_ratio;
    int hit_prop, miss_prop;
};

/* cudaLaunchAttributeValue: a 64-byte union; the members a stream takes. */
union attr_value {
    char pad[64];
    struct access_policy_window window;
    int sync_policy;
    int priority;
    struct { unsigned char default_, remote; } domain_map;
    int domain;
    unsigned int nvlink_util_centric;
};

struct revati_stream_attrs {
    struct access_policy_window window;
    int sync_policy;
    struct { unsigned char default_, remote; } domain_map;
    int domain;
    unsigned int nvlink_util_centric;
};

static const struct revati_stream_attrs k_defaults = {
    .sync_policy = SYNC_POLICY_AUTO, .domain_map = {0, 1}};

/* The default streams (legacy, per-thread) have one set of attributes per process. */
static struct revati_stream_attrs g_default_attrs[2] = {k_defaults, k_defaults};
static int g_default_priority[2];
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static struct revati_stream_attrs *attrs_of(struct revati_stream *obj, int64_t ref) {
    if (!obj) return &g_default_attrs[ref == 2];
    if (!obj->attrs) {
        obj->attrs = malloc(sizeof *obj->attrs);
        if (obj->attrs) *obj->attrs = k_defaults;
    }
    return obj->attrs;
}

static int valid_window(const struct access_policy_window *w) {
    if (w->num_bytes > MAX_WINDOW_BYTES) return 0;
    if (!(w->hit_ratio >= 0.0f && w->hit_ratio <= 1.0f)) return 0;
    if (w->hit_prop < ACCESS_NORMAL || w->hit_prop > ACCESS_PERSISTING) return 0;
    return w->miss_prop == ACCESS_NORMAL || w->miss_prop == ACCESS_STREAMING;
}

/* The record's two value words: what the trace shows of the value set. */
static void summary(int attr, const union attr_value *v, uint64_t *c, uint64_t *d) {
    *c = *d = 0;
    switch (attr) {
    case ATTR_ACCESS_POLICY_WINDOW:
        *c = (uint64_t)(uintptr_t)v->window.base_ptr;
        *d = (v->window.num_bytes < WINDOW_FIELD_MAX ? v->window.num_bytes : WINDOW_FIELD_MAX) | (uint64_t)(v->window.hit_ratio * 1000.0f + 0.5f) << 40 |
             (uint64_t)v->window.hit_prop << 56 | (uint64_t)v->window.miss_prop << 60;
        break;
    case ATTR_MEM_SYNC_DOMAIN_MAP: *c = v->domain_map.default_; *d = v->domain_map.remote; break;
    default: *c = (uint64_t)(int64_t)v->priority; break; /* every other member is one int */
    }
}

static cudaError_t set_locked(struct revati_stream *obj, int64_t ref, int attr, const union attr_value *v) {
    struct revati_stream_attrs *a = attrs_of(obj, ref);
    if (!a) return cudaErrorMemoryAllocation;
    switch (attr) {
    case ATTR_ACCESS_POLICY_WINDOW:
        if (!valid_window(&v->window)) return cudaErrorInvalidValue;
        a->window = v->window;
        return cudaSuccess;
    case ATTR_SYNCHRONIZATION_POLICY:
        if (v->sync_policy < SYNC_POLICY_AUTO || v->sync_policy > SYNC_POLICY_BLOCKING) return cudaErrorInvalidValue;
        a->sync_policy = v->sync_policy;
        return cudaSuccess;
    case ATTR_PRIORITY: {
        int p = v->priority < PRIORITY_GREATEST ? PRIORITY_GREATEST : v->priority > 0 ? 0 : v->priority;
        if (obj) obj->priority = p;
        else g_default_priority[ref == 2] = p;
        return cudaSuccess;
    }
    case ATTR_MEM_SYNC_DOMAIN_MAP: a->domain_map.default_ = v->domain_map.default_; a->domain_map.remote = v->domain_map.remote; return cudaSuccess;
    case ATTR_MEM_SYNC_DOMAIN:
        if (v->domain < 0 || v->domain > 1) return cudaErrorInvalidValue;
        a->domain = v->domain;
        return cudaSuccess;
    case ATTR_NVLINK_UTIL_CENTRIC: a->nvlink_util_centric = v->nvlink_util_centric; return cudaSuccess;
    default: return cudaErrorInvalidValue; /* a launch-only attribute */
    }
}

static cudaError_t get_locked(struct revati_stream *obj, int64_t ref, int attr, union attr_value *v) {
    const struct revati_stream_attrs *a = obj && !obj->attrs ? &k_defaults : attrs_of(obj, ref);
    if (!a) return cudaErrorMemoryAllocation;
    memset(v, 0, sizeof *v);
    switch (attr) {
    case ATTR_ACCESS_POLICY_WINDOW: v->window = a->window; return cudaSuccess;
    case ATTR_SYNCHRONIZATION_POLICY: v->sync_policy = a->sync_policy; return cudaSuccess;
    case ATTR_PRIORITY: v->priority = obj ? obj->priority : g_default_priority[ref == 2]; return cudaSuccess;
    case ATTR_MEM_SYNC_DOMAIN_MAP: v->domain_map.default_ = a->domain_map.default_; v->domain_map.remote = a->domain_map.remote; return cudaSuccess;
    case ATTR_MEM_SYNC_DOMAIN: v->domain = a->domain; return cudaSuccess;
    case ATTR_NVLINK_UTIL_CENTRIC: v->nvlink_util_centric = a->nvlink_util_centric; return cudaSuccess;
    default: return cudaErrorInvalidValue;
    }
}

static cudaError_t stream_set_attribute(cudaStream_t s, int attr, const union attr_value *v, int per_thread) {
    revati_ensure_init();
    struct revati_stream *obj;
    int64_t ref = revati_stream_ref(s, per_thread, &obj);
    if (ref < 0) return cudaErrorInvalidResourceHandle;
    if (!v) return cudaErrorInvalidValue;
    int64_t enter = revati_now();
    pthread_mutex_lock(&g_lock);
    cudaError_t rc = set_locked(obj, ref, attr, v);
    pthread_mutex_unlock(&g_lock);
    uint64_t c, d;
    summary(attr, v, &c, &d);
    int64_t exit = revati_charge(COST_OTHER, enter);
    revati_emit(REC_API, 0, FN_cudaStreamSetAttribute, rc, enter, exit, (uint64_t)ref, (uint64_t)attr, c, d);
    return rc;
}

static cudaError_t stream_get_attribute(cudaStream_t s, int attr, union attr_value *v, int per_thread) {
    revati_ensure_init();
    struct revati_stream *obj;
    int64_t ref = revati_stream_ref(s, per_thread, &obj);
    if (ref < 0) return cudaErrorInvalidResourceHandle;
    if (!v) return cudaErrorInvalidValue;
    pthread_mutex_lock(&g_lock);
    cudaError_t rc = get_locked(obj, ref, attr, v);
    pthread_mutex_unlock(&g_lock);
    return rc;
}

API cudaStreamSetAttribute(cudaStream_t s, int attr, const union attr_value *v) { return revati_ret(stream_set_attribute(s, attr, v, 0)); }
API cudaStreamSetAttribute_ptsz(cudaStream_t s, int attr, const union attr_value *v) { return revati_ret(stream_set_attribute(s, attr, v, 1)); }
API cudaStreamGetAttribute(cudaStream_t s, int attr, union attr_value *v) { return revati_ret(stream_get_attribute(s, attr, v, 0)); }
API cudaStreamGetAttribute_ptsz(cudaStream_t s, int attr, union attr_value *v) { return revati_ret(stream_get_attribute(s, attr, v, 1)); }

/* cudaStreamCopyAttributes: dst takes every attribute of src (priority included). */
static cudaError_t stream_copy_attributes(cudaStream_t dst, cudaStream_t src) {
    revati_ensure_init();
    struct revati_stream *d, *s;
    int64_t dref = revati_stream_ref(dst, 0, &d), sref = revati_stream_ref(src, 0, &s);
    if (dref < 0 || sref < 0) return cudaErrorInvalidResourceHandle;
    pthread_mutex_lock(&g_lock);
    struct revati_stream_attrs *to = attrs_of(d, dref);
    const struct revati_stream_attrs *from = s && !s->attrs ? &k_defaults : attrs_of(s, sref);
    if (to && from) *to = *from;
    int prio = s ? s->priority : g_default_priority[sref == 2];
    if (d) d->priority = prio;
    else g_default_priority[dref == 2] = prio;
    pthread_mutex_unlock(&g_lock);
    return to && from ? cudaSuccess : cudaErrorMemoryAllocation;
}
API cudaStreamCopyAttributes(cudaStream_t dst, cudaStream_t src) { return revati_ret(stream_copy_attributes(dst, src)); }
API cudaStreamCopyAttributes_ptsz(cudaStream_t dst, cudaStream_t src) { return revati_ret(stream_copy_attributes(dst, src)); }

/* Persisting L2 lines back to normal: the cost model keeps no L2 state, so nothing to reset. */
API cudaCtxResetPersistingL2Cache(void) { return cudaSuccess; }
