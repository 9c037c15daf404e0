/*
 * Modules, libraries and functions of the driver API (the path of Triton, Inductor, NVRTC
 * users and extensions that load cubins at run time), their attributes and occupancy, and
 * cuLaunchKernel(Ex) / cuLaunchCooperativeKernel as kernel launches: a function is named when
 * it is looked up, and a launch is recorded like a runtime launch of that kernel.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cubin.h"
#include "driver.h"
#include "memory.h"
#include "objects.h"

#define MODULE_MAGIC 0x4d4f444cu
#define FUNCTION_MAGIC 0x46554e43u
#define LOADING_MODE_LAZY 2
#define LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION 4

struct revati_function {
    uint32_t magic;
    uint32_t kernel; /* names file id */
    char *name;
    int registers, static_shared, max_dynamic_shared;
    struct revati_module *module;
    struct revati_function *next;
};

struct module_global {
    char *name;
    void *addr;
    struct module_global *next;
};

struct revati_module {
    uint32_t magic;
    struct cubin_info info;
    struct revati_function *functions;
    struct module_global *globals;
};

static pthread_mutex_t g_module_lock = PTHREAD_MUTEX_INITIALIZER;

static struct revati_module *module_of(void *m) {
    struct revati_module *mod = m;
    return mod && mod->magic == MODULE_MAGIC ? mod : NULL;
}

static struct revati_function *function_of(void *f) {
    struct revati_function *fn = f;
    return fn && fn->magic == FUNCTION_MAGIC ? fn : NULL;
}

/* ---- loading ------------------------------------------------------------------------------- */

static CUresult module_load(CUmodule *out, const void *image, size_t size) {
    revati_ensure_init();
    if (!out || !image) return CUDA_ERROR_INVALID_VALUE;
    struct revati_module *m = calloc(1, sizeof *m);
    if (!m) return CUDA_ERROR_OUT_OF_MEMORY;
    m->magic = MODULE_MAGIC;
    cubin_read(image, size, g_cfg.dev.cc_major * 10 + g_cfg.dev.cc_minor, &m->info);
    *out = m;
    int64_t enter = revati_now();
    int64_t exit = revati_charge(COST_OTHER, enter);
    revati_emit(REC_API, 0, FN_cuModuleLoadData, 0, enter, exit, (uint64_t)(uintptr_t)m, m->info.count, 0, 0);
    return CUDA_SUCCESS;
}

DRV cuModuleLoadData(CUmodule *m, const void *image) { return module_load(m, image, 0); }
DRV cuModuleLoadDataEx(CUmodule *m, const void *image, unsigned int n, void *options, void **values) {
    (void)n; (void)options; (void)values;
    return module_load(m, image, 0);
}
DRV cuModuleLoadFatBinary(CUmodule *m, const void *fatbin) { return module_load(m, fatbin, 0); }

DRV cuModuleLoad(CUmodule *m, const char *path) {
    FILE *f = path ? fopen(path, "rbe") : NULL;
    if (!f) return CUDA_ERROR_NOT_FOUND;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *data = size > 0 ? malloc((size_t)size + 1) : NULL;
    int ok = data && fread(data, 1, (size_t)size, f) == (size_t)size;
    fclose(f);
    CUresult rc = ok ? module_load(m, data, (size_t)size) : CUDA_ERROR_INVALID_IMAGE;
    free(data);
    return rc;
}

DRV cuModuleUnload(CUmodule mod) {
    struct revati_module *m = module_of(mod);
    if (!m) return CUDA_ERROR_INVALID_HANDLE;
    /* functions stay valid (a launch racing an unload must not crash); their names are recorded */
    m->magic = 0;
    return CUDA_SUCCESS;
}

DRV cuModuleGetLoadingMode(int *mode) {
    if (!mode) return CUDA_ERROR_INVALID_VALUE;
    *mode = LOADING_MODE_LAZY;
    return CUDA_SUCCESS;
}

DRV cuLibraryLoadData(CUlibrary *lib, const void *code, void *jo, void **jv, unsigned int jn, void *lo, void **lv,
                      unsigned int ln) {
    (void)jo; (void)jv; (void)jn; (void)lo; (void)lv; (void)ln;
    return module_load(lib, code, 0);
}
DRV cuLibraryLoadFromFile(CUlibrary *lib, const char *path, void *jo, void **jv, unsigned int jn, void *lo, void **lv,
                          unsigned int ln) {
    (void)jo; (void)jv; (void)jn; (void)lo; (void)lv; (void)ln;
    return cuModuleLoad(lib, path);
}
DRV cuLibraryUnload(CUlibrary lib) { return cuModuleUnload(lib); }
DRV cuLibraryGetModule(CUmodule *mod, CUlibrary lib) {
    if (!mod || !module_of(lib)) return CUDA_ERROR_INVALID_HANDLE;
    *mod = lib;
    return CUDA_SUCCESS;
}

