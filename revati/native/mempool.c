/*
 * Memory pools and stream-ordered allocation, emulated.
 *
 * A pool hands out blocks: device allocations of memory.c, so they count against the device's
 * capacity (cudaMemGetInfo sees a pool's reserved memory as used, as on a GPU). cudaFreeAsync
 * returns a block to its pool, which keeps it (reserved) for later allocations:
 * - on the stream that freed it, at once (stream order makes it safe);
 * - on any other stream once a synchronising call (stream, event or device synchronize) has
 *   returned since the free. revati does not insert the cross-stream dependencies a GPU's
 *   driver may add (cudaMemPoolReuseAllowInternalDependencies, ...): the reuse flags are kept
 *   and answered back but never widen reuse.
 * At every synchronising call a pool returns unused blocks to the device until its reserved
 * memory is at most its release threshold (default 0); cudaMemPoolTrimTo does the same on demand.
 * A block is reused for a request of at most its size and at least half of it, and only if
 * both are backed (real bytes) or both virtual (docs/design.md §4).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "graph_mem.h"
#include "memory.h"
#include "mempool.h"
#include "objects.h"

#define API REVATI_EXPORT cudaError_t
#define ALIGN 512ULL

enum { ALLOC_TYPE_PINNED = 1 };

struct mem_pool_props {
    int alloc_type, handle_types;
    struct mem_location location;
    void *win32_security_attributes;
    size_t max_size;
    unsigned short usage;
    unsigned char reserved[54];
};

pthread_mutex_t g_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct revati_mempool *g_pools;
static struct revati_mempool *g_current[REVATI_MAX_DEVICES];
static struct revati_mempool *g_default[REVATI_MAX_DEVICES];
static uint32_t g_next_id = 1;
static uint64_t g_sync_epoch;

uint64_t pool_id(const struct revati_mempool *p) { return p ? p->id : 0; }

void pool_api_record(uint16_t fn, cudaError_t rc, int64_t enter, uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    int64_t exit = revati_charge(COST_OTHER, enter);
    revati_emit(REC_API, 0, fn, rc, enter, exit, a, b, c, d);
}

struct revati_mempool *pool_new_locked(int device, int handle_types, uint64_t max_size) {
    struct revati_mempool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->magic = POOL_MAGIC;
    p->id = g_next_id++;
    p->device = device;
    p->handle_types = handle_types;
    p->max_size = max_size;
    p->reuse_follow_event_deps = p->reuse_opportunistic = p->reuse_internal_deps = 1;
    p->access[device] = ACCESS_READ_WRITE;
    p->fd = -1;
    p->next = g_pools;
    g_pools = p;
    return p;
}

struct revati_mempool *pool_of(void *handle) {
    for (struct revati_mempool *p = g_pools; p; p = p->next)
        if (p == handle) return p->magic == POOL_MAGIC && !p->destroyed ? p : NULL;
    return NULL;
}

static struct revati_mempool *default_pool_locked(int device) {
    if (!g_default[device]) {
        g_default[device] = pool_new_locked(device, 0, 0);
        if (g_default[device]) g_default[device]->is_default = 1;
    }
    return g_default[device];
}

static struct revati_mempool *current_pool_locked(int device) {
    return g_current[device] ? g_current[device] : default_pool_locked(device);
}

struct pool_block *pool_block_at(struct revati_mempool *p, const void *ptr) {
    for (struct pool_block *b = p->blocks; b; b = b->next)
        if (b->addr == ptr) return b;
    return NULL;
}

/* ---- blocks -------------------------------------------------------------------------------- */

static void release_block_locked(struct revati_mempool *p, struct pool_block **link) {
    struct pool_block *b = *link;
    struct revati_alloc a;
    revati_device_free(b->addr, &a);
    if (p->fd >= 0) pool_file_release(p, b);
    p->reserved -= b->size;
    *link = b->next;
    free(b);
}

/* Give back unused blocks until at most `keep` bytes stay reserved; returns the bytes released. */
uint64_t pool_trim_locked(struct revati_mempool *p, uint64_t keep) {
    uint64_t before = p->reserved;
    for (struct pool_block **link = &p->blocks; *link && p->reserved > keep;) {
        if ((*link)->in_use) link = &(*link)->next;
        else release_block_locked(p, link);
    }
    return before - p->reserved;
}

