/*
 * cuBLASLt at its API: matrix layouts, matmul descriptors and preferences that remember their
 * attributes, a heuristic that returns one real result, and cublasLtMatmul as one kernel on its
 * stream (gemm.c) with the layouts' shape, the descriptor's transposes, types and epilogue.
 * A cublasHandle_t is accepted wherever a cublasLtHandle_t is (PyTorch relies on it).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "cublas_types.h"
#include "objects.h"

#define API REVATI_EXPORT cublasStatus_t
#define CUBLASLT_VERSION_NUMBER 130101
#define MAX_ATTRS 48

/* Every Lt descriptor: attribute values by id, as the program set them (up to 8 bytes each). */
#define LAYOUT_MAGIC 0x4c4c4159u
#define DESC_MAGIC 0x4c444553u
#define PREF_MAGIC 0x4c505246u
struct lt_object {
    uint32_t magic;
    uint64_t value[MAX_ATTRS];
    uint8_t size[MAX_ATTRS];
};

enum { LAYOUT_TYPE = 0, LAYOUT_ORDER = 1, LAYOUT_ROWS = 2, LAYOUT_COLS = 3, LAYOUT_LD = 4,
       LAYOUT_BATCH_COUNT = 5, LAYOUT_BATCH_STRIDE = 6 };
enum { DESC_COMPUTE = 0, DESC_SCALE_TYPE = 1, DESC_POINTER_MODE = 2, DESC_TRANSA = 3, DESC_TRANSB = 4,
       DESC_EPILOGUE = 7, DESC_BIAS_POINTER = 8, DESC_A_SCALE = 17, DESC_B_SCALE = 18, DESC_C_SCALE = 19,
       DESC_D_SCALE = 20, DESC_AMAX_D = 21 };
enum { PREF_MAX_WORKSPACE = 1 };

static void put(struct lt_object *o, int attr, uint64_t value, uint8_t size) {
    o->value[attr] = value;
    o->size[attr] = size;
}

static int64_t get(const struct lt_object *o, int attr) { return (int64_t)o->value[attr]; }

static struct lt_object *lt_new(uint32_t magic) {
    struct lt_object *o = calloc(1, sizeof *o);
    if (o) o->magic = magic;
    return o;
}

static struct lt_object *lt_of(void *p, uint32_t magic) {
    struct lt_object *o = p;
    return o && o->magic == magic ? o : NULL;
}

static cublasStatus_t lt_destroy(void *p, uint32_t magic) {
    struct lt_object *o = lt_of(p, magic);
    if (!o) return p ? CUBLAS_STATUS_INVALID_VALUE : CUBLAS_STATUS_SUCCESS;
    o->magic = 0;
    free(o);
    return CUBLAS_STATUS_SUCCESS;
}

static cublasStatus_t lt_set(void *p, uint32_t magic, int attr, const void *buf, size_t size) {
    struct lt_object *o = lt_of(p, magic);
    if (!o || !buf || attr < 0 || attr >= MAX_ATTRS || size == 0 || size > 8) return CUBLAS_STATUS_INVALID_VALUE;
    uint64_t v = 0;
    memcpy(&v, buf, size);
    if (size < 8 && (size == 4 || size == 2 || size == 1)) { /* sign-extend signed narrow values */
        int64_t s = size == 4 ? (int64_t)(int32_t)v : size == 2 ? (int64_t)(int16_t)v : (int64_t)(int8_t)v;
        if (s < 0) v = (uint64_t)s;
    }
    put(o, attr, v, (uint8_t)size);
    return CUBLAS_STATUS_SUCCESS;
}

static cublasStatus_t lt_get(void *p, uint32_t magic, int attr, void *buf, size_t size, size_t *written) {
    struct lt_object *o = lt_of(p, magic);
    if (!o || attr < 0 || attr >= MAX_ATTRS) return CUBLAS_STATUS_INVALID_VALUE;
    size_t need = o->size[attr] ? o->size[attr] : size < 8 && size ? size : 8; /* unset: zeros */
    if (size == 0 && written) { *written = need; return CUBLAS_STATUS_SUCCESS; }
    if (!buf || size < need) return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(buf, &o->value[attr], need);
    if (written) *written = need;
    return CUBLAS_STATUS_SUCCESS;
}

/* ---- handle, versions ---------------------------------------------------------------------- */

