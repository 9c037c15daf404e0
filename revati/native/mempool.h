/* Memory pools and stream-ordered allocation (mempool.c, mempool_ipc.c). */
#ifndef REVATI_MEMPOOL_H
#define REVATI_MEMPOOL_H

#include <pthread.h>

#include "cuda_types.h"
#include "shim_internal.h"

#define POOL_MAGIC 0x504f4f4cu
enum { LOCATION_DEVICE = 1 };          /* cudaMemLocationTypeDevice */
enum { ACCESS_READ_WRITE = 3 };        /* cudaMemAccessFlagsProtReadWrite */
struct mem_location { int type, id; }; /* struct cudaMemLocation */

/* One reservation of a pool: a device allocation (memory.c) handed out whole, kept when freed. */
struct pool_block {
    uint8_t *addr;
    uint64_t size;        /* rounded, what the pool counts */
    uint64_t file_offset; /* export-capable pools: where its bytes are in the pool's file */
    int backed;
    int in_use;
    int64_t free_stream;  /* stream ref of the cudaFreeAsync that returned it */
    uint64_t free_epoch;  /* synchronisations seen when it was returned */
    struct pool_block *next;
};

struct revati_mempool {
    uint32_t magic;
    uint32_t id;              /* the trace's name for it: pool=<id> */
    int device;
    int is_default;
    int imported;             /* a handle from another process: maps its pointers, owns no block */
    int destroyed;            /* cudaMemPoolDestroy with allocations outstanding */
    int handle_types;         /* cudaMemAllocationHandleType bits it can export */
    uint64_t max_size;        /* 0: the device's capacity */
    uint64_t release_threshold;
    int reuse_follow_event_deps, reuse_opportunistic, reuse_internal_deps;
    uint64_t reserved, reserved_high, used, used_high;
    int access[REVATI_MAX_DEVICES]; /* cudaMemAccessFlags, per device */
    int fd;                   /* the memfd behind an export-capable or imported pool, else -1 */
    uint64_t file_size;
    struct pool_block *blocks;
    struct revati_mempool *next; /* every pool of the process */
};

extern pthread_mutex_t g_pool_lock;

/* Pool handle check (caller holds g_pool_lock); NULL if not a live pool. */
struct revati_mempool *pool_of(void *handle);
/* The block of a pool that starts at ptr, in use or not (caller holds g_pool_lock). */
struct pool_block *pool_block_at(struct revati_mempool *p, const void *ptr);

/* The pool whose block starts at ptr, and the block (caller holds g_pool_lock); NULL if none. */
struct revati_mempool *pool_owning(const void *ptr, struct pool_block **block);

/* A synchronising call returned: pools give back memory above their release threshold. */
void revati_mempool_synchronized(void);
/* cudaFree of a pointer a pool handed out: 1 if it was one (*rc says how it went), else 0. */
int revati_mempool_free_sync(void *ptr, cudaError_t *rc);

/* Give back unused blocks until at most `keep` bytes stay reserved; returns the bytes released. */
uint64_t pool_trim_locked(struct revati_mempool *p, uint64_t keep);
int pool_valid_device(int device);
/* The trace's name of a pool (0: none). */
uint64_t pool_id(const struct revati_mempool *p);

/* A plain API record (REC_API) with the host cost of COST_OTHER; `enter` from revati_now(). */
void pool_api_record(uint16_t fn, cudaError_t rc, int64_t enter, uint64_t a, uint64_t b, uint64_t c, uint64_t d);

/* A new pool on device (caller holds g_pool_lock); NULL when out of memory. */
struct revati_mempool *pool_new_locked(int device, int handle_types, uint64_t max_size);

/* IPC (mempool_ipc.c). An export-capable pool keeps its blocks' bytes in a memfd that other
 * processes of the run map; imported pointers are freed like pool allocations. */
int revati_mempool_free_imported(void *ptr);
int pool_file_open(struct revati_mempool *p);
int pool_file_grow(struct revati_mempool *p, uint64_t size, uint64_t *offset);
void pool_file_release(struct revati_mempool *p, const struct pool_block *b);
void pool_file_close(struct revati_mempool *p);

#endif
