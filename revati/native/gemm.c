/*
 * The one path every library GEMM (cuBLAS, cuBLASLt) takes into the trace. The vendor libraries
 * carry their own runtime, so their kernels never reach the launch path: each GEMM call becomes
 * a REC_GEMM record (its shape) followed by a REC_LAUNCH record of a synthetic kernel named after
 * the call, `cublas_gemm_<type>_<op A><op B>` or `cublasLt_gemm_<type>_<op A><op B>[_<epilogue>]`
 * (e.g. `cublas_gemm_bf16_tn`, `cublasLt_gemm_bf16_tn_bias`), launched on the call's stream at its
 * virtual time with a launch's host cost; grid = 128x128 output tiles x batch, block = 256.
 * Inside stream capture it is a graph node carrying the same shape.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cublas_types.h"
#include "objects.h"

#define TILE 128u
#define GEMM_BLOCK 256u
#define NAME_SLOTS 512u

static const char *type_name(int t) {
    switch (t) {
#define TYPE_CASE(value, name) case value: return #name;
        REVATI_DATA_TYPES(TYPE_CASE)
#undef TYPE_CASE
    }
    return "unknown";
}

/* "" for no epilogue, else "_<name>" (REVATI_EPILOGUES), or "_epilogue<value>". */
static const char *epilogue_suffix(unsigned e, char *buf, size_t n) {
    if (e <= 1) return "";
    switch (e) {
#define EPILOGUE_CASE(value, name) case value: return "_" #name;
        REVATI_EPILOGUES(EPILOGUE_CASE)
#undef EPILOGUE_CASE
    }
    snprintf(buf, n, "_epilogue%u", e);
    return buf;
}

static int is_tf32(const struct revati_gemm_record *g) {
    return g->a_type == CUDA_R_32F && g->compute == CUBLAS_COMPUTE_32F_FAST_TF32;
}

/* Kernel-name ids of the synthetic kernels, by (Lt, TF32, A type, transposes, epilogue). */
static struct { uint32_t key, id; } g_names[NAME_SLOTS];
static pthread_mutex_t g_names_lock = PTHREAD_MUTEX_INITIALIZER;

static uint32_t name_key(const struct revati_gemm_record *g) {
    uint32_t lt = (g->kind & REC_GEMM_F_LT) ? 1u : 0u;
    return lt << 31 | (uint32_t)is_tf32(g) << 30 | (uint32_t)(g->a_type & 0x3f) << 24 |
           (uint32_t)(g->kind & 0xf) << 20 | (uint32_t)(g->epilogue & 0xffff) | 1u << 16;
}

static uint32_t register_name(const struct revati_gemm_record *g) {
    static const char ops[] = "ntc?";
    char name[96], epi[24];
    const char *type = is_tf32(g) ? "tf32" : type_name(g->a_type);
    snprintf(name, sizeof name, "%s_gemm_%s_%c%c%s", (g->kind & REC_GEMM_F_LT) ? "cublasLt" : "cublas",
             type, ops[g->kind & 3], ops[(g->kind >> 2) & 3],
             (g->kind & REC_GEMM_F_LT) ? epilogue_suffix(g->epilogue, epi, sizeof epi) : "");
    return revati_register_kernel_name(name);
}

static uint32_t kernel_id(const struct revati_gemm_record *g) {
    uint32_t key = name_key(g), i = (key * 0x9E3779B1u) >> 23;
    for (uint32_t n = 0; n < NAME_SLOTS; n++, i = (i + 1) & (NAME_SLOTS - 1)) {
        uint32_t k = __atomic_load_n(&g_names[i].key, __ATOMIC_ACQUIRE);
        if (k == key) return g_names[i].id;
        if (k) continue;
        pthread_mutex_lock(&g_names_lock);
        if (!g_names[i].key) {
            g_names[i].id = register_name(g);
            __atomic_store_n(&g_names[i].key, key, __ATOMIC_RELEASE);
        }
        pthread_mutex_unlock(&g_names_lock);
        if (g_names[i].key == key) return g_names[i].id;
    }
    return register_name(g); /* table full: a fresh name line, same text */
}

static uint32_t tiles(uint32_t x) { return x ? (x + TILE - 1) / TILE : 1; }

void revati_prefix_emit(const void *record, uint32_t thread) {
    uint64_t idx;
    struct revati_record *r = revati_ring_reserve(&idx);
    if (!r) return;
    /* everything but `commit`, which is written last */
    memcpy((char *)r + sizeof r->commit, (const char *)record + sizeof r->commit, sizeof *r - sizeof r->commit);
    r->thread = thread;
    revati_ring_commit(r, idx);
}

cublasStatus_t revati_gemm_submit(struct revati_gemm_record *g, cudaStream_t stream, uint16_t fn) {
    revati_ensure_init();
    struct revati_stream *obj;
    int64_t ref = revati_stream_ref(stream, 0, &obj);
    if (UNLIKELY(ref < 0)) return CUBLAS_STATUS_INVALID_VALUE;
    g->type = REC_GEMM;
    g->fn = fn;
    uint32_t batch = g->batch ? g->batch : 1;
    dim3 grid = {tiles(g->m), tiles(g->n) > 65535 ? 65535 : tiles(g->n), batch > 65535 ? 65535 : batch};
    dim3 block = {GEMM_BLOCK, 1, 1};
    uint32_t kernel = kernel_id(g);
    if (UNLIKELY(obj && obj->capture)) {
        struct graph_node n = {.type = REC_LAUNCH, .kernel = kernel, .grid = grid, .block = block, .gemm = *g};
        return capture_append(obj, &n) ? CUBLAS_STATUS_ALLOC_FAILED : CUBLAS_STATUS_SUCCESS;
    }
    revati_hostfn_gate(ref, fn);
    revati_prefix_emit(g, revati_thread_index());
    revati_launch_record(kernel, grid, block, 0, ref, fn);
    return CUBLAS_STATUS_SUCCESS;
}

int revati_scale_type_of(int compute) {
    switch (compute) {
    case CUBLAS_COMPUTE_16F: case CUBLAS_COMPUTE_16F_PEDANTIC: return CUDA_R_16F;
    case CUBLAS_COMPUTE_64F: case CUBLAS_COMPUTE_64F_PEDANTIC: case 79: return CUDA_R_64F;
    case CUBLAS_COMPUTE_32I: case CUBLAS_COMPUTE_32I_PEDANTIC: return CUDA_R_32I;
    }
    return compute < 64 ? compute : CUDA_R_32F; /* legacy calls pass a cudaDataType_t */
}

int revati_scalar_nonzero(const void *p, int scale_type) {
    if (!p) return 0;
    switch (scale_type) {
    case CUDA_R_16F: case CUDA_R_16BF: { uint16_t v; memcpy(&v, p, 2); return (v & 0x7fff) != 0; }
    case CUDA_R_64F: { double v; memcpy(&v, p, 8); return v != 0.0; }
    case CUDA_C_32F: { float v[2]; memcpy(v, p, 8); return v[0] != 0.0f || v[1] != 0.0f; }
    case CUDA_C_64F: { double v[2]; memcpy(v, p, 16); return v[0] != 0.0 || v[1] != 0.0; }
    case CUDA_R_32I: { int32_t v; memcpy(&v, p, 4); return v != 0; }
    }
    float v;
    memcpy(&v, p, 4);
    return v != 0.0f;
}
