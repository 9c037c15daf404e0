/*
 * Kernel registration and launch (the CUDA 13 __cudaGetKernel/__cudaLaunchKernel path and the
 * legacy push/pop + cudaLaunchKernel path), function attributes, occupancy, stream capture and
 * CUDA graphs. A launch is the hot path: a lookup-free handle, one clock read, one ring record.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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
static uint32_t g_next_exec = 1;

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

/* A launch on a stream that is being captured becomes a graph node, not a record. */
static __attribute__((noinline, cold)) cudaError_t launch_captured(struct revati_stream *obj,
                                                                   const struct kernel_rec *k, dim3 g,
                                                                   dim3 b, size_t smem) {
    struct graph_node n = {.type = REC_LAUNCH, .kernel = k->id, .grid = g, .block = b, .shared_mem = (uint32_t)smem};
    return capture_append(obj, &n) ? cudaErrorMemoryAllocation : cudaSuccess;
}

/* Append the launch record and add the launch's host cost to the clock. `flatten` inlines the
 * clock read, the thread index, the ring reservation and the charge (from their own files when
 * the build uses LTO), so this makes no call; only their rare paths (a TSC recalibration, a
 * thread's first record, a full ring) stay out of line. */
static __attribute__((noinline, flatten)) void launch_record(const struct kernel_rec *k, dim3 g, dim3 b, size_t smem,
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
    r->p.launch.kernel = k->id;
    r->p.launch.grid_x = g.x;
    r->p.launch.grid_y = (uint16_t)g.y;
    r->p.launch.grid_z = (uint16_t)g.z;
    r->p.launch.block_x = (uint16_t)b.x;
    r->p.launch.block_y = (uint16_t)b.y;
    r->p.launch.block_z = (uint16_t)b.z;
    r->p.launch.graph_flag = 0;
    r->p.launch.shared_mem = (uint32_t)smem;
    r->p.launch.stream = (uint64_t)ref;
    revati_ring_commit(r, idx);
    if (cost > 0) revati_page_charge(g_page, cost);
}

/* Inlined into each entry point: checks, then one clock read, one ring record, one charge. */
static inline __attribute__((always_inline)) cudaError_t launch(const struct kernel_rec *k, dim3 g, dim3 b,
                                                               size_t smem, cudaStream_t s, int per_thread,
                                                               uint16_t fn) {
    if (UNLIKELY(!k || k->magic != KERNEL_MAGIC)) return cudaErrorInvalidValue;
    uint32_t threads = b.x * b.y * b.z;
    if (UNLIKELY(g.x == 0 || g.y == 0 || g.z == 0 || threads == 0 ||
                 threads > (unsigned)g_cfg.dev.max_threads_per_block || g.y > 65535 || g.z > 65535))
        return cudaErrorInvalidConfiguration;
    struct revati_stream *obj;
    int64_t ref = revati_stream_ref(s, per_thread, &obj);
    if (UNLIKELY(ref < 0)) return cudaErrorInvalidResourceHandle;
    if (UNLIKELY(obj && obj->capture)) return launch_captured(obj, k, g, b, smem);
    revati_hostfn_gate(ref, fn);
    launch_record(k, g, b, smem, ref, fn);
    return cudaSuccess;
}

/* A launch of a kernel named elsewhere (the driver's modules): the same checks, capture and
 * record as a runtime launch. */