API cublasCreate_v2(void **handle);
API cublasDestroy_v2(void *handle);
API cublasLtCreate(void **handle) { return cublasCreate_v2(handle); }
API cublasLtDestroy(void *handle) { return cublasDestroy_v2(handle); }
REVATI_EXPORT size_t cublasLtGetVersion(void) { return CUBLASLT_VERSION_NUMBER; }
REVATI_EXPORT size_t cublasLtGetCudartVersion(void) { return CUDART_VERSION_NUMBER; }
API cublasLtGetProperty(int type, int *value) {
    static const int parts[3] = {CUBLASLT_VERSION_NUMBER / 10000, CUBLASLT_VERSION_NUMBER / 100 % 100,
                                 CUBLASLT_VERSION_NUMBER % 100};
    if (!value || type < 0 || type > 2) return CUBLAS_STATUS_INVALID_VALUE;
    *value = parts[type];
    return CUBLAS_STATUS_SUCCESS;
}
REVATI_EXPORT const char *cublasGetStatusName(cublasStatus_t status);
REVATI_EXPORT const char *cublasGetStatusString(cublasStatus_t status);
REVATI_EXPORT const char *cublasLtGetStatusName(cublasStatus_t s) { return cublasGetStatusName(s); }
REVATI_EXPORT const char *cublasLtGetStatusString(cublasStatus_t s) { return cublasGetStatusString(s); }
API cublasLtLoggerSetLevel(int level) { (void)level; return CUBLAS_STATUS_SUCCESS; }
API cublasLtLoggerSetMask(int mask) { (void)mask; return CUBLAS_STATUS_SUCCESS; }
API cublasLtLoggerForceDisable(void) { return CUBLAS_STATUS_SUCCESS; }

/* ---- matrix layouts ------------------------------------------------------------------------ */

API cublasLtMatrixLayoutCreate(void **out, int type, uint64_t rows, uint64_t cols, int64_t ld) {
    if (!out) return CUBLAS_STATUS_INVALID_VALUE;
    struct lt_object *o = lt_new(LAYOUT_MAGIC);
    if (!o) return CUBLAS_STATUS_ALLOC_FAILED;
    put(o, LAYOUT_TYPE, (uint64_t)type, 4);
    put(o, LAYOUT_ORDER, 0, 4);
    put(o, LAYOUT_ROWS, rows, 8);
    put(o, LAYOUT_COLS, cols, 8);
    put(o, LAYOUT_LD, (uint64_t)ld, 8);
    put(o, LAYOUT_BATCH_COUNT, 1, 4);
    put(o, LAYOUT_BATCH_STRIDE, 0, 8);
    *out = o;
    return CUBLAS_STATUS_SUCCESS;
}
API cublasLtMatrixLayoutDestroy(void *l) { return lt_destroy(l, LAYOUT_MAGIC); }
API cublasLtMatrixLayoutSetAttribute(void *l, int attr, const void *buf, size_t size) {
    return lt_set(l, LAYOUT_MAGIC, attr, buf, size);
}
API cublasLtMatrixLayoutGetAttribute(void *l, int attr, void *buf, size_t size, size_t *written) {
    return lt_get(l, LAYOUT_MAGIC, attr, buf, size, written);
}

/* ---- matmul descriptors and preferences ---------------------------------------------------- */

API cublasLtMatmulDescCreate(void **out, int compute, int scale_type) {
    if (!out) return CUBLAS_STATUS_INVALID_VALUE;
    struct lt_object *o = lt_new(DESC_MAGIC);
    if (!o) return CUBLAS_STATUS_ALLOC_FAILED;
    put(o, DESC_COMPUTE, (uint64_t)compute, 4);
    put(o, DESC_SCALE_TYPE, (uint64_t)scale_type, 4);
    put(o, DESC_POINTER_MODE, 0, 4);
    put(o, DESC_TRANSA, CUBLAS_OP_N, 4);
    put(o, DESC_TRANSB, CUBLAS_OP_N, 4);
    put(o, DESC_EPILOGUE, CUBLASLT_EPILOGUE_DEFAULT, 4);
    *out = o;
    return CUBLAS_STATUS_SUCCESS;
}
API cublasLtMatmulDescDestroy(void *d) { return lt_destroy(d, DESC_MAGIC); }
API cublasLtMatmulDescSetAttribute(void *d, int attr, const void *buf, size_t size) {
    return lt_set(d, DESC_MAGIC, attr, buf, size);
}
API cublasLtMatmulDescGetAttribute(void *d, int attr, void *buf, size_t size, size_t *written) {
    return lt_get(d, DESC_MAGIC, attr, buf, size, written);
}