/* ---- functions ----------------------------------------------------------------------------- */

static CUresult get_function(struct revati_function **out, void *mod, const char *name) {
    struct revati_module *m = module_of(mod);
    if (!out || !name) return CUDA_ERROR_INVALID_VALUE;
    if (!m) return CUDA_ERROR_INVALID_HANDLE;
    const struct cubin_kernel *k = cubin_kernel(&m->info, name);
    if (m->info.parsed && !k) return CUDA_ERROR_NOT_FOUND;
    pthread_mutex_lock(&g_module_lock);
    struct revati_function *f = m->functions;
    while (f && strcmp(f->name, name)) f = f->next;
    if (!f && (f = calloc(1, sizeof *f)) && (f->name = strdup(name))) {
        f->magic = FUNCTION_MAGIC;
        f->kernel = revati_register_kernel_name(name);
        f->registers = k ? k->registers : 0;
        f->static_shared = k ? k->static_shared : 0;
        f->max_dynamic_shared = 48 * 1024 - f->static_shared;
        f->module = m;
        f->next = m->functions;
        m->functions = f;
    }
    pthread_mutex_unlock(&g_module_lock);
    *out = f;
    return f && f->name ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

DRV cuModuleGetFunction(CUfunction *f, CUmodule mod, const char *name) { return get_function((struct revati_function **)f, mod, name); }
DRV cuLibraryGetKernel(CUkernel *k, CUlibrary lib, const char *name) { return get_function((struct revati_function **)k, lib, name); }
DRV cuKernelGetFunction(CUfunction *f, CUkernel k) {
    if (!f || !function_of(k)) return CUDA_ERROR_INVALID_HANDLE;
    *f = k;
    return CUDA_SUCCESS;
}
DRV cuFuncGetName(const char **name, CUfunction f) {
    struct revati_function *fn = function_of(f);
    if (!name || !fn) return CUDA_ERROR_INVALID_HANDLE;
    *name = fn->name;
    return CUDA_SUCCESS;
}
DRV cuKernelGetName(const char **name, CUkernel k) { return cuFuncGetName(name, k); }
DRV cuFuncGetModule(CUmodule *mod, CUfunction f) {
    struct revati_function *fn = function_of(f);
    if (!mod || !fn) return CUDA_ERROR_INVALID_HANDLE;
    *mod = fn->module;
    return CUDA_SUCCESS;
}
DRV cuFuncLoad(CUfunction f) { return function_of(f) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE; }
DRV cuFuncIsLoaded(int *state, CUfunction f) {
    if (!state || !function_of(f)) return CUDA_ERROR_INVALID_HANDLE;
    *state = 1; /* CU_FUNCTION_LOADING_STATE_LOADED */
    return CUDA_SUCCESS;
}

static CUresult get_global(CUdeviceptr *dptr, size_t *bytes, void *mod, const char *name) {
    struct revati_module *m = module_of(mod);
    if (!m || !name) return CUDA_ERROR_INVALID_HANDLE;
    const struct cubin_global *g = cubin_global(&m->info, name);
    if (!g) return CUDA_ERROR_NOT_FOUND;
    pthread_mutex_lock(&g_module_lock);
    struct module_global *mg = m->globals;
    while (mg && strcmp(mg->name, name)) mg = mg->next;
    if (!mg && (mg = calloc(1, sizeof *mg))) {
        int backed;
        mg->name = strdup(name);
        mg->addr = revati_device_alloc(g->size ? g->size : 1, revati_current_device(), ALLOC_MANAGED, &backed);
        mg->next = m->globals;
        m->globals = mg;
    }
    pthread_mutex_unlock(&g_module_lock);
    if (!mg || !mg->addr) return CUDA_ERROR_OUT_OF_MEMORY;
    if (dptr) *dptr = (CUdeviceptr)(uintptr_t)mg->addr;
    if (bytes) *bytes = g->size;
    return CUDA_SUCCESS;
}
DRV cuModuleGetGlobal_v2(CUdeviceptr *d, size_t *n, CUmodule m, const char *name) { return get_global(d, n, m, name); }
DRV cuLibraryGetGlobal(CUdeviceptr *d, size_t *n, CUlibrary l, const char *name) { return get_global(d, n, l, name); }

/* ---- attributes and occupancy -------------------------------------------------------------- */

enum {
    FA_MAX_THREADS = 0, FA_SHARED = 1, FA_CONST = 2, FA_LOCAL = 3, FA_NUM_REGS = 4, FA_PTX = 5, FA_BINARY = 6,
    FA_CACHE_MODE_CA = 7, FA_MAX_DYNAMIC_SHARED = 8, FA_CARVEOUT = 9,
};

static int max_threads(const struct revati_function *f) {
    const struct revati_device_props *d = &g_cfg.dev;
    if (f->registers <= 0) return d->max_threads_per_block;
    int per_warp = (f->registers + 7) / 8 * 8 * d->warp_size;
    int warps = d->regs_per_block / per_warp;
    int n = warps * d->warp_size;
    return n < d->max_threads_per_block ? n : d->max_threads_per_block;
}

DRV cuFuncGetAttribute(int *value, int attr, CUfunction fn) {
    struct revati_function *f = function_of(fn);
    if (!value) return CUDA_ERROR_INVALID_VALUE;
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    int arch = g_cfg.dev.cc_major * 10 + g_cfg.dev.cc_minor;
    switch (attr) {
    case FA_MAX_THREADS: *value = max_threads(f); break;
    case FA_SHARED: *value = f->static_shared; break;
    case FA_NUM_REGS: *value = f->registers > 0 ? f->registers : 32; break;
    case FA_PTX: case FA_BINARY: *value = arch; break;
    case FA_MAX_DYNAMIC_SHARED: *value = f->max_dynamic_shared; break;
    case FA_CARVEOUT: *value = -1; break;
    default: *value = 0; break; /* const and local memory, cache mode, cluster attributes */
    }
    return CUDA_SUCCESS;
}
DRV cuKernelGetAttribute(int *value, int attr, CUkernel k, CUdevice d) { (void)d; return cuFuncGetAttribute(value, attr, k); }

DRV cuFuncSetAttribute(CUfunction fn, int attr, int value) {
    struct revati_function *f = function_of(fn);
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    if (attr == FA_MAX_DYNAMIC_SHARED) {
        if (value < 0 || value + f->static_shared > g_cfg.dev.shared_mem_per_block_optin) return CUDA_ERROR_INVALID_VALUE;
        f->max_dynamic_shared = value;
    }
    return CUDA_SUCCESS;
}
DRV cuKernelSetAttribute(int attr, int value, CUkernel k, CUdevice d) { (void)d; return cuFuncSetAttribute(k, attr, value); }
DRV cuFuncSetCacheConfig(CUfunction f, int config) { (void)config; return function_of(f) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE; }
DRV cuKernelSetCacheConfig(CUkernel k, int config, CUdevice d) { (void)d; return cuFuncSetCacheConfig(k, config); }
DRV cuFuncSetSharedMemConfig(CUfunction f, int config) { (void)config; return function_of(f) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE; }

DRV cuOccupancyMaxActiveBlocksPerMultiprocessor(int *n, CUfunction fn, int block, size_t smem) {
    struct revati_function *f = function_of(fn);
    if (!n) return CUDA_ERROR_INVALID_VALUE;
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    *n = revati_occupancy(block, smem + (size_t)f->static_shared, f->registers);
    return CUDA_SUCCESS;
}
DRV cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *n, CUfunction f, int block, size_t smem, unsigned int flags) {
    (void)flags;
    return cuOccupancyMaxActiveBlocksPerMultiprocessor(n, f, block, smem);
}

