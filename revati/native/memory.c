/*
 * Device memory (docs/design.md §4): one reserved address range; small allocations are backed (real
 * bytes), large ones are virtual (no bytes: copies out of them read zeros). Capacity is counted
 * on the clock page per virtual device, so it holds across processes.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "memory.h"

#define RESERVE_BYTES (1ULL << 44) /* 16 TiB of address space, never committed up front */
#define ALIGN 512ULL

static uint8_t *g_base;
static uint64_t g_bump;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct revati_alloc *g_allocs; /* sorted by address (bump order) */
static size_t g_count, g_cap;
static int64_t g_local_used[REVATI_MAX_DEVICES];

void revati_memory_init(void) {
    void *p = mmap(NULL, RESERVE_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    g_base = p == MAP_FAILED ? NULL : p;
}

/* Take (bytes > 0) or give back capacity of a logical device; 0 when the device is full. */
int revati_capacity_take(int device, int64_t bytes) {
    device = revati_physical_device(device);
    if (g_page) return revati_page_mem_reserve(g_page, device, bytes) >= 0;
    int64_t cap = g_cfg.dev.memory_bytes;
    int64_t used = __atomic_add_fetch(&g_local_used[device], bytes, __ATOMIC_ACQ_REL);
    if (bytes > 0 && used > cap) {
        __atomic_sub_fetch(&g_local_used[device], bytes, __ATOMIC_ACQ_REL);
        return 0;
    }
    return 1;
}

/* Use and capacity of a device of the node (not a visible ordinal: NVML counts so). */
void revati_node_memory(int physical, int64_t *used, int64_t *capacity) {
    *used = *capacity = 0;
    if (physical < 0 || physical >= REVATI_MAX_DEVICES) return;
    *used = g_page ? __atomic_load_n(&g_page->mem_used[physical], __ATOMIC_ACQUIRE)
                   : __atomic_load_n(&g_local_used[physical], __ATOMIC_ACQUIRE);
    *capacity = g_page && g_page->mem_capacity[physical] > 0 ? g_page->mem_capacity[physical] : g_cfg.dev.memory_bytes;
}

int64_t revati_memory_used(int device) {
    int64_t used, capacity;
    revati_node_memory(revati_physical_device(device), &used, &capacity);
    return used;
}

int64_t revati_memory_capacity(int device) {
    int64_t used, capacity;
    revati_node_memory(revati_physical_device(device), &used, &capacity);
    return capacity;
}

static int push_alloc(const struct revati_alloc *a) {
    if (g_count == g_cap) {
        size_t cap = g_cap ? g_cap * 2 : 1024;
        void *n = realloc(g_allocs, cap * sizeof *g_allocs);
        if (!n) return -1;
        g_allocs = n;
        g_cap = cap;
    }
    g_allocs[g_count++] = *a;
    return 0;
}

/* Map `size` bytes of fd at offset over [ptr, ptr + size): the range's bytes become shared. */
static int map_shared(uint8_t *ptr, uint64_t size, int fd, uint64_t offset) {
    void *m = mmap(ptr, (size + 4095) & ~4095ULL, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, (off_t)offset);
    return m == (void *)ptr ? 0 : -1;
}

static void *alloc_range(size_t bytes, int device, int kind, int fd, uint64_t offset, int counted, int *backed) {
    if (!g_base || device < 0 || device >= REVATI_MAX_DEVICES) return NULL;
    uint64_t size = (bytes + ALIGN - 1) & ~(ALIGN - 1);
    if (size == 0) size = ALIGN;
    if (counted && !revati_capacity_take(device, (int64_t)size)) return NULL;
    int b = kind == ALLOC_MANAGED || (int64_t)bytes <= g_cfg.backed_max;
    pthread_mutex_lock(&g_lock);
    uint64_t off = g_bump;
    if (b) off = (off + 4095) & ~4095ULL; /* backed: whole pages */
    if (off + size > RESERVE_BYTES) {
        pthread_mutex_unlock(&g_lock);
        if (counted) revati_capacity_take(device, -(int64_t)size);
        return NULL;
    }
    g_bump = off + size;
    uint8_t *ptr = g_base + off;
    if (b && fd >= 0) b = map_shared(ptr, size, fd, offset) == 0;
    else if (b && mprotect(ptr, (size + 4095) & ~4095ULL, PROT_READ | PROT_WRITE) != 0) b = 0;
    struct revati_alloc a = {.addr = ptr, .bytes = size, .device = device, .kind = kind, .backed = b, .live = 1,
                             .uncounted = !counted};
    push_alloc(&a);
    pthread_mutex_unlock(&g_lock);
    *backed = b;
    return ptr;
}

void *revati_device_alloc(size_t bytes, int device, int kind, int *backed) {
    return alloc_range(bytes, device, kind, -1, 0, 1, backed);
}

void *revati_device_alloc_shared(size_t bytes, int device, int fd, uint64_t offset, int counted, int *backed) {
    return alloc_range(bytes, device, ALLOC_DEVICE, fd, offset, counted, backed);
}

/* First entry that ends after p (entries are sorted by address and do not overlap). */
static size_t lower_bound_locked(const uint8_t *p) {
    size_t lo = 0, hi = g_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (g_allocs[mid].addr + g_allocs[mid].bytes <= p) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Allocation holding ptr (live only), or NULL. Caller holds g_lock. */
static struct revati_alloc *find_locked(const void *ptr) {
    const uint8_t *p = ptr;
    size_t lo = lower_bound_locked(p);
    if (lo < g_count && g_allocs[lo].addr <= p && g_allocs[lo].live) return &g_allocs[lo];
    return NULL;
}

int revati_device_lookup(const void *ptr, struct revati_alloc *out) {
    if (!revati_is_device_range(ptr)) return 0;
    pthread_mutex_lock(&g_lock);
    struct revati_alloc *a = find_locked(ptr);
    if (a) *out = *a;
    pthread_mutex_unlock(&g_lock);
    return a != NULL;
}

int revati_is_device_range(const void *ptr) {
    const uint8_t *p = ptr;
    return g_base && p >= g_base && p < g_base + RESERVE_BYTES;
}

int revati_device_free(void *ptr, struct revati_alloc *out) {
    pthread_mutex_lock(&g_lock);
    struct revati_alloc *a = find_locked(ptr);
    if (!a || a->addr != ptr) {
        pthread_mutex_unlock(&g_lock);
        return -1;
    }
    a->live = 0;
    *out = *a;
    pthread_mutex_unlock(&g_lock);
    if (out->backed) { /* a shared mapping becomes private and inaccessible again */
        size_t len = (out->bytes + 4095) & ~4095ULL;
        mmap(out->addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    }
    if (!out->uncounted) revati_capacity_take(out->device, -(int64_t)out->bytes);
    revati_ipc_forget(out->addr);
    return 0;
}

int revati_device_commit(void *ptr, int commit) {
    pthread_mutex_lock(&g_lock);
    struct revati_alloc *a = find_locked(ptr);
    struct revati_alloc copy = a && a->addr == ptr ? *a : (struct revati_alloc){0};
    pthread_mutex_unlock(&g_lock);
    if (!copy.addr) return -1;
    if (commit == !copy.uncounted) return 0;
    if (commit && !revati_capacity_take(copy.device, (int64_t)copy.bytes)) return -1;
    if (!commit) {
        if (copy.backed) madvise(copy.addr, (copy.bytes + 4095) & ~4095ULL, MADV_DONTNEED);
        revati_capacity_take(copy.device, -(int64_t)copy.bytes);
    }
    pthread_mutex_lock(&g_lock);
    if ((a = find_locked(ptr))) a->uncounted = !commit;
    pthread_mutex_unlock(&g_lock);
    return 0;
}

/* ---- virtual-memory management: address ranges, and handles mapped into them ---------------- */

/* A range of device addresses with nothing behind it until something is mapped there. */
void *revati_address_reserve(size_t bytes, size_t align) {
    if (!g_base || !bytes) return NULL;
    if (align < 4096) align = 4096;
    pthread_mutex_lock(&g_lock);
    uint64_t off = (g_bump + align - 1) & ~(uint64_t)(align - 1);
    if (off + bytes > RESERVE_BYTES) {
        pthread_mutex_unlock(&g_lock);
        return NULL;
    }
    g_bump = off + bytes;
    pthread_mutex_unlock(&g_lock);
    return g_base + off;
}

/* Make [addr, addr + bytes) of a reserved range an allocation of `device` (backed: real bytes). */
int revati_device_map(void *addr, uint64_t bytes, int device, int backed) {
    uint8_t *p = addr;
    if (!revati_is_device_range(p) || !revati_is_device_range(p + bytes - 1)) return -1;
    if (backed && mprotect(p, (bytes + 4095) & ~4095ULL, PROT_READ | PROT_WRITE) != 0) backed = 0;
    struct revati_alloc a = {.addr = p, .bytes = bytes, .device = device, .kind = ALLOC_DEVICE, .backed = backed, .live = 1};
    pthread_mutex_lock(&g_lock);
    size_t at = lower_bound_locked(p);
    if ((at < g_count && g_allocs[at].addr < p + bytes && g_allocs[at].live) || push_alloc(&a) != 0) {
        pthread_mutex_unlock(&g_lock);
        return -1;
    }
    memmove(&g_allocs[at + 1], &g_allocs[at], (g_count - 1 - at) * sizeof *g_allocs);
    g_allocs[at] = a;
    pthread_mutex_unlock(&g_lock);
    return 0;
}

/* Undo revati_device_map for the mapping that starts at addr; returns 0 if there was one. */
int revati_device_unmap(void *addr, struct revati_alloc *out) {
    pthread_mutex_lock(&g_lock);
    size_t at = lower_bound_locked(addr);
    if (at >= g_count || g_allocs[at].addr != addr || !g_allocs[at].live) {
        pthread_mutex_unlock(&g_lock);
        return -1;
    }
    *out = g_allocs[at];
    memmove(&g_allocs[at], &g_allocs[at + 1], (g_count - at - 1) * sizeof *g_allocs);
    g_count--;
    pthread_mutex_unlock(&g_lock);
    if (out->backed) {
        size_t len = (out->bytes + 4095) & ~4095ULL;
        madvise(out->addr, len, MADV_DONTNEED);
        mprotect(out->addr, len, PROT_NONE);
    }
    return 0;
}

/* Classify one side of a copy: 0 host, 1 backed device, 2 virtual device, 3 unknown device. */
static int side(const void *p, int64_t *room) {
    struct revati_alloc a;
    if (!revati_is_device_range(p)) return 0;
    if (!revati_device_lookup(p, &a)) return 3;
    *room = (int64_t)(a.addr + a.bytes - (const uint8_t *)p);
    return a.backed ? 1 : 2;
}

int revati_copy_bytes(void *dst, const void *src, size_t n, int *moved, int *kind) {
    int64_t droom = INT64_MAX, sroom = INT64_MAX;
    int d = side(dst, &droom), s = side(src, &sroom);
    *moved = 0;
    *kind = (s ? 2 : 0) + (d ? 1 : 0); /* 0 HtoH, 1 HtoD, 2 DtoH, 3 DtoD */
    if (d == 3 || s == 3) return cudaErrorInvalidValue;
    if ((int64_t)n > droom || (int64_t)n > sroom) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    if (!dst || !src) return cudaErrorInvalidValue; /* a NULL host side: refused, as CUDA does */
    if (d == 2) return cudaSuccess;             /* virtual destination: timed, no data */
    if (s == 2) { memset(dst, 0, n); *moved = 1; return cudaSuccess; } /* virtual source reads zeros */
    memmove(dst, src, n);
    *moved = 1;
    return cudaSuccess;
}

int revati_set_bytes(void *dst, int value, size_t n, int *moved) {
    int64_t room = INT64_MAX;
    int d = side(dst, &room);
    *moved = 0;
    if (d == 3 || (int64_t)n > room) return cudaErrorInvalidValue;
    if (d == 2 || n == 0) return cudaSuccess;
    if (!dst) return cudaErrorInvalidValue;
    memset(dst, value, n);
    *moved = 1;
    return cudaSuccess;
}

/* A fill of `bytes` with `size`-byte elements (1, 2 or 4) of `value`. */
int revati_fill(void *dst, uint32_t value, unsigned int size, size_t bytes, int *moved) {
    if (size <= 1) return revati_set_bytes(dst, (int)(value & 0xff), bytes, moved);
    int64_t room = INT64_MAX;
    int d = side(dst, &room);
    *moved = 0;
    if (d == 3 || (int64_t)bytes > room) return cudaErrorInvalidValue;
    if (d == 2 || bytes == 0) return cudaSuccess;
    for (size_t off = 0; off + size <= bytes; off += size) memcpy((uint8_t *)dst + off, &value, size);
    *moved = 1;
    return cudaSuccess;
}

/* ---- pinned host memory -------------------------------------------------------------------- */

struct host_block { void *ptr; size_t bytes; int registered; struct host_block *next; };
static struct host_block *g_host;

void revati_host_track(void *ptr, size_t bytes, int registered) {
    struct host_block *b = malloc(sizeof *b);
    if (!b) return;
    *b = (struct host_block){ptr, bytes, registered, NULL};
    pthread_mutex_lock(&g_lock);
    b->next = g_host;
    g_host = b;
    pthread_mutex_unlock(&g_lock);
}

int revati_host_untrack(void *ptr, size_t *bytes) {
    pthread_mutex_lock(&g_lock);
    for (struct host_block **pp = &g_host; *pp; pp = &(*pp)->next) {
        if ((*pp)->ptr == ptr) {
            struct host_block *b = *pp;
            *pp = b->next;
            pthread_mutex_unlock(&g_lock);
            *bytes = b->bytes;
            free(b);
            return 0;
        }
    }
    pthread_mutex_unlock(&g_lock);
    return -1;
}

int revati_host_lookup(const void *ptr) {
    const uint8_t *p = ptr;
    int found = 0;
    pthread_mutex_lock(&g_lock);
    for (struct host_block *b = g_host; b; b = b->next)
        if (p >= (uint8_t *)b->ptr && p < (uint8_t *)b->ptr + b->bytes) found = 1;
    pthread_mutex_unlock(&g_lock);
    return found;
}