API cublasLtMatmulPreferenceCreate(void **out) {
    if (!out) return CUBLAS_STATUS_INVALID_VALUE;
    struct lt_object *o = lt_new(PREF_MAGIC);
    if (!o) return CUBLAS_STATUS_ALLOC_FAILED;
    *out = o;
    return CUBLAS_STATUS_SUCCESS;
}
API cublasLtMatmulPreferenceDestroy(void *p) { return lt_destroy(p, PREF_MAGIC); }
API cublasLtMatmulPreferenceSetAttribute(void *p, int attr, const void *buf, size_t size) {
    return lt_set(p, PREF_MAGIC, attr, buf, size);
}
API cublasLtMatmulPreferenceGetAttribute(void *p, int attr, void *buf, size_t size, size_t *written) {
    return lt_get(p, PREF_MAGIC, attr, buf, size, written);
}

/* ---- the GEMM's shape from its descriptors ------------------------------------------------- */

static cublasStatus_t shape_of(void *desc, void *a, void *b, void *c, void *d, struct revati_gemm_record *g) {
    struct lt_object *op = lt_of(desc, DESC_MAGIC), *la = lt_of(a, LAYOUT_MAGIC), *lb = lt_of(b, LAYOUT_MAGIC);
    struct lt_object *lc = lt_of(c, LAYOUT_MAGIC), *ld = lt_of(d, LAYOUT_MAGIC);
    if (!ld) ld = lc;
    if (!op || !la || !lb || !ld) return CUBLAS_STATUS_INVALID_VALUE;
    int ta = (int)get(op, DESC_TRANSA) & 3, tb = (int)get(op, DESC_TRANSB) & 3;
    int64_t k = ta == CUBLAS_OP_N ? get(la, LAYOUT_COLS) : get(la, LAYOUT_ROWS);
    int64_t epilogue = get(op, DESC_EPILOGUE);
    memset(g, 0, sizeof *g);
    g->kind = (uint8_t)(ta | tb << 2 | REC_GEMM_F_LT);
    g->m = (uint32_t)get(ld, LAYOUT_ROWS);
    g->n = (uint32_t)get(ld, LAYOUT_COLS);
    g->k = (uint32_t)k;
    g->batch = (uint32_t)(get(ld, LAYOUT_BATCH_COUNT) > 0 ? get(ld, LAYOUT_BATCH_COUNT) : 1);
    g->lda = (uint32_t)get(la, LAYOUT_LD);
    g->ldb = (uint32_t)get(lb, LAYOUT_LD);
    g->ldc = (uint32_t)get(ld, LAYOUT_LD);
    g->stride_a = get(la, LAYOUT_BATCH_STRIDE);
    g->stride_b = get(lb, LAYOUT_BATCH_STRIDE);
    g->a_type = (uint8_t)get(la, LAYOUT_TYPE);
    g->b_type = (uint8_t)get(lb, LAYOUT_TYPE);
    g->c_type = (uint8_t)get(ld, LAYOUT_TYPE);
    g->compute = (uint8_t)get(op, DESC_COMPUTE);
    g->scale_type = (uint8_t)get(op, DESC_SCALE_TYPE);
    g->epilogue = (uint16_t)epilogue;
    if (epilogue & CUBLASLT_EPILOGUE_BIAS) g->flags |= REC_GEMM_X_BIAS;
    if (get(op, DESC_A_SCALE) || get(op, DESC_B_SCALE) || get(op, DESC_C_SCALE) || get(op, DESC_D_SCALE) ||
        get(op, DESC_AMAX_D))
        g->flags |= REC_GEMM_X_FP8_SCALES;
    return CUBLAS_STATUS_SUCCESS;
}

/* ---- algorithms ---------------------------------------------------------------------------- */

typedef struct { uint64_t data[8]; } lt_algo;
typedef struct {
    lt_algo algo;
    size_t workspace_size;
    cublasStatus_t state;
    float waves_count;
    int reserved[4];
} lt_heuristic_result;

#define ALGO_MAGIC 0x414c474f52455641ull /* "REVATGLA" */

static void algo_init(lt_algo *algo, int id) {
    memset(algo, 0, sizeof *algo);
    algo->data[0] = ALGO_MAGIC;
    algo->data[1] = (uint64_t)id;
}

static float waves(const struct revati_gemm_record *g) {
    double tiles = (double)((g->m + 127) / 128) * (double)((g->n + 127) / 128) * (g->batch ? g->batch : 1);
    int sms = g_cfg.dev.sm_count > 0 ? g_cfg.dev.sm_count : 1;
    return (float)(tiles / sms);
}

