/*
 * Kernel registration and launch (the CUDA 13 __cudaGetKernel/__cudaLaunchKernel path and the
 * legacy push/pop + cudaLaunchKernel path), function attributes and occupancy. A launch is the
 * hot path: a lookup-free handle, one clock read, one ring record. Captured launches become
 * graph nodes (capture.c); graphs are in graph.c.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_args.h"
#include "memory.h"
#include "objects.h"

#define API REVATI_EXPORT cudaError_t
#define KERNEL_MAGIC 0x4b524e4cu
#define TABLE_SLOTS (1u << 17)

struct kernel_rec {
    uint32_t magic;
    uint32_t id;
    const void *host_fun;
    int max_dynamic_smem;
    const struct revati_args_layout *args_layout; /* argument bytes to keep, or NULL */
    int group_size; /* a group barrier kernel's group size (ipc_barrier.c), else 0 */
};

struct symbol_rec {
    const void *host_var;
    void *device_addr;
    size_t size;
    struct symbol_rec *next;
};

static struct kernel_rec *g_kernels[TABLE_SLOTS];
static pthread_mutex_t g_table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct symbol_rec *g_symbols;

static size_t slot_of(const void *p) { return ((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ULL >> 47; }

static struct kernel_rec *kernel_find(const void *host_fun) {
    for (size_t i = slot_of(host_fun), n = 0; n < TABLE_SLOTS; i = (i + 1) & (TABLE_SLOTS - 1), n++) {
        struct kernel_rec *k = __atomic_load_n(&g_kernels[i], __ATOMIC_ACQUIRE);
        if (!k) return NULL;
        if (k->host_fun == host_fun) return k;
    }
    return NULL;
}

static struct kernel_rec *kernel_add(const void *host_fun, const char *name) {
    pthread_mutex_lock(&g_table_lock);
    struct kernel_rec *k = kernel_find(host_fun);
    if (!k) {
        k = calloc(1, sizeof *k);
        if (k) {
            k->magic = KERNEL_MAGIC;
            k->host_fun = host_fun;
            k->id = revati_register_kernel_name(name ? name : "?");
            k->max_dynamic_smem = 48 * 1024;
            k->args_layout = revati_args_layout_for(name);
            if (revati_args_group_unit(k->args_layout)) k->group_size = revati_group_size_of(name);
            size_t i = slot_of(host_fun);
            while (g_kernels[i]) i = (i + 1) & (TABLE_SLOTS - 1);
            __atomic_store_n(&g_kernels[i], k, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&g_table_lock);
    return k;
}

/* ---- registration (static constructors of every CUDA module) ------------------------------- */

REVATI_EXPORT void **__cudaRegisterFatBinary(void *fat_cubin) {
    revati_ensure_init();
    void **handle = calloc(2, sizeof(void *));
    if (handle) handle[0] = fat_cubin;
    return handle;
}
REVATI_EXPORT void __cudaRegisterFatBinaryEnd(void **handle) { (void)handle; }
REVATI_EXPORT void __cudaUnregisterFatBinary(void **handle) { free(handle); }
REVATI_EXPORT char __cudaInitModule(void **handle) { (void)handle; return 1; }

REVATI_EXPORT void __cudaRegisterFunction(void **handle, const char *host_fun, char *device_fun,
                                          const char *device_name, int thread_limit, void *tid,
                                          void *bid, dim3 *bdim, dim3 *gdim, int *wsize) {
    (void)handle; (void)device_fun; (void)thread_limit; (void)tid; (void)bid; (void)bdim; (void)gdim; (void)wsize;
    revati_ensure_init();
    kernel_add(host_fun, device_name);
}

static void symbol_add(const void *host_var, size_t size) {
    struct symbol_rec *s = calloc(1, sizeof *s);
    if (!s) return;
    int backed;
    s->host_var = host_var;
    s->size = size;
    s->device_addr = revati_device_alloc(size ? size : 1, 0, ALLOC_MANAGED, &backed);
    pthread_mutex_lock(&g_table_lock);
    s->next = g_symbols;
    g_symbols = s;
    pthread_mutex_unlock(&g_table_lock);
}

REVATI_EXPORT void __cudaRegisterVar(void **handle, char *host_var, char *device_addr, const char *name,
                                     int ext, size_t size, int constant, int global) {
    (void)handle; (void)device_addr; (void)name; (void)ext; (void)constant; (void)global;
    revati_ensure_init();
    symbol_add(host_var, size);
}

REVATI_EXPORT void __cudaRegisterManagedVar(void **handle, void **host_var_ptr, char *device_addr,
                                            const char *name, int ext, size_t size, int constant, int global) {
    (void)handle; (void)device_addr; (void)name; (void)ext; (void)constant; (void)global;
    revati_ensure_init();
    symbol_add(host_var_ptr, size);
}

static struct symbol_rec *symbol_find(const void *host_var) {
    pthread_mutex_lock(&g_table_lock);
    struct symbol_rec *s = g_symbols;
    while (s && s->host_var != host_var) s = s->next;
    pthread_mutex_unlock(&g_table_lock);
    return s;
}

API cudaGetSymbolAddress(void **dev, const void *symbol) {
    struct symbol_rec *s = symbol_find(symbol);
    if (!s || !dev) return cudaErrorInvalidValue;
    *dev = s->device_addr;
    return cudaSuccess;
}
API cudaGetSymbolSize(size_t *size, const void *symbol) {
    struct symbol_rec *s = symbol_find(symbol);
    if (!s || !size) return cudaErrorInvalidValue;
    *size = s->size;
    return cudaSuccess;
}

cudaError_t revati_copy(void *dst, const void *src, size_t n, int kind, cudaStream_t s, int async,
                        int per_thread, uint16_t fn);

static cudaError_t symbol_copy(const void *symbol, size_t off, size_t n, int to, void *host,
                               cudaStream_t st, int async, uint16_t fn) {
    struct symbol_rec *s = symbol_find(symbol);
    if (!s || off + n > s->size) return cudaErrorInvalidValue;
    char *dev = (char *)s->device_addr + off;
    return to ? revati_copy(dev, host, n, cudaMemcpyDefault, st, async, 0, fn)
              : revati_copy(host, dev, n, cudaMemcpyDefault, st, async, 0, fn);
}
API cudaMemcpyToSymbol(const void *sym, const void *src, size_t n, size_t off, int k) { (void)k; return symbol_copy(sym, off, n, 1, (void *)src, NULL, 0, FN_cudaMemcpyToSymbol); }
API cudaMemcpyFromSymbol(void *dst, const void *sym, size_t n, size_t off, int k) { (void)k; return symbol_copy(sym, off, n, 0, dst, NULL, 0, FN_cudaMemcpyFromSymbol); }
API cudaMemcpyToSymbolAsync(const void *sym, const void *src, size_t n, size_t off, int k, cudaStream_t s) { (void)k; return symbol_copy(sym, off, n, 1, (void *)src, s, 1, FN_cudaMemcpyToSymbolAsync); }
API cudaMemcpyFromSymbolAsync(void *dst, const void *sym, size_t n, size_t off, int k, cudaStream_t s) { (void)k; return symbol_copy(sym, off, n, 0, dst, s, 1, FN_cudaMemcpyFromSymbolAsync); }

/* ---- launch configuration stack (legacy path) ---------------------------------------------- */

struct call_config { dim3 grid, block; size_t smem; void *stream; };
static __thread struct call_config t_configs[16];
static __thread int t_depth;

REVATI_EXPORT unsigned __cudaPushCallConfiguration(dim3 grid, dim3 block, size_t smem, void *stream) {
    int d = t_depth;
    if (LIKELY(d < 16)) {
        struct call_config *c = &t_configs[d];
        c->grid = grid;
        c->block = block;
        c->smem = smem;
        c->stream = stream;
    }
    t_depth = d + 1;
    return 0;
}

API __cudaPopCallConfiguration(dim3 *grid, dim3 *block, size_t *smem, void *stream) {
    int d = t_depth - 1;
    if (UNLIKELY(d < 0)) return cudaErrorInvalidConfiguration;
    t_depth = d;
    const struct call_config *c = &t_configs[d < 16 ? d : 15];
    *grid = c->grid;
    *block = c->block;
    *smem = c->smem;
    *(void **)stream = c->stream;
    return cudaSuccess;
}

/* ---- launch -------------------------------------------------------------------------------- */

/* A kernel node's kept argument bytes, and its group size and unit if it is a group barrier
 * (its pointer names a group now: the group's buffers are shared before a graph captures it). */
static void kernel_node_args(const struct kernel_rec *k, void *const *args, struct graph_node *n) {
    if (!k->args_layout || !args) return;
    revati_args_fill(k->args_layout, args, 0, &n->args);
    unsigned unit = revati_args_group_unit(k->args_layout);
    if (k->group_size && revati_ipc_barrier_node(&n->args, unit, k->group_size)) {
        n->group_size = (uint16_t)k->group_size;
        n->group_unit = unit;
    }
}

/* A launch on a stream that is being captured becomes a graph node, not a record. */
static __attribute__((noinline, cold)) cudaError_t launch_captured(struct revati_stream *obj,
                                                                   const struct kernel_rec *k, dim3 g,
                                                                   dim3 b, size_t smem, void **args) {
    struct graph_node n = {.type = REC_LAUNCH, .kernel = k->id, .grid = g, .block = b, .shared_mem = (uint32_t)smem};
    kernel_node_args(k, args, &n);
    return capture_append(obj, &n) ? cudaErrorMemoryAllocation : cudaSuccess;
}

/* Append the launch record and add the launch's host cost to the clock. `flatten` inlines the
 * clock read, the thread index, the ring reservation and the charge (from their own files when
 * the build uses LTO), so this makes no call; only their rare paths (a TSC recalibration, a
 * thread's first record, a full ring) stay out of line. Library layers (gemm.c) launch here too. */
__attribute__((noinline, flatten)) void revati_launch_record(uint32_t kernel, dim3 g, dim3 b, uint32_t smem,
                                                             int64_t ref, uint16_t fn) {
    int64_t enter = revati_now();
    uint32_t thread = revati_thread_index();
    uint64_t idx;
    struct revati_record *r = revati_ring_reserve(&idx);
    if (UNLIKELY(r == NULL)) return;
    int64_t cost = g_cfg.cost_ns[COST_LAUNCH];
    r->type = REC_LAUNCH;
    r->kind = 0;
    r->fn = fn;
    r->thread = thread;
    r->result = 0;
    r->enter_ns = enter;
    r->exit_ns = enter + cost;
    r->p.launch.kernel = kernel;
    r->p.launch.grid_x = g.x;
    r->p.launch.grid_y = (uint16_t)g.y;
    r->p.launch.grid_z = (uint16_t)g.z;
    r->p.launch.block_x = (uint16_t)b.x;
    r->p.launch.block_y = (uint16_t)b.y;
    r->p.launch.block_z = (uint16_t)b.z;
    r->p.launch.graph_flag = 0;
    r->p.launch.shared_mem = smem;
    r->p.launch.stream = (uint64_t)ref;
    revati_ring_commit(r, idx);
    if (cost > 0) revati_page_charge(g_page, cost);
}

/* A launch of a kernel whose argument layout is known: its kept argument bytes, then its
 * record. Out of line, so that the common path keeps nothing live across a call. */
static __attribute__((noinline, cold)) void launch_with_args(const struct kernel_rec *k, void **args, dim3 g,
                                                             dim3 b, uint32_t smem, int64_t ref, uint16_t fn) {
    if (k->group_size && revati_ipc_barrier_launch(k->args_layout, args, k->group_size, ref, fn)) return;
    revati_args_emit(k->args_layout, args);
    revati_launch_record(k->id, g, b, smem, ref, fn);
}

/* Inlined into each entry point: checks, then one clock read, one ring record, one charge. */
static inline __attribute__((always_inline)) cudaError_t launch(const struct kernel_rec *k, dim3 g, dim3 b,
                                                               size_t smem, cudaStream_t s, int per_thread,
                                                               uint16_t fn, void **args) {
    if (UNLIKELY(!k || k->magic != KERNEL_MAGIC)) return cudaErrorInvalidValue;
    uint32_t threads = b.x * b.y * b.z;
    if (UNLIKELY(g.x == 0 || g.y == 0 || g.z == 0 || threads == 0 ||
                 threads > (unsigned)g_cfg.dev.max_threads_per_block || g.y > 65535 || g.z > 65535))
        return cudaErrorInvalidConfiguration;
    struct revati_stream *obj;
    int64_t ref = revati_stream_ref(s, per_thread, &obj);
    if (UNLIKELY(ref < 0)) return cudaErrorInvalidResourceHandle;
    if (UNLIKELY(obj && obj->capture)) return launch_captured(obj, k, g, b, smem, args);
    revati_hostfn_gate(ref, fn);
    if (UNLIKELY(k->args_layout != NULL && args != NULL))
        launch_with_args(k, args, g, b, (uint32_t)smem, ref, fn);
    else
        revati_launch_record(k->id, g, b, (uint32_t)smem, ref, fn);
    return cudaSuccess;
}

/* A launch of a kernel named elsewhere (the driver's modules): the same checks, capture and
 * record as a runtime launch. */
cudaError_t revati_launch_kernel_id(uint32_t kernel_id, dim3 g, dim3 b, size_t smem, cudaStream_t s,
                                    int per_thread, uint16_t fn) {
    struct kernel_rec k = {.magic = KERNEL_MAGIC, .id = kernel_id};
    return launch(&k, g, b, smem, s, per_thread, fn, NULL);
}

API __cudaGetKernel(cudaKernel_t *kernel, const void *host_fun) {
    revati_ensure_init();
    struct kernel_rec *k = kernel_find(host_fun);
    if (!k) return cudaErrorInvalidValue;
    *kernel = k;
    return cudaSuccess;
}
API cudaGetKernel(cudaKernel_t *kernel, const void *host_fun) { return __cudaGetKernel(kernel, host_fun); }
API cudaGetFuncBySymbol(void **fn, const void *host_fun) { return __cudaGetKernel(fn, host_fun); }

API __cudaLaunchKernel(cudaKernel_t kernel, dim3 g, dim3 b, void **args, size_t smem, cudaStream_t s) {
    return launch(kernel, g, b, smem, s, 0, FN___cudaLaunchKernel, args);
}
API __cudaLaunchKernel_ptsz(cudaKernel_t kernel, dim3 g, dim3 b, void **args, size_t smem, cudaStream_t s) {
    return launch(kernel, g, b, smem, s, 1, FN___cudaLaunchKernel_ptsz, args);
}
API cudaLaunchKernel(const void *f, dim3 g, dim3 b, void **args, size_t smem, cudaStream_t s) {
    revati_ensure_init();
    return launch(kernel_find(f), g, b, smem, s, 0, FN_cudaLaunchKernel, args);
}
API cudaLaunchKernel_ptsz(const void *f, dim3 g, dim3 b, void **args, size_t smem, cudaStream_t s) {
    revati_ensure_init();
    return launch(kernel_find(f), g, b, smem, s, 1, FN_cudaLaunchKernel, args);
}
API cudaLaunchCooperativeKernel(const void *f, dim3 g, dim3 b, void **args, size_t smem, cudaStream_t s) {
    revati_ensure_init();
    return launch(kernel_find(f), g, b, smem, s, 0, FN_cudaLaunchCooperativeKernel, args);
}
API cudaLaunchKernelExC(const cudaLaunchConfig_t *c, const void *f, void **args) {
    revati_ensure_init();
    if (!c) return cudaErrorInvalidValue;
    struct kernel_rec *k = kernel_find(f);
    if (!k && f && ((const struct kernel_rec *)f)->magic == KERNEL_MAGIC) k = (struct kernel_rec *)f;
    return launch(k, c->gridDim, c->blockDim, c->dynamicSmemBytes, c->stream, 0, FN_cudaLaunchKernelExC, args);
}
API cudaLaunchKernelExC_ptsz(const cudaLaunchConfig_t *c, const void *f, void **args) { return cudaLaunchKernelExC(c, f, args); }

/* ---- function attributes and occupancy ----------------------------------------------------- */

static struct kernel_rec *func(const void *f) {
    struct kernel_rec *k = kernel_find(f);
    if (!k && f && ((const struct kernel_rec *)f)->magic == KERNEL_MAGIC) k = (struct kernel_rec *)f;
    return k;
}

uint32_t revati_kernel_id(const void *f) {
    const struct kernel_rec *k = func(f);
    return k ? k->id : 0;
}

void revati_kernel_node_fill(const void *f, void **args, struct graph_node *n) {
    const struct kernel_rec *k = func(f);
    if (k) kernel_node_args(k, args, n);
}

API cudaFuncGetAttributes(struct cudaFuncAttributes *a, const void *f) {
    revati_ensure_init();
    struct kernel_rec *k = func(f);
    if (!k || !a) return cudaErrorInvalidDeviceFunction;
    memset(a, 0, sizeof *a);
    a->maxThreadsPerBlock = g_cfg.dev.max_threads_per_block;
    a->numRegs = 32;
    a->ptxVersion = a->binaryVersion = g_cfg.dev.cc_major * 10 + g_cfg.dev.cc_minor;
    a->maxDynamicSharedSizeBytes = k->max_dynamic_smem;
    a->preferredShmemCarveout = -1;
    return cudaSuccess;
}

API cudaFuncSetAttribute(const void *f, int attr, int value) {
    revati_ensure_init();
    struct kernel_rec *k = func(f);
    if (!k) return cudaErrorInvalidDeviceFunction;
    if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
        if (value < 0 || value > g_cfg.dev.shared_mem_per_block_optin) return cudaErrorInvalidValue;
        k->max_dynamic_smem = value;
    }
    return cudaSuccess;
}
API cudaFuncSetCacheConfig(const void *f, int c) { (void)c; return func(f) ? cudaSuccess : cudaErrorInvalidDeviceFunction; }
API cudaFuncSetSharedMemConfig(const void *f, int c) { (void)c; return func(f) ? cudaSuccess : cudaErrorInvalidDeviceFunction; }

/* Resident blocks of `block_size` threads per SM, each using `regs` registers per thread and
 * `smem` bytes of shared memory. */
int revati_occupancy(int block_size, size_t smem, int regs) {
    const struct revati_device_props *d = &g_cfg.dev;
    if (block_size <= 0) return 0;
    int warps = (block_size + d->warp_size - 1) / d->warp_size;
    int by_threads = d->max_threads_per_sm / (warps * d->warp_size);
    int by_regs = d->regs_per_sm / (warps * d->warp_size * (regs > 0 ? (regs + 7) / 8 * 8 : 32));
    int by_smem = smem ? d->shared_mem_per_sm / ((int)smem + 1024) : d->max_blocks_per_sm;
    int n = d->max_blocks_per_sm;
    if (by_threads < n) n = by_threads;
    if (by_regs < n) n = by_regs;
    if (by_smem < n) n = by_smem;
    return n;
}

API cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *n, const void *f, int block, size_t smem) {
    revati_ensure_init();
    if (!n || !func(f)) return cudaErrorInvalidValue;
    *n = revati_occupancy(block, smem, 32);
    return cudaSuccess;
}
API cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *n, const void *f, int block, size_t smem, unsigned int fl) {
    (void)fl;
    return cudaOccupancyMaxActiveBlocksPerMultiprocessor(n, f, block, smem);
}
API cudaOccupancyAvailableDynamicSMemPerBlock(size_t *smem, const void *f, int blocks, int block) {
    (void)block;
    if (!smem || !func(f) || blocks <= 0) return cudaErrorInvalidValue;
    size_t per = (size_t)g_cfg.dev.shared_mem_per_sm / (size_t)blocks;
    *smem = per > 1024 ? per - 1024 : 0;
    if (*smem > (size_t)g_cfg.dev.shared_mem_per_block_optin) *smem = (size_t)g_cfg.dev.shared_mem_per_block_optin;
    return cudaSuccess;
}

API cudaProfilerStart(void) { return cudaSuccess; }
API cudaProfilerStop(void) { return cudaSuccess; }