static struct pool_block *reserve_block_locked(struct revati_mempool *p, uint64_t size) {
    uint64_t capacity = p->max_size ? p->max_size : (uint64_t)revati_memory_capacity(p->device);
    if (p->reserved + size > capacity) return NULL;
    struct pool_block *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    int fd = -1;
    if (p->handle_types && pool_file_grow(p, size, &b->file_offset) == 0) fd = p->fd;
    b->addr = revati_device_alloc_shared(size, p->device, fd, b->file_offset, 1, &b->backed);
    if (!b->addr) {
        free(b);
        return NULL;
    }
    b->size = size;
    b->next = p->blocks;
    p->blocks = b;
    p->reserved += size;
    if (p->reserved > p->reserved_high) p->reserved_high = p->reserved;
    return b;
}

static int reusable(const struct pool_block *b, uint64_t size, int backed, int64_t stream) {
    if (b->in_use || b->size < size || b->size / 2 > size) return 0;
    if (b->backed != backed) return 0;
    return b->free_stream == stream || b->free_epoch < g_sync_epoch;
}

static struct pool_block *take_block_locked(struct revati_mempool *p, size_t bytes, int64_t stream) {
    uint64_t size = bytes ? (bytes + ALIGN - 1) & ~(ALIGN - 1) : ALIGN;
    int backed = (int64_t)size <= g_cfg.backed_max; /* as memory.c decides for the block */
    struct pool_block *best = NULL;
    for (struct pool_block *b = p->blocks; b; b = b->next)
        if (reusable(b, size, backed, stream) && (!best || b->size < best->size)) best = b;
    if (!best) best = reserve_block_locked(p, size);
    if (!best && pool_trim_locked(p, 0)) best = reserve_block_locked(p, size); /* out of memory: retry */
    if (!best) return NULL;
    best->in_use = 1;
    p->used += best->size;
    if (p->used > p->used_high) p->used_high = p->used;
    return best;
}

struct revati_mempool *pool_owning(const void *ptr, struct pool_block **block) {
    for (struct revati_mempool *p = g_pools; p; p = p->next) {
        struct pool_block *b = p->magic == POOL_MAGIC ? pool_block_at(p, ptr) : NULL;
        if (b) {
            *block = b;
            return p;
        }
    }
    return NULL;
}

/* Return a block to its pool; 0 if ptr is no pool's allocation in use. */
static int put_block_locked(void *ptr, int64_t stream) {
    struct pool_block *b;
    struct revati_mempool *p = pool_owning(ptr, &b);
    if (p && b->in_use) {
        b->in_use = 0;
        b->free_stream = stream;
        b->free_epoch = g_sync_epoch;
        p->used -= b->size;
        if (p->destroyed) pool_trim_locked(p, 0);
        if (p->destroyed && !p->blocks) pool_file_close(p);
        return 1;
    }
    return 0;
}

void revati_mempool_synchronized(void) {
    pthread_mutex_lock(&g_pool_lock);
    g_sync_epoch++;
    for (struct revati_mempool *p = g_pools; p; p = p->next)
        if (p->magic == POOL_MAGIC && p->reserved > p->release_threshold) pool_trim_locked(p, p->release_threshold);
    pthread_mutex_unlock(&g_pool_lock);
}

/* ---- stream-ordered allocation ------------------------------------------------------------- */

/* Stream-ordered calls on a capturing stream become memory nodes of its graph (graph_nodes.c). */
static cudaError_t capture_alloc(void **out, size_t bytes, int device, struct revati_stream *obj) {
    int64_t enter = revati_now();
    void *ptr = graph_mem_create(bytes, device);
    struct graph_node n = {.type = NODE_MEM_ALLOC, .dst = ptr, .bytes = bytes, .value = device};
    cudaError_t rc = !ptr ? cudaErrorMemoryAllocation : capture_append(obj, &n) ? cudaErrorMemoryAllocation : cudaSuccess;
    *out = rc ? NULL : ptr;
    pool_api_record(FN_cudaMallocAsync, rc, enter, (uint64_t)(uintptr_t)*out, bytes, (uint64_t)device, 0);
    return rc;
}

static cudaError_t capture_free(void *ptr, struct revati_stream *obj) {
    int64_t enter = revati_now();
    uint64_t size;
    int device;
    struct graph_node n = {.type = NODE_MEM_FREE, .dst = ptr};
    cudaError_t rc = !graph_mem_size(ptr, &size, &device) ? cudaErrorInvalidValue /* only graph memory */
                     : capture_append(obj, &n)            ? cudaErrorMemoryAllocation
                                                          : cudaSuccess;
    pool_api_record(FN_cudaFreeAsync, rc, enter, (uint64_t)(uintptr_t)ptr, 0, 0, 0);
    return rc;
}