API cublasLtMatmulAlgoGetHeuristic(void *handle, void *desc, void *a, void *b, void *c, void *d, void *pref,
                                   int requested, lt_heuristic_result *results, int *returned) {
    revati_ensure_init();
    struct revati_gemm_record g;
    if (!revati_blas_handle(handle) || !returned || (requested > 0 && !results) || requested < 1 ||
        (pref && !lt_of(pref, PREF_MAGIC)))
        return CUBLAS_STATUS_INVALID_VALUE;
    cublasStatus_t st = shape_of(desc, a, b, c, d, &g);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    memset(results, 0, sizeof *results);
    algo_init(&results[0].algo, 0);
    results[0].workspace_size = 0;
    results[0].state = CUBLAS_STATUS_SUCCESS;
    results[0].waves_count = waves(&g);
    *returned = 1;
    return CUBLAS_STATUS_SUCCESS;
}

API cublasLtMatmulAlgoInit(void *handle, int compute, int scale, int at, int bt, int ct, int dt, int id,
                           lt_algo *algo) {
    (void)handle; (void)compute; (void)scale; (void)at; (void)bt; (void)ct; (void)dt;
    if (!algo) return CUBLAS_STATUS_INVALID_VALUE;
    algo_init(algo, id);
    return CUBLAS_STATUS_SUCCESS;
}

API cublasLtMatmulAlgoGetIds(void *handle, int compute, int scale, int at, int bt, int ct, int dt, int requested,
                             int *ids, int *returned) {
    (void)handle; (void)compute; (void)scale; (void)at; (void)bt; (void)ct; (void)dt;
    if (!returned || (requested > 0 && !ids)) return CUBLAS_STATUS_INVALID_VALUE;
    if (requested > 0) ids[0] = 0;
    *returned = requested > 0 ? 1 : 0;
    return CUBLAS_STATUS_SUCCESS;
}

API cublasLtMatmulAlgoCheck(void *handle, void *desc, void *a, void *b, void *c, void *d, const lt_algo *algo,
                            lt_heuristic_result *result) {
    struct revati_gemm_record g;
    if (!revati_blas_handle(handle) || !algo || !result || algo->data[0] != ALGO_MAGIC)
        return CUBLAS_STATUS_INVALID_VALUE;
    cublasStatus_t st = shape_of(desc, a, b, c, d, &g);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    memset(result, 0, sizeof *result);
    result->algo = *algo;
    result->state = CUBLAS_STATUS_SUCCESS;
    result->waves_count = waves(&g);
    return CUBLAS_STATUS_SUCCESS;
}

API cublasLtMatmulAlgoConfigSetAttribute(lt_algo *algo, int attr, const void *buf, size_t size) {
    if (!algo || !buf || attr < 0 || attr > 5 || size == 0 || size > 8) return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(&algo->data[2 + attr], buf, size); /* data[1] keeps the id (attribute 0, read-only) */
    return CUBLAS_STATUS_SUCCESS;
}

API cublasLtMatmulAlgoConfigGetAttribute(const lt_algo *algo, int attr, void *buf, size_t size, size_t *written) {
    if (!algo || attr < 0 || attr > 5) return CUBLAS_STATUS_INVALID_VALUE;
    if (size == 0 && written) { *written = 4; return CUBLAS_STATUS_SUCCESS; }
    if (!buf || size < 4) return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(buf, attr == 0 ? &algo->data[1] : &algo->data[2 + attr], 4);
    if (written) *written = 4;
    return CUBLAS_STATUS_SUCCESS;
}

/* ---- the matmul ---------------------------------------------------------------------------- */

API cublasLtMatmul(void *handle, void *desc, const void *alpha, const void *A, void *a, const void *B, void *b,
                   const void *beta, const void *C, void *c, void *D, void *d, const lt_algo *algo,
                   void *workspace, size_t workspace_bytes, cudaStream_t stream) {
    (void)alpha; (void)A; (void)B; (void)C; (void)D; (void)algo; (void)workspace; (void)workspace_bytes;
    if (UNLIKELY(!revati_blas_handle(handle))) return CUBLAS_STATUS_NOT_INITIALIZED;
    struct revati_gemm_record g;
    cublasStatus_t st = shape_of(desc, a, b, c, d, &g);
    if (UNLIKELY(st != CUBLAS_STATUS_SUCCESS)) return st;
    if (g.m == 0 || g.n == 0) return CUBLAS_STATUS_SUCCESS;
    int64_t pointer_mode = get((struct lt_object *)desc, DESC_POINTER_MODE);
    if (pointer_mode != CUBLAS_POINTER_MODE_HOST) g.flags |= REC_GEMM_X_DEVICE_SCALARS;
    else if (revati_scalar_nonzero(beta, g.scale_type)) g.flags |= REC_GEMM_X_BETA;
    return revati_gemm_submit(&g, stream, FN_cublasLtMatmul);
}
