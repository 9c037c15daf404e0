/*
 * Graph memory: the allocations of memory-allocation nodes (cudaGraphAddMemAllocNode, or
 * cudaMallocAsync captured in a graph) and what frees them.
 *
 * As on a GPU, a node's address is fixed when the node is made, and the bytes behind it are held
 * from then on (they count against the device's capacity: `reserved`). A launch reaching the
 * allocation node makes it live (`used`); a free node, cudaFreeAsync or cudaFree makes it
 * unused again. cudaDeviceGraphMemTrim gives the bytes of every unused allocation back to the
 * device (the address stays the node's); a launch that reaches the node again takes them back.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>

#include "graph_mem.h"
#include "memory.h"

#define API REVATI_EXPORT cudaError_t

enum { ATTR_USED_CURRENT = 0, ATTR_USED_HIGH, ATTR_RESERVED_CURRENT, ATTR_RESERVED_HIGH };

struct graph_alloc {
    uint8_t *addr;
    uint64_t size;
    int device;
    int committed; /* its bytes are held */
    int live;      /* allocated by a launch and not freed yet */
    struct graph_alloc *next;
};

struct graph_mem_counters { uint64_t used, used_high, reserved, reserved_high; };

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct graph_alloc *g_allocs;
static struct graph_mem_counters g_count[REVATI_MAX_DEVICES];

static struct graph_alloc *find_locked(const void *ptr) {
    for (struct graph_alloc *a = g_allocs; a; a = a->next)
        if (a->addr == ptr) return a;
    return NULL;
}

static void count_locked(const struct graph_alloc *a, int64_t used, int64_t reserved) {
    struct graph_mem_counters *c = &g_count[a->device];
    c->used += (uint64_t)used;
    c->reserved += (uint64_t)reserved;
    if (c->used > c->used_high) c->used_high = c->used;
    if (c->reserved > c->reserved_high) c->reserved_high = c->reserved;
}

void *graph_mem_create(size_t bytes, int device) {
    if (device < 0 || device >= REVATI_MAX_DEVICES) return NULL;
    struct graph_alloc *a = calloc(1, sizeof *a);
    int backed;
    void *ptr = a ? revati_device_alloc(bytes ? bytes : 1, device, ALLOC_DEVICE, &backed) : NULL;
    if (!ptr) {
        free(a);
        return NULL;
    }
    struct revati_alloc info;
    revati_device_lookup(ptr, &info);
    *a = (struct graph_alloc){.addr = ptr, .size = info.bytes, .device = device, .committed = 1};
    pthread_mutex_lock(&g_lock);
    a->next = g_allocs;
    g_allocs = a;
    count_locked(a, 0, (int64_t)a->size);
    pthread_mutex_unlock(&g_lock);
    return ptr;
}

int graph_mem_size(const void *ptr, uint64_t *size, int *device) {
    pthread_mutex_lock(&g_lock);
    struct graph_alloc *a = find_locked(ptr);
    if (a) *size = a->size, *device = a->device;
    pthread_mutex_unlock(&g_lock);
    return a != NULL;
}

int graph_mem_launch_alloc(const void *ptr) {
    pthread_mutex_lock(&g_lock);
    struct graph_alloc *a = find_locked(ptr);
    int ok = a != NULL;
    if (a && !a->committed && revati_device_commit(a->addr, 1) == 0) {
        a->committed = 1;
        count_locked(a, 0, (int64_t)a->size);
    }
    if (a && a->committed && !a->live) {
        a->live = 1;
        count_locked(a, (int64_t)a->size, 0);
    }
    if (a && !a->committed) ok = 0; /* the device is full: the allocation has no bytes */
    pthread_mutex_unlock(&g_lock);
    return ok;
}

int graph_mem_free(const void *ptr) {
    pthread_mutex_lock(&g_lock);
    struct graph_alloc *a = find_locked(ptr);
    if (a && a->live) {
        a->live = 0;
        count_locked(a, -(int64_t)a->size, 0);
    }
    pthread_mutex_unlock(&g_lock);
    return a != NULL;
}

/* ---- cudaDeviceGraphMemTrim and the device's graph-memory attributes ------------------------ */

static uint64_t trim(int device) {
    uint64_t released = 0;
    pthread_mutex_lock(&g_lock);
    for (struct graph_alloc *a = g_allocs; a; a = a->next) {
        if (a->device != device || a->live || !a->committed) continue;
        if (revati_device_commit(a->addr, 0) != 0) continue;
        a->committed = 0;
        count_locked(a, 0, -(int64_t)a->size);
        released += a->size;
    }
    pthread_mutex_unlock(&g_lock);
    return released;
}

static int valid_device(int d) { return d >= 0 && d < g_cfg.device_count && d < REVATI_MAX_DEVICES; }

API cudaDeviceGraphMemTrim(int device) {
    revati_ensure_init();
    if (!valid_device(device)) return revati_ret(cudaErrorInvalidDevice);
    int64_t enter = revati_now();
    uint64_t released = trim(device);
    int64_t exit = revati_charge(COST_OTHER, enter);
    revati_emit(REC_API, 0, FN_cudaDeviceGraphMemTrim, 0, enter, exit, (uint64_t)device, released,
                g_count[device].reserved, 0);
    return cudaSuccess;
}

API cudaDeviceGetGraphMemAttribute(int device, int attr, void *value) {
    revati_ensure_init();
    if (!valid_device(device)) return revati_ret(cudaErrorInvalidDevice);
    if (!value || attr < ATTR_USED_CURRENT || attr > ATTR_RESERVED_HIGH) return revati_ret(cudaErrorInvalidValue);
    pthread_mutex_lock(&g_lock);
    const struct graph_mem_counters *c = &g_count[device];
    const uint64_t v[] = {c->used, c->used_high, c->reserved, c->reserved_high};
    *(uint64_t *)value = v[attr];
    pthread_mutex_unlock(&g_lock);
    return cudaSuccess;
}

/* Only the high-water marks can be set, and only to 0 (they restart from the current value). */
API cudaDeviceSetGraphMemAttribute(int device, int attr, void *value) {
    revati_ensure_init();
    if (!valid_device(device)) return revati_ret(cudaErrorInvalidDevice);
    if (!value || *(const uint64_t *)value || (attr != ATTR_USED_HIGH && attr != ATTR_RESERVED_HIGH))
        return revati_ret(cudaErrorInvalidValue);
    pthread_mutex_lock(&g_lock);
    struct graph_mem_counters *c = &g_count[device];
    if (attr == ATTR_USED_HIGH) c->used_high = c->used;
    else c->reserved_high = c->reserved;
    pthread_mutex_unlock(&g_lock);
    return cudaSuccess;
}