cudaError_t revati_launch_kernel_id(uint32_t kernel_id, dim3 g, dim3 b, size_t smem, cudaStream_t s,
                                    int per_thread, uint16_t fn) {
    struct kernel_rec k = {.magic = KERNEL_MAGIC, .id = kernel_id};
    return launch(&k, g, b, smem, s, per_thread, fn);
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
    (void)args;
    return launch(kernel, g, b, smem, s, 0, FN___cudaLaunchKernel);
}
API __cudaLaunchKernel_ptsz(cudaKernel_t kernel, dim3 g, dim3 b, void **args, size_t smem, cudaStream_t s) {
    (void)args;
    return launch(kernel, g, b, smem, s, 1, FN___cudaLaunchKernel_ptsz);
}
API cudaLaunchKernel(const void *f, dim3 g, dim3 b, void **args, size_t smem, cudaStream_t s) {
    (void)args;
    revati_ensure_init();
    return launch(kernel_find(f), g, b, smem, s, 0, FN_cudaLaunchKernel);
}
API cudaLaunchKernel_ptsz(const void *f, dim3 g, dim3 b, void **args, size_t smem, cudaStream_t s) {
    (void)args;
    revati_ensure_init();
    return launch(kernel_find(f), g, b, smem, s, 1, FN_cudaLaunchKernel);
}
API cudaLaunchCooperativeKernel(const void *f, dim3 g, dim3 b, void **args, size_t smem, cudaStream_t s) {
    (void)args;
    revati_ensure_init();
    return launch(kernel_find(f), g, b, smem, s, 0, FN_cudaLaunchCooperativeKernel);
}
API cudaLaunchKernelExC(const cudaLaunchConfig_t *c, const void *f, void **args) {
    (void)args;
    revati_ensure_init();
    if (!c) return cudaErrorInvalidValue;
    struct kernel_rec *k = kernel_find(f);
    if (!k && f && ((const struct kernel_rec *)f)->magic == KERNEL_MAGIC) k = (struct kernel_rec *)f;
    return launch(k, c->gridDim, c->blockDim, c->dynamicSmemBytes, c->stream, 0, FN_cudaLaunchKernelExC);
}
API cudaLaunchKernelExC_ptsz(const cudaLaunchConfig_t *c, const void *f, void **args) { return cudaLaunchKernelExC(c, f, args); }

/* ---- function attributes and occupancy ----------------------------------------------------- */

static struct kernel_rec *func(const void *f) {
    struct kernel_rec *k = kernel_find(f);
    if (!k && f && ((const struct kernel_rec *)f)->magic == KERNEL_MAGIC) k = (struct kernel_rec *)f;
    return k;
}

API cudaFuncGetAttributes(struct cudaFuncAttributes *a, const void *f) {
    revati_ensure_init();
    struct kernel_rec *k = func(f);
    if (!k || !a) return 98; /* cudaErrorInvalidDeviceFunction */
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
    if (!k) return 98; /* cudaErrorInvalidDeviceFunction */
    if (attr == 8) { /* cudaFuncAttributeMaxDynamicSharedMemorySize */
        if (value < 0 || value > g_cfg.dev.shared_mem_per_block_optin) return cudaErrorInvalidValue;
        k->max_dynamic_smem = value;
    }
    return cudaSuccess;
}
API cudaFuncSetCacheConfig(const void *f, int c) { (void)c; return func(f) ? cudaSuccess : 98; }
API cudaFuncSetSharedMemConfig(const void *f, int c) { (void)c; return func(f) ? cudaSuccess : 98; }

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

/* ---- stream capture and graphs ------------------------------------------------------------- */

int graph_append(struct revati_graph *g, const struct graph_node *n) {
    if (g->count == g->cap) {
        uint32_t cap = g->cap ? g->cap * 2 : 16;
        void *p = realloc(g->nodes, cap * sizeof *g->nodes);
        if (!p) return -1;
        g->nodes = p;
        g->cap = cap;
    }
    g->nodes[g->count] = *n;
    g->nodes[g->count].handle = NULL;
    g->count++;
    return 0;
}

int graph_add_edge(struct revati_graph *g, uint32_t from, uint32_t to) {
    if (from >= g->count || to >= g->count || from == to) return -1;
    for (uint32_t i = 0; i < g->nedges; i++)
        if (g->edges[i].from == from && g->edges[i].to == to) return 0;
    if (g->nedges == g->edge_cap) {
        uint32_t cap = g->edge_cap ? g->edge_cap * 2 : 16;
        void *p = realloc(g->edges, cap * sizeof *g->edges);
        if (!p) return -1;
        g->edges = p;
        g->edge_cap = cap;
    }
    g->edges[g->nedges++] = (struct graph_edge){from, to};
    return 0;
}