static cudaError_t malloc_async(void **out, size_t bytes, void *handle, cudaStream_t s, int per_thread, uint16_t fn) {
    revati_ensure_init();
    if (!out) return cudaErrorInvalidValue;
    struct revati_stream *obj;
    int64_t ref = revati_stream_ref(s, per_thread, &obj);
    if (ref < 0) return cudaErrorInvalidResourceHandle;
    int device = obj ? obj->device : revati_current_device();
    if (obj && obj->capture) return capture_alloc(out, bytes, device, obj);
    int64_t enter = revati_now();
    pthread_mutex_lock(&g_pool_lock);
    struct revati_mempool *p = handle ? pool_of(handle) : current_pool_locked(device);
    cudaError_t rc = !p || p->imported ? cudaErrorInvalidValue : cudaSuccess;
    struct pool_block *b = rc || !bytes ? NULL : take_block_locked(p, bytes, ref);
    if (!rc && bytes && !b) rc = cudaErrorMemoryAllocation;
    pthread_mutex_unlock(&g_pool_lock);
    *out = b ? b->addr : NULL;
    int64_t exit = revati_charge(COST_ALLOC, enter);
    uint8_t kind = (uint8_t)(ALLOC_DEVICE | (b && b->backed ? REC_F_BACKED : 0) | (rc ? ALLOC_FAILED : 0));
    revati_emit(REC_ALLOC, kind, fn, rc, enter, exit, (uint64_t)(uintptr_t)*out, bytes,
                (uint64_t)(p ? p->device : device), pool_id(p));
    return rc;
}

static cudaError_t free_async(void *ptr, cudaStream_t s, int per_thread) {
    revati_ensure_init();
    struct revati_stream *obj;
    int64_t ref = revati_stream_ref(s, per_thread, &obj);
    if (ref < 0) return cudaErrorInvalidResourceHandle;
    if (!ptr) return cudaSuccess;
    if (obj && obj->capture) return capture_free(ptr, obj);
    int64_t enter = revati_now();
    pthread_mutex_lock(&g_pool_lock);
    int found = put_block_locked(ptr, ref);
    pthread_mutex_unlock(&g_pool_lock);
    cudaError_t rc = cudaSuccess;
    if (!found) found = graph_mem_free(ptr) || revati_mempool_free_imported(ptr);
    if (!found) { /* cudaMalloc memory may be freed so too */
        struct revati_alloc a;
        rc = revati_device_free(ptr, &a) == 0 ? cudaSuccess : cudaErrorInvalidValue;
    }
    int64_t exit = revati_charge(COST_ALLOC, enter);
    revati_emit(REC_FREE, 0, FN_cudaFreeAsync, rc, enter, exit, (uint64_t)(uintptr_t)ptr, 0, 0, 0);
    return rc;
}

int revati_mempool_free_sync(void *ptr, cudaError_t *rc) {
    pthread_mutex_lock(&g_pool_lock);
    int found = put_block_locked(ptr, 0);
    pthread_mutex_unlock(&g_pool_lock);
    if (!found) found = graph_mem_free(ptr) || revati_mempool_free_imported(ptr);
    *rc = cudaSuccess;
    return found;
}

API cudaMallocAsync(void **p, size_t n, cudaStream_t s) { return revati_ret(malloc_async(p, n, NULL, s, 0, FN_cudaMallocAsync)); }
API cudaMallocAsync_ptsz(void **p, size_t n, cudaStream_t s) { return revati_ret(malloc_async(p, n, NULL, s, 1, FN_cudaMallocAsync)); }
API cudaMallocFromPoolAsync(void **p, size_t n, void *pool, cudaStream_t s) {
    return revati_ret(pool ? malloc_async(p, n, pool, s, 0, FN_cudaMallocFromPoolAsync) : cudaErrorInvalidValue);
}
API cudaMallocFromPoolAsync_ptsz(void **p, size_t n, void *pool, cudaStream_t s) {
    return revati_ret(pool ? malloc_async(p, n, pool, s, 1, FN_cudaMallocFromPoolAsync) : cudaErrorInvalidValue);
}
API cudaFreeAsync(void *p, cudaStream_t s) { return revati_ret(free_async(p, s, 0)); }
API cudaFreeAsync_ptsz(void *p, cudaStream_t s) { return revati_ret(free_async(p, s, 1)); }

/* ---- pools --------------------------------------------------------------------------------- */

int pool_valid_device(int d) { return d >= 0 && d < g_cfg.device_count && d < REVATI_MAX_DEVICES; }