DRV cuOccupancyMaxPotentialBlockSize(int *min_grid, int *block, CUfunction fn, size_t (*smem_of)(int), size_t smem,
                                     int limit) {
    struct revati_function *f = function_of(fn);
    if (!min_grid || !block) return CUDA_ERROR_INVALID_VALUE;
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    int best = 0, best_threads = 0, top = max_threads(f);
    if (limit > 0 && limit < top) top = limit;
    for (int b = top; b >= g_cfg.dev.warp_size; b -= g_cfg.dev.warp_size) {
        size_t dyn = smem_of ? smem_of(b) : smem;
        int threads = revati_occupancy(b, dyn + (size_t)f->static_shared, f->registers) * b;
        if (threads > best_threads) { best_threads = threads; best = b; }
    }
    *block = best;
    *min_grid = best ? best_threads / best * g_cfg.dev.sm_count : 0;
    return CUDA_SUCCESS;
}

DRV cuOccupancyAvailableDynamicSMemPerBlock(size_t *smem, CUfunction fn, int blocks, int block) {
    struct revati_function *f = function_of(fn);
    (void)block;
    if (!smem || blocks <= 0) return CUDA_ERROR_INVALID_VALUE;
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    int per = g_cfg.dev.shared_mem_per_sm / blocks - 1024 - f->static_shared;
    int cap = g_cfg.dev.shared_mem_per_block_optin - f->static_shared;
    *smem = (size_t)(per < 0 ? 0 : per < cap ? per : cap);
    return CUDA_SUCCESS;
}