int capture_append(struct revati_stream *obj, const struct graph_node *n) {
    struct revati_graph *g = obj->capture;
    if (graph_append(g, n)) return -1;
    uint32_t me = g->count - 1;
    for (uint32_t i = 0; i < obj->deps.n; i++)
        if (graph_add_edge(g, obj->deps.node[i], me)) return -1;
    obj->deps.n = 1;
    obj->deps.node[0] = me;
    return 0;
}

int capture_live(const struct revati_graph *g) { return g && g->magic == GRAPH_MAGIC && g->capturing; }

static struct revati_graph *graph_new(void) {
    struct revati_graph *g = calloc(1, sizeof *g);
    if (g) g->magic = GRAPH_MAGIC;
    return g;
}

API cudaGraphCreate(cudaGraph_t *g, unsigned int flags) {
    (void)flags;
    if (!g) return cudaErrorInvalidValue;
    *g = graph_new();
    return *g ? cudaSuccess : cudaErrorMemoryAllocation;
}

static cudaError_t begin_capture(cudaStream_t s, int mode) {
    revati_ensure_init();
    struct revati_stream *obj;
    if (revati_stream_ref(s, 0, &obj) < 0) return cudaErrorInvalidResourceHandle;
    if (!obj) return cudaErrorStreamCaptureUnsupported; /* the legacy stream cannot be captured */
    if (obj->capture) return cudaErrorIllegalState;
    obj->capture = graph_new();
    if (!obj->capture) return cudaErrorMemoryAllocation;
    obj->capture->origin = obj;
    obj->capture->capturing = 1;
    obj->capture_mode = mode;
    obj->deps.n = 0;
    int64_t now = revati_now();
    revati_emit(REC_API, 0, FN_cudaStreamBeginCapture, 0, now, now, (uint64_t)(uintptr_t)s, (uint64_t)mode, 0, 0);
    return cudaSuccess;
}
API cudaStreamBeginCapture(cudaStream_t s, int mode) { return begin_capture(s, mode); }
API cudaStreamBeginCapture_ptsz(cudaStream_t s, int mode) { return begin_capture(s, mode); }

static cudaError_t end_capture(cudaStream_t s, cudaGraph_t *out) {
    struct revati_stream *obj;
    if (revati_stream_ref(s, 0, &obj) < 0 || !obj || !out) return cudaErrorInvalidValue;
    if (!obj->capture) return cudaErrorIllegalState;
    if (obj->capture->origin != obj) return cudaErrorStreamCaptureUnmatched;
    struct revati_graph *g = obj->capture;
    for (uint32_t i = 0; i < g->njoined; i++) /* forked streams must have joined back by now */
        if (g->joined[i]->capture == g) g->joined[i]->capture = NULL;
    g->capturing = 0;
    g->njoined = 0;
    *out = g;
    obj->capture = NULL;
    int64_t now = revati_now();
    revati_emit(REC_API, 0, FN_cudaStreamEndCapture, 0, now, now, (uint64_t)(uintptr_t)s,
                ((struct revati_graph *)*out)->count, 0, 0);
    return cudaSuccess;
}
API cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g) { return end_capture(s, g); }
API cudaStreamEndCapture_ptsz(cudaStream_t s, cudaGraph_t *g) { return end_capture(s, g); }

API cudaStreamIsCapturing(cudaStream_t s, int *status) {
    struct revati_stream *obj;
    if (revati_stream_ref(s, 0, &obj) < 0 || !status) return cudaErrorInvalidValue;
    *status = obj && obj->capture ? 1 : 0;
    return cudaSuccess;
}
API cudaStreamIsCapturing_ptsz(cudaStream_t s, int *status) { return cudaStreamIsCapturing(s, status); }