static cudaError_t pool_create(void **out, const struct mem_pool_props *props) {
    revati_ensure_init();
    if (!out || !props || props->alloc_type != ALLOC_TYPE_PINNED) return cudaErrorInvalidValue;
    if (props->location.type != LOCATION_DEVICE) return cudaErrorNotSupported; /* host pools: no */
    if (!pool_valid_device(props->location.id)) return cudaErrorInvalidDevice;
    if (props->handle_types & ~1) return cudaErrorNotSupported; /* only POSIX file descriptors */
    int64_t enter = revati_now();
    pthread_mutex_lock(&g_pool_lock);
    struct revati_mempool *p = pool_new_locked(props->location.id, props->handle_types, props->max_size);
    if (p && props->handle_types && pool_file_open(p) != 0) p->magic = 0, p = NULL;
    pthread_mutex_unlock(&g_pool_lock);
    *out = p;
    cudaError_t rc = p ? cudaSuccess : cudaErrorMemoryAllocation;
    pool_api_record(FN_cudaMemPoolCreate, rc, enter, pool_id(p), (uint64_t)props->location.id, props->max_size,
               (uint64_t)props->handle_types);
    return rc;
}
API cudaMemPoolCreate(void **out, const struct mem_pool_props *props) { return revati_ret(pool_create(out, props)); }

static cudaError_t pool_destroy(void *handle) {
    int64_t enter = revati_now();
    pthread_mutex_lock(&g_pool_lock);
    struct revati_mempool *p = pool_of(handle);
    cudaError_t rc = !p || p->is_default ? cudaErrorInvalidValue : cudaSuccess;
    uint64_t id = pool_id(p);
    if (!rc) {
        for (int d = 0; d < REVATI_MAX_DEVICES; d++)
            if (g_current[d] == p) g_current[d] = NULL;
        pool_trim_locked(p, 0);
        p->destroyed = 1; /* blocks still in use go back to the device when freed */
        if (!p->blocks) pool_file_close(p);
    }
    pthread_mutex_unlock(&g_pool_lock);
    pool_api_record(FN_cudaMemPoolDestroy, rc, enter, id, 0, 0, 0);
    return rc;
}
API cudaMemPoolDestroy(void *handle) { return revati_ret(pool_destroy(handle)); }

static cudaError_t device_pool(void **out, int device, int current) {
    revati_ensure_init();
    if (!out) return cudaErrorInvalidValue;
    if (!pool_valid_device(device)) return cudaErrorInvalidDevice;
    pthread_mutex_lock(&g_pool_lock);
    *out = current ? current_pool_locked(device) : default_pool_locked(device);
    pthread_mutex_unlock(&g_pool_lock);
    return *out ? cudaSuccess : cudaErrorMemoryAllocation;
}
API cudaDeviceGetDefaultMemPool(void **out, int device) { return revati_ret(device_pool(out, device, 0)); }
API cudaDeviceGetMemPool(void **out, int device) { return revati_ret(device_pool(out, device, 1)); }

static cudaError_t device_set_pool(int device, void *handle) {
    revati_ensure_init();
    if (!pool_valid_device(device)) return cudaErrorInvalidDevice;
    int64_t enter = revati_now();
    pthread_mutex_lock(&g_pool_lock);
    struct revati_mempool *p = pool_of(handle);
    cudaError_t rc = !p || p->imported || p->device != device ? cudaErrorInvalidValue : cudaSuccess;
    if (!rc) g_current[device] = p;
    pthread_mutex_unlock(&g_pool_lock);
    pool_api_record(FN_cudaDeviceSetMemPool, rc, enter, (uint64_t)device, pool_id(p), 0, 0);
    return rc;
}
API cudaDeviceSetMemPool(int device, void *handle) { return revati_ret(device_set_pool(device, handle)); }

/* CUDA 13's location-based forms: device locations with pinned memory only. */
static cudaError_t location_device(const struct mem_location *loc, int type, int *device) {
    if (!loc || type != ALLOC_TYPE_PINNED) return cudaErrorInvalidValue;
    if (loc->type != LOCATION_DEVICE) return cudaErrorNotSupported;
    *device = loc->id;
    return cudaSuccess;
}
API cudaMemGetDefaultMemPool(void **out, struct mem_location *loc, int type) {
    int d;
    cudaError_t rc = location_device(loc, type, &d);
    return rc ? revati_ret(rc) : cudaDeviceGetDefaultMemPool(out, d);
}
API cudaMemGetMemPool(void **out, struct mem_location *loc, int type) {
    int d;
    cudaError_t rc = location_device(loc, type, &d);
    return rc ? revati_ret(rc) : cudaDeviceGetMemPool(out, d);
}
API cudaMemSetMemPool(struct mem_location *loc, int type, void *pool) {
    int d;
    cudaError_t rc = location_device(loc, type, &d);
    return rc ? revati_ret(rc) : cudaDeviceSetMemPool(d, pool);
}