static unsigned int cluster_size(const struct CUlaunchConfig *c) {
    for (unsigned int i = 0; c && c->attrs && i < c->numAttrs; i++) {
        if (c->attrs[i].id != LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION) continue;
        unsigned int dim[3];
        memcpy(dim, c->attrs[i].value, sizeof dim);
        unsigned int n = dim[0] * (dim[1] ? dim[1] : 1) * (dim[2] ? dim[2] : 1);
        return n ? n : 1;
    }
    return 1;
}

DRV cuOccupancyMaxActiveClusters(int *n, CUfunction fn, const struct CUlaunchConfig *c) {
    struct revati_function *f = function_of(fn);
    if (!n || !c) return CUDA_ERROR_INVALID_VALUE;
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    int block = (int)(c->blockDimX * c->blockDimY * c->blockDimZ);
    int per_sm = revati_occupancy(block, c->sharedMemBytes + (size_t)f->static_shared, f->registers);
    *n = per_sm * g_cfg.dev.sm_count / (int)cluster_size(c);
    return CUDA_SUCCESS;
}
DRV cuOccupancyMaxPotentialClusterSize(int *n, CUfunction fn, const struct CUlaunchConfig *c) {
    if (!n || !c) return CUDA_ERROR_INVALID_VALUE;
    if (!function_of(fn)) return CUDA_ERROR_INVALID_HANDLE;
    *n = 8; /* the portable cluster size */
    return CUDA_SUCCESS;
}

/* ---- launches ------------------------------------------------------------------------------ */

static CUresult launch(void *fn, dim3 g, dim3 b, unsigned int smem, CUstream s, int per_thread, uint16_t id) {
    struct revati_function *f = function_of(fn);
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    if ((int)smem > f->max_dynamic_shared) return CUDA_ERROR_INVALID_VALUE;
    return revati_launch_kernel_id(f->kernel, g, b, smem + (unsigned int)f->static_shared, s, per_thread, id);
}

#define GRID(x, y, z) ((dim3){x, y, z})
DRV cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by,
                   unsigned int bz, unsigned int smem, CUstream s, void **params, void **extra) {
    (void)params; (void)extra;
    return launch(f, GRID(gx, gy, gz), GRID(bx, by, bz), smem, s, 0, FN_cuLaunchKernel);
}
DRV cuLaunchKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                        unsigned int by, unsigned int bz, unsigned int smem, CUstream s, void **params, void **extra) {
    (void)params; (void)extra;
    return launch(f, GRID(gx, gy, gz), GRID(bx, by, bz), smem, s, 1, FN_cuLaunchKernel);
}
DRV cuLaunchCooperativeKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                              unsigned int by, unsigned int bz, unsigned int smem, CUstream s, void **params) {
    (void)params;
    return launch(f, GRID(gx, gy, gz), GRID(bx, by, bz), smem, s, 0, FN_cuLaunchCooperativeKernel);
}
DRV cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                                   unsigned int by, unsigned int bz, unsigned int smem, CUstream s, void **params) {
    (void)params;
    return launch(f, GRID(gx, gy, gz), GRID(bx, by, bz), smem, s, 1, FN_cuLaunchCooperativeKernel);
}

static CUresult launch_ex(const struct CUlaunchConfig *c, CUfunction f, int per_thread) {
    if (!c) return CUDA_ERROR_INVALID_VALUE;
    return launch(f, GRID(c->gridDimX, c->gridDimY, c->gridDimZ), GRID(c->blockDimX, c->blockDimY, c->blockDimZ),
                  c->sharedMemBytes, c->hStream, per_thread, FN_cuLaunchKernelEx);
}
DRV cuLaunchKernelEx(const struct CUlaunchConfig *c, CUfunction f, void **params, void **extra) {
    (void)params; (void)extra;
    return launch_ex(c, f, 0);
}
DRV cuLaunchKernelEx_ptsz(const struct CUlaunchConfig *c, CUfunction f, void **params, void **extra) {
    (void)params; (void)extra;
    return launch_ex(c, f, 1);
}