API cudaStreamGetCaptureInfo(cudaStream_t s, int *status, unsigned long long *id, cudaGraph_t *graph,
                             const void **deps, const void **edges, size_t *ndeps) {
    struct revati_stream *obj;
    if (revati_stream_ref(s, 0, &obj) < 0) return cudaErrorInvalidValue;
    int capturing = obj && obj->capture;
    if (status) *status = capturing;
    if (id) *id = capturing ? (unsigned long long)(uintptr_t)obj->capture : 0;
    if (graph) *graph = capturing ? obj->capture : NULL;
    if (deps) *deps = NULL;
    if (edges) *edges = NULL;
    if (ndeps) *ndeps = 0;
    return cudaSuccess;
}
API cudaStreamGetCaptureInfo_ptsz(cudaStream_t s, int *st, unsigned long long *id, cudaGraph_t *g,
                                  const void **d, const void **e, size_t *n) {
    return cudaStreamGetCaptureInfo(s, st, id, g, d, e, n);
}
API cudaThreadExchangeStreamCaptureMode(int *mode) { (void)mode; return cudaSuccess; }

/* Order g's nodes topologically (Kahn; ties by creation order) and drop empty nodes, whose
 * dependents inherit their dependencies. Fills e->nodes/dep_off/deps/count. */
static int exec_build(struct revati_graph_exec *e, const struct revati_graph *g) {
    uint32_t n = g->count, m = g->nedges;
    uint32_t *indeg = calloc(n + 1, sizeof *indeg), *order = malloc((n + 1) * sizeof *order);
    uint32_t *pos = malloc((n + 1) * sizeof *pos), *out_off = calloc(n + 2, sizeof *out_off);
    uint32_t *out = malloc((m + 1) * sizeof *out);
    /* per node, its dependency set as exec positions (empty nodes: their inherited set) */
    uint32_t **sets = calloc(n + 1, sizeof *sets), *nset = calloc(n + 1, sizeof *nset);
    struct graph_node *nodes = malloc((n + 1) * sizeof *nodes);
    uint32_t *dep_off = malloc((n + 2) * sizeof *dep_off), *deps = NULL, ndeps = 0, dcap = 0;
    int rc = -1;
    if (!indeg || !order || !pos || !out_off || !out || !sets || !nset || !nodes || !dep_off) goto done;
    for (uint32_t i = 0; i < m; i++) { indeg[g->edges[i].to]++; out_off[g->edges[i].from + 1]++; }
    for (uint32_t i = 0; i < n; i++) out_off[i + 1] += out_off[i];
    {
        uint32_t *fill = calloc(n + 1, sizeof *fill);
        if (!fill) goto done;
        for (uint32_t i = 0; i < m; i++) out[out_off[g->edges[i].from] + fill[g->edges[i].from]++] = g->edges[i].to;
        free(fill);
    }
    uint32_t head = 0, tail = 0;
    for (uint32_t i = 0; i < n; i++) if (!indeg[i]) order[tail++] = i;
    while (head < tail) {
        uint32_t v = order[head++];
        for (uint32_t k = out_off[v]; k < out_off[v + 1]; k++) if (!--indeg[out[k]]) order[tail++] = out[k];
    }
    if (tail != n) goto done; /* a cycle */
    uint32_t count = 0;
    for (uint32_t t = 0; t < n; t++) {
        uint32_t v = order[t];
        /* gather the dependency set of v: exec positions of real predecessors, sets of empty ones */
        uint32_t cap = 4, k = 0, *set = malloc(cap * sizeof *set);
        if (!set) goto done;
        for (uint32_t i = 0; i < m; i++) {
            if (g->edges[i].to != v) continue;
            uint32_t u = g->edges[i].from;
            uint32_t single = pos[u], *src = g->nodes[u].type ? &single : sets[u];
            uint32_t cnt = g->nodes[u].type ? 1 : nset[u];
            for (uint32_t j = 0; j < cnt; j++) {
                uint32_t x = 0;
                while (x < k && set[x] != src[j]) x++;
                if (x < k) continue;
                if (k == cap) { uint32_t *p2 = realloc(set, (cap *= 2) * sizeof *set); if (!p2) { free(set); goto done; } set = p2; }
                set[k++] = src[j];
            }
        }
        if (!g->nodes[v].type) { sets[v] = set; nset[v] = k; continue; }
        pos[v] = count;
        nodes[count] = g->nodes[v];
        nodes[count].handle = NULL;
        dep_off[count] = ndeps;
        if (ndeps + k > dcap) {
            dcap = (ndeps + k) * 2 + 16;
            uint32_t *p2 = realloc(deps, dcap * sizeof *deps);
            if (!p2) { free(set); goto done; }
            deps = p2;
        }
        memcpy(deps + ndeps, set, k * sizeof *set);
        ndeps += k;
        count++;
        free(set);
    }
    dep_off[count] = ndeps;
    free(e->nodes); free(e->dep_off); free(e->deps);
    e->nodes = nodes; e->dep_off = dep_off; e->deps = deps; e->count = count;
    nodes = NULL; dep_off = NULL; deps = NULL;
    rc = 0;
done:
    if (sets) for (uint32_t i = 0; i < n; i++) free(sets[i]);
    free(sets); free(nset); free(indeg); free(order); free(pos); free(out_off); free(out);
    free(nodes); free(dep_off); free(deps);
    return rc;
}

