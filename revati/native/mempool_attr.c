/*
 * Memory pools: attributes (release threshold, reuse flags, reserved/used counters), trimming
 * and per-device access (mempool.c explains what the counters count).
 */
#define _GNU_SOURCE
#include "mempool.h"

#define API REVATI_EXPORT cudaError_t

enum { ATTR_REUSE_FOLLOW_EVENT_DEPS = 1, ATTR_REUSE_OPPORTUNISTIC, ATTR_REUSE_INTERNAL_DEPS,
       ATTR_RELEASE_THRESHOLD, ATTR_RESERVED_CURRENT, ATTR_RESERVED_HIGH, ATTR_USED_CURRENT,
       ATTR_USED_HIGH };
enum { ACCESS_NONE = 0, ACCESS_READ = 1 };
struct mem_access_desc { struct mem_location location; int flags; };

/* ---- attributes, trimming, access ---------------------------------------------------------- */

static cudaError_t set_attribute_locked(struct revati_mempool *p, int attr, const void *value) {
    switch (attr) {
    case ATTR_REUSE_FOLLOW_EVENT_DEPS: p->reuse_follow_event_deps = *(const int *)value; return cudaSuccess;
    case ATTR_REUSE_OPPORTUNISTIC: p->reuse_opportunistic = *(const int *)value; return cudaSuccess;
    case ATTR_REUSE_INTERNAL_DEPS: p->reuse_internal_deps = *(const int *)value; return cudaSuccess;
    case ATTR_RELEASE_THRESHOLD: p->release_threshold = *(const uint64_t *)value; return cudaSuccess;
    case ATTR_RESERVED_HIGH: /* the high-water marks can only be reset, to 0 */
        if (*(const uint64_t *)value) return cudaErrorInvalidValue;
        p->reserved_high = p->reserved;
        return cudaSuccess;
    case ATTR_USED_HIGH:
        if (*(const uint64_t *)value) return cudaErrorInvalidValue;
        p->used_high = p->used;
        return cudaSuccess;
    default: return cudaErrorInvalidValue;
    }
}

static cudaError_t pool_set_attribute(void *handle, int attr, const void *value) {
    if (!value) return cudaErrorInvalidValue;
    int64_t enter = revati_now();
    pthread_mutex_lock(&g_pool_lock);
    struct revati_mempool *p = pool_of(handle);
    cudaError_t rc = p ? set_attribute_locked(p, attr, value) : cudaErrorInvalidValue;
    pthread_mutex_unlock(&g_pool_lock);
    uint64_t v = attr <= ATTR_REUSE_INTERNAL_DEPS ? (uint64_t)*(const int *)value : *(const uint64_t *)value;
    pool_api_record(FN_cudaMemPoolSetAttribute, rc, enter, pool_id(p), (uint64_t)attr, v, 0);
    return rc;
}
API cudaMemPoolSetAttribute(void *pool, int attr, void *value) { return revati_ret(pool_set_attribute(pool, attr, value)); }

static cudaError_t pool_get_attribute(void *handle, int attr, void *value) {
    if (!value) return cudaErrorInvalidValue;
    pthread_mutex_lock(&g_pool_lock);
    struct revati_mempool *p = pool_of(handle);
    cudaError_t rc = p ? cudaSuccess : cudaErrorInvalidValue;
    if (p && attr >= ATTR_REUSE_FOLLOW_EVENT_DEPS && attr <= ATTR_REUSE_INTERNAL_DEPS) {
        const int flags[] = {p->reuse_follow_event_deps, p->reuse_opportunistic, p->reuse_internal_deps};
        *(int *)value = flags[attr - ATTR_REUSE_FOLLOW_EVENT_DEPS];
    } else if (p && attr >= ATTR_RELEASE_THRESHOLD && attr <= ATTR_USED_HIGH) {
        const uint64_t sizes[] = {p->release_threshold, p->reserved, p->reserved_high, p->used, p->used_high};
        *(uint64_t *)value = sizes[attr - ATTR_RELEASE_THRESHOLD];
    } else if (p) {
        rc = cudaErrorInvalidValue;
    }
    pthread_mutex_unlock(&g_pool_lock);
    return rc;
}
API cudaMemPoolGetAttribute(void *pool, int attr, void *value) { return revati_ret(pool_get_attribute(pool, attr, value)); }

static cudaError_t pool_trim(void *handle, size_t keep) {
    int64_t enter = revati_now();
    pthread_mutex_lock(&g_pool_lock);
    struct revati_mempool *p = pool_of(handle);
    uint64_t released = p ? pool_trim_locked(p, keep) : 0, reserved = p ? p->reserved : 0;
    pthread_mutex_unlock(&g_pool_lock);
    cudaError_t rc = p ? cudaSuccess : cudaErrorInvalidValue;
    pool_api_record(FN_cudaMemPoolTrimTo, rc, enter, pool_id(p), keep, released, reserved);
    return rc;
}
API cudaMemPoolTrimTo(void *pool, size_t keep) { return revati_ret(pool_trim(pool, keep)); }

static cudaError_t set_access_locked(struct revati_mempool *p, const struct mem_access_desc *d, size_t n) {
    for (size_t i = 0; i < n; i++) { /* check all first: a failed call changes nothing */
        int flags = d[i].flags;
        if (d[i].location.type != LOCATION_DEVICE || !pool_valid_device(d[i].location.id)) return cudaErrorInvalidDevice;
        if (flags != ACCESS_NONE && flags != ACCESS_READ && flags != ACCESS_READ_WRITE) return cudaErrorInvalidValue;
        if (d[i].location.id == p->device && flags != ACCESS_READ_WRITE) return cudaErrorInvalidDevice;
    }
    for (size_t i = 0; i < n; i++) p->access[d[i].location.id] = d[i].flags;
    return cudaSuccess;
}

static cudaError_t pool_set_access(void *handle, const struct mem_access_desc *d, size_t n) {
    if (n && !d) return cudaErrorInvalidValue;
    int64_t enter = revati_now();
    pthread_mutex_lock(&g_pool_lock);
    struct revati_mempool *p = pool_of(handle);
    cudaError_t rc = p ? set_access_locked(p, d, n) : cudaErrorInvalidValue;
    pthread_mutex_unlock(&g_pool_lock);
    pool_api_record(FN_cudaMemPoolSetAccess, rc, enter, pool_id(p), n, n ? (uint64_t)d[0].location.id : 0,
               n ? (uint64_t)d[0].flags : 0);
    return rc;
}
API cudaMemPoolSetAccess(void *pool, const struct mem_access_desc *d, size_t n) { return revati_ret(pool_set_access(pool, d, n)); }

static cudaError_t pool_get_access(int *flags, void *handle, const struct mem_location *loc) {
    if (!flags || !loc) return cudaErrorInvalidValue;
    if (loc->type != LOCATION_DEVICE || !pool_valid_device(loc->id)) return cudaErrorInvalidDevice;
    pthread_mutex_lock(&g_pool_lock);
    struct revati_mempool *p = pool_of(handle);
    if (p) *flags = p->access[loc->id];
    pthread_mutex_unlock(&g_pool_lock);
    return p ? cudaSuccess : cudaErrorInvalidValue;
}
API cudaMemPoolGetAccess(int *flags, void *pool, struct mem_location *loc) { return revati_ret(pool_get_access(flags, pool, loc)); }