static cudaError_t instantiate(cudaGraphExec_t *out, cudaGraph_t graph) {
    struct revati_graph *g = graph;
    if (!out || !g || g->magic != GRAPH_MAGIC) return cudaErrorInvalidValue;
    struct revati_graph_exec *e = calloc(1, sizeof *e);
    if (!e) return cudaErrorMemoryAllocation;
    e->magic = EXEC_MAGIC;
    if (exec_build(e, g)) { free(e); return cudaErrorInvalidValue; }
    e->id = __atomic_fetch_add(&g_next_exec, 1, __ATOMIC_ACQ_REL);
    *out = e;
    int64_t now = revati_now();
    revati_emit(REC_API, 0, FN_cudaGraphInstantiate, 0, now, now, e->id, e->count, 0, 0);
    return cudaSuccess;
}
API cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long f) { (void)f; return instantiate(e, g); }
API cudaGraphInstantiateWithFlags(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long f) { (void)f; return instantiate(e, g); }

API cudaGraphExecUpdate(cudaGraphExec_t exec, cudaGraph_t graph, int *result_info) {
    struct revati_graph_exec *e = exec;
    struct revati_graph *g = graph;
    if (!e || e->magic != EXEC_MAGIC || !g || g->magic != GRAPH_MAGIC) return cudaErrorInvalidValue;
    if (exec_build(e, g)) return cudaErrorInvalidValue;
    if (result_info) *result_info = 0;
    int64_t now = revati_now();
    revati_emit(REC_API, 0, FN_cudaGraphExecUpdate, 0, now, now, e->id, e->count, 0, 0);
    return cudaSuccess;
}

static cudaError_t graph_launch(cudaGraphExec_t exec, cudaStream_t s, int per_thread) {
    revati_ensure_init();
    struct revati_graph_exec *e = exec;
    if (!e || e->magic != EXEC_MAGIC) return cudaErrorInvalidValue;
    struct revati_stream *obj;
    int64_t ref = revati_stream_ref(s, per_thread, &obj);
    if (ref < 0) return cudaErrorInvalidResourceHandle;
    revati_hostfn_gate(ref, FN_cudaGraphLaunch);
    int64_t enter = revati_now();
    int64_t exit = revati_charge(COST_LAUNCH, enter);
    revati_emit(REC_GRAPH_LAUNCH, 0, FN_cudaGraphLaunch, 0, enter, exit, e->id, (uint64_t)ref, e->count, 0);
    uint32_t thread = revati_thread_index();
    for (uint32_t i = 0; i < e->count; i++) {
        struct graph_node *n = &e->nodes[i];
        int moved = 0, kind = n->kind;
        /* the node's position and its dependencies (positions), three per header record */
        uint32_t d0 = e->dep_off[i], nd = e->dep_off[i + 1] - d0, k = 0;
        do {
            uint32_t c = nd - k < 3 ? nd - k : 3;
            uint64_t v[3] = {0, 0, 0};
            for (uint32_t j = 0; j < c; j++) v[j] = e->deps[d0 + k + j];
            revati_emit(REC_GRAPH_NODE, (uint8_t)c, FN_cudaGraphLaunch, 0, exit, exit, i, v[0], v[1], v[2]);
            k += c;
        } while (k < nd);
        if (n->type == REC_LAUNCH) {
            uint64_t idx;
            struct revati_record *r = revati_ring_reserve(&idx);
            if (!r) continue;
            memset(&r->p, 0, sizeof r->p);
            r->type = REC_LAUNCH; r->kind = 0; r->fn = FN_cudaGraphLaunch;
            r->thread = thread; r->result = 0; r->enter_ns = exit; r->exit_ns = exit;
            r->p.launch.kernel = n->kernel;
            r->p.launch.grid_x = n->grid.x; r->p.launch.grid_y = (uint16_t)n->grid.y; r->p.launch.grid_z = (uint16_t)n->grid.z;
            r->p.launch.block_x = (uint16_t)n->block.x; r->p.launch.block_y = (uint16_t)n->block.y; r->p.launch.block_z = (uint16_t)n->block.z;
            r->p.launch.graph_flag = 1;
            r->p.launch.shared_mem = n->shared_mem;
            r->p.launch.stream = (uint64_t)ref;
            revati_ring_commit(r, idx);
        } else if (n->type == REC_COPY) {
            revati_copy_bytes(n->dst, n->src, n->bytes, &moved, &kind);
            revati_emit(REC_COPY, (uint8_t)(kind | REC_F_ASYNC | 0x40 | (moved ? REC_F_BACKED : 0)), FN_cudaGraphLaunch, 0,
                        exit, exit, (uint64_t)(uintptr_t)n->dst, (uint64_t)(uintptr_t)n->src, n->bytes, (uint64_t)ref);
        } else if (n->type == REC_HOST_FN) {
            revati_emit(REC_HOST_FN, 0x40, FN_cudaGraphLaunch, 0, exit, exit, (uint64_t)ref, 0, 0, 0);
            if (n->host_fn) n->host_fn(n->host_data);
        } else if (n->type == REC_MEMSET) {
            revati_fill(n->dst, (uint32_t)n->value, n->element_size, n->bytes, &moved);
            revati_emit(REC_MEMSET, (uint8_t)(REC_F_ASYNC | 0x40 | (moved ? REC_F_BACKED : 0)), FN_cudaGraphLaunch, 0,
                        exit, exit, (uint64_t)(uintptr_t)n->dst, n->bytes, (uint64_t)(n->value & 0xff), (uint64_t)ref);
        }
    }
    return cudaSuccess;
}
API cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s) { return graph_launch(e, s, 0); }
API cudaGraphLaunch_ptsz(cudaGraphExec_t e, cudaStream_t s) { return graph_launch(e, s, 1); }
API cudaGraphUpload(cudaGraphExec_t e, cudaStream_t s) { (void)e; (void)s; return cudaSuccess; }
API cudaGraphUpload_ptsz(cudaGraphExec_t e, cudaStream_t s) { (void)e; (void)s; return cudaSuccess; }

API cudaGraphExecDestroy(cudaGraphExec_t exec) {
    struct revati_graph_exec *e = exec;
    if (!e || e->magic != EXEC_MAGIC) return cudaErrorInvalidValue;
    e->magic = 0;
    free(e->nodes);
    free(e->dep_off);
    free(e->deps);
    free(e);
    return cudaSuccess;
}

API cudaGraphDestroy(cudaGraph_t graph) {
    struct revati_graph *g = graph;
    if (!g || g->magic != GRAPH_MAGIC) return cudaErrorInvalidValue;
    g->magic = 0;
    for (uint32_t i = 0; i < g->count; i++) free(g->nodes[i].handle);
    free(g->nodes);
    free(g->edges);
    free(g);
    return cudaSuccess;
}

/* The cudaGraphNode_t of node i (created on first use, freed with the graph). */
static void *node_handle(struct revati_graph *g, uint32_t i) {
    struct graph_node *n = &g->nodes[i];
    if (!n->handle && (n->handle = malloc(sizeof *n->handle))) {
        n->handle->magic = NODE_MAGIC;
        n->handle->index = i;
    }
    return n->handle;
}

static int node_index(const struct revati_graph *g, const void *h, uint32_t *out) {
    const struct graph_node_handle *n = h;
    if (!n || n->magic != NODE_MAGIC || n->index >= g->count) return -1;
    *out = n->index;
    return 0;
}

API cudaGraphGetNodes(cudaGraph_t graph, void **nodes, size_t *count) {
    struct revati_graph *g = graph;
    if (!g || g->magic != GRAPH_MAGIC || !count) return cudaErrorInvalidValue;
    if (nodes)
        for (size_t i = 0; i < *count && i < g->count; i++) nodes[i] = node_handle(g, (uint32_t)i);
    *count = g->count;
    return cudaSuccess;
}

/* ---- graphs built by hand (the dependencies given become the graph's edges) ----------------- */

struct cudaKernelNodeParams { void *func; dim3 gridDim; dim3 blockDim; unsigned int sharedMemBytes; void **kernelParams; void **extra; };
struct cudaPos { size_t x, y, z; };
struct cudaPitchedPtr { void *ptr; size_t pitch, xsize, ysize; };
struct cudaExtent { size_t width, height, depth; };
struct cudaMemcpy3DParms {
    void *srcArray; struct cudaPos srcPos; struct cudaPitchedPtr srcPtr;
    void *dstArray; struct cudaPos dstPos; struct cudaPitchedPtr dstPtr;
    struct cudaExtent extent; int kind;
};
struct cudaMemsetParams { void *dst; size_t pitch; unsigned int value; unsigned int elementSize; size_t width; size_t height; };
struct cudaHostNodeParams { void (*fn)(void *); void *userData; };

static cudaError_t add_node(void **out, cudaGraph_t graph, const void *deps, size_t ndeps, const struct graph_node *n) {
    struct revati_graph *g = graph;
    if (!g || g->magic != GRAPH_MAGIC || (ndeps && !deps)) return cudaErrorInvalidValue;
    uint32_t idx;
    for (size_t i = 0; i < ndeps; i++)
        if (node_index(g, ((void *const *)deps)[i], &idx)) return cudaErrorInvalidValue;
    if (graph_append(g, n)) return cudaErrorMemoryAllocation;
    uint32_t me = g->count - 1;
    for (size_t i = 0; i < ndeps; i++) {
        node_index(g, ((void *const *)deps)[i], &idx);
        if (graph_add_edge(g, idx, me)) return cudaErrorMemoryAllocation;
    }
    if (out) *out = node_handle(g, me);
    return cudaSuccess;
}

API cudaGraphAddKernelNode(void **node, cudaGraph_t g, const void *deps, size_t ndeps, const struct cudaKernelNodeParams *p) {
    if (!p) return cudaErrorInvalidValue;
    struct kernel_rec *k = func(p->func);
    if (!k) return 98;
    struct graph_node n = {.type = REC_LAUNCH, .kernel = k->id, .grid = p->gridDim, .block = p->blockDim,
                           .shared_mem = p->sharedMemBytes};
    return add_node(node, g, deps, ndeps, &n);
}

API cudaGraphAddMemcpyNode(void **node, cudaGraph_t g, const void *deps, size_t ndeps, const struct cudaMemcpy3DParms *p) {
    if (!p || p->srcArray || p->dstArray) return cudaErrorInvalidValue;
    size_t height = p->extent.height ? p->extent.height : 1, depth = p->extent.depth ? p->extent.depth : 1;
    const char *src = (const char *)p->srcPtr.ptr + p->srcPos.x;
    char *dst = (char *)p->dstPtr.ptr + p->dstPos.x;
    struct graph_node n = {.type = REC_COPY, .dst = dst, .src = src, .bytes = p->extent.width * height * depth};
    int moved, kind;
    revati_copy_bytes(dst, src, 0, &moved, &kind); /* direction only */
    n.kind = (uint8_t)kind;
    return add_node(node, g, deps, ndeps, &n);
}

API cudaGraphAddMemcpyNode1D(void **node, cudaGraph_t g, const void *deps, size_t ndeps, void *dst, const void *src,
                             size_t count, int kind) {
    (void)kind;
    int moved, seen;
    revati_copy_bytes(dst, src, 0, &moved, &seen);
    struct graph_node n = {.type = REC_COPY, .kind = (uint8_t)seen, .dst = dst, .src = src, .bytes = count};
    return add_node(node, g, deps, ndeps, &n);
}

API cudaGraphAddMemsetNode(void **node, cudaGraph_t g, const void *deps, size_t ndeps, const struct cudaMemsetParams *p) {
    if (!p || (p->elementSize != 1 && p->elementSize != 2 && p->elementSize != 4)) return cudaErrorInvalidValue;
    struct graph_node n = {.type = REC_MEMSET, .dst = p->dst, .bytes = (uint64_t)p->elementSize * p->width * (p->height ? p->height : 1),
                           .value = (int)p->value, .element_size = p->elementSize};
    return add_node(node, g, deps, ndeps, &n);
}

API cudaGraphAddHostNode(void **node, cudaGraph_t g, const void *deps, size_t ndeps, const struct cudaHostNodeParams *p) {
    if (!p || !p->fn) return cudaErrorInvalidValue;
    struct graph_node n = {.type = REC_HOST_FN, .host_fn = p->fn, .host_data = p->userData};
    return add_node(node, g, deps, ndeps, &n);
}

API cudaGraphAddEmptyNode(void **node, cudaGraph_t g, const void *deps, size_t ndeps) {
    struct graph_node n = {.type = 0};
    return add_node(node, g, deps, ndeps, &n);
}

API cudaGraphAddDependencies(cudaGraph_t graph, const void *from, const void *to, const void *edges, size_t n) {
    (void)edges;
    struct revati_graph *g = graph;
    if (!g || g->magic != GRAPH_MAGIC || (n && (!from || !to))) return cudaErrorInvalidValue;
    for (size_t i = 0; i < n; i++) {
        uint32_t a, b;
        if (node_index(g, ((void *const *)from)[i], &a) || node_index(g, ((void *const *)to)[i], &b))
            return cudaErrorInvalidValue;
        if (graph_add_edge(g, a, b)) return cudaErrorInvalidValue;
    }
    return cudaSuccess;
}

API cudaGraphClone(cudaGraph_t *out, cudaGraph_t graph) {
    struct revati_graph *g = graph, *c;
    if (!out || !g || g->magic != GRAPH_MAGIC) return cudaErrorInvalidValue;
    if (!(c = graph_new())) return cudaErrorMemoryAllocation;
    for (uint32_t i = 0; i < g->count; i++)
        if (graph_append(c, &g->nodes[i])) return cudaErrorMemoryAllocation;
    for (uint32_t i = 0; i < g->nedges; i++)
        if (graph_add_edge(c, g->edges[i].from, g->edges[i].to)) return cudaErrorMemoryAllocation;
    *out = c;
    return cudaSuccess;
}

API cudaGraphGetRootNodes(cudaGraph_t graph, void **nodes, size_t *count) {
    struct revati_graph *g = graph;
    if (!g || g->magic != GRAPH_MAGIC || !count) return cudaErrorInvalidValue;
    size_t k = 0;
    for (uint32_t i = 0; i < g->count; i++) {
        uint32_t j = 0;
        while (j < g->nedges && g->edges[j].to != i) j++;
        if (j < g->nedges) continue;
        if (nodes && k < *count) nodes[k] = node_handle(g, i);
        k++;
    }
    *count = k;
    return cudaSuccess;
}

API cudaProfilerStart(void) { return cudaSuccess; }
API cudaProfilerStop(void) { return cudaSuccess; }
