/*
 * cuBLAS at its API: handles, streams, workspaces, math and pointer modes, and the GEMMs
 * (cublasGemmEx, the batched and strided-batched forms, the typed S/D/C/Z/H variants, gemv as a
 * GEMM with n = 1), each of which becomes one kernel on its stream (gemm.c). cuBLAS carries its
 * own static runtime, so the real library, though loaded, is never initialised: every function
 * of it that PyTorch imports is defined here or by a generated stub (entry_points.tsv).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "cublas_types.h"
#include "objects.h"

#define API REVATI_EXPORT cublasStatus_t
#define CUBLAS_VERSION_NUMBER 130101 /* 13.1.1, the cuBLAS that CUDA 13 PyTorch ships with */

struct revati_blas_handle *revati_blas_handle(void *h) {
    struct revati_blas_handle *b = h;
    return b && b->magic == BLAS_HANDLE_MAGIC ? b : NULL;
}

/* ---- handles and modes --------------------------------------------------------------------- */

API cublasCreate_v2(void **handle) {
    revati_ensure_init();
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    struct revati_blas_handle *b = calloc(1, sizeof *b);
    if (!b) return CUBLAS_STATUS_ALLOC_FAILED;
    b->magic = BLAS_HANDLE_MAGIC;
    b->device = revati_current_device();
    *handle = b;
    return CUBLAS_STATUS_SUCCESS;
}

API cublasDestroy_v2(void *handle) {
    struct revati_blas_handle *b = revati_blas_handle(handle);
    if (!b) return CUBLAS_STATUS_NOT_INITIALIZED;
    b->magic = 0;
    free(b);
    return CUBLAS_STATUS_SUCCESS;
}

API cublasGetVersion_v2(void *handle, int *version) {
    (void)handle;
    if (!version) return CUBLAS_STATUS_INVALID_VALUE;
    *version = CUBLAS_VERSION_NUMBER;
    return CUBLAS_STATUS_SUCCESS;
}

/* libraryPropertyType: 0 major, 1 minor, 2 patch */
API cublasGetProperty(int type, int *value) {
    static const int parts[3] = {CUBLAS_VERSION_NUMBER / 10000, CUBLAS_VERSION_NUMBER / 100 % 100,
                                 CUBLAS_VERSION_NUMBER % 100};
    if (!value || type < 0 || type > 2) return CUBLAS_STATUS_INVALID_VALUE;
    *value = parts[type];
    return CUBLAS_STATUS_SUCCESS;
}

REVATI_EXPORT size_t cublasGetCudartVersion(void) { return CUDART_VERSION_NUMBER; }

API cublasSetStream_v2(void *handle, cudaStream_t stream) {
    struct revati_blas_handle *b = revati_blas_handle(handle);
    struct revati_stream *obj;
    if (!b) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (revati_stream_ref(stream, 0, &obj) < 0) return CUBLAS_STATUS_INVALID_VALUE;
    b->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

API cublasGetStream_v2(void *handle, cudaStream_t *stream) {
    struct revati_blas_handle *b = revati_blas_handle(handle);
    if (!b) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!stream) return CUBLAS_STATUS_INVALID_VALUE;
    *stream = b->stream;
    return CUBLAS_STATUS_SUCCESS;
}

API cublasSetWorkspace_v2(void *handle, void *workspace, size_t bytes) {
    struct revati_blas_handle *b = revati_blas_handle(handle);
    if (!b) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (bytes && !workspace) return CUBLAS_STATUS_INVALID_VALUE;
    b->workspace = workspace;
    b->workspace_bytes = bytes;
    return CUBLAS_STATUS_SUCCESS;
}

/* Set/Get pairs of one int field of the handle. */
#define HANDLE_INT_FIELD(set_name, get_name, field)                                              \
    API set_name(void *handle, int value) {                                                      \
        struct revati_blas_handle *b = revati_blas_handle(handle);                               \
        if (!b) return CUBLAS_STATUS_NOT_INITIALIZED;                                            \
        b->field = value;                                                                        \
        return CUBLAS_STATUS_SUCCESS;                                                            \
    }                                                                                            \
    API get_name(void *handle, int *value) {                                                     \
        struct revati_blas_handle *b = revati_blas_handle(handle);                               \
        if (!b) return CUBLAS_STATUS_NOT_INITIALIZED;                                            \
        if (!value) return CUBLAS_STATUS_INVALID_VALUE;                                          \
        *value = b->field;                                                                       \
        return CUBLAS_STATUS_SUCCESS;                                                            \
    }
HANDLE_INT_FIELD(cublasSetMathMode, cublasGetMathMode, math_mode)
HANDLE_INT_FIELD(cublasSetPointerMode_v2, cublasGetPointerMode_v2, pointer_mode)
HANDLE_INT_FIELD(cublasSetAtomicsMode, cublasGetAtomicsMode, atomics_mode)
HANDLE_INT_FIELD(cublasSetSmCountTarget, cublasGetSmCountTarget, sm_count_target)

REVATI_EXPORT const char *cublasGetStatusName(cublasStatus_t status) {
    switch (status) {
#define STATUS_CASE(name, value) case name: return #name;
        REVATI_CUBLAS_STATUSES(STATUS_CASE)
#undef STATUS_CASE
    }
    return "CUBLAS_STATUS_UNKNOWN";
}
REVATI_EXPORT const char *cublasGetStatusString(cublasStatus_t status) {
    if (status == CUBLAS_STATUS_NOT_SUPPORTED) return "the functionality requested is not supported (not emulated by revati)";
    return cublasGetStatusName(status);
}

/* ---- GEMMs --------------------------------------------------------------------------------- */

/* What every GEMM entry point passes on: operands as cuBLAS sees them (column major). */
struct gemm_call {
    uint16_t fn;
    int transa, transb;
    int64_t m, n, k, lda, ldb, ldc, stride_a, stride_b, batch;
    int a_type, c_type, compute;
    const void *beta;
    int ptr_array;
};

static uint32_t clamp32(int64_t v) { return v < 0 ? 0 : v > 0xffffffffLL ? 0xffffffffu : (uint32_t)v; }

static cublasStatus_t gemm(void *handle, const struct gemm_call *c) {
    struct revati_blas_handle *b = revati_blas_handle(handle);
    if (UNLIKELY(!b)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (UNLIKELY(c->m < 0 || c->n < 0 || c->k < 0 || c->batch < 0 || c->transa > 2 || c->transb > 2 ||
                 c->transa < 0 || c->transb < 0))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (c->m == 0 || c->n == 0 || c->batch == 0) return CUBLAS_STATUS_SUCCESS; /* nothing to do */
    int compute = c->compute;
    if (c->a_type == CUDA_R_32F && compute == CUBLAS_COMPUTE_32F && (b->math_mode & 0xf) == CUBLAS_TF32_TENSOR_OP_MATH)
        compute = CUBLAS_COMPUTE_32F_FAST_TF32;
    int scale = revati_scale_type_of(compute);
    struct revati_gemm_record g = {
        .kind = (uint8_t)(c->transa | c->transb << 2 | (c->ptr_array ? REC_GEMM_F_PTR_ARRAY : 0)),
        .m = clamp32(c->m), .n = clamp32(c->n), .k = clamp32(c->k), .batch = clamp32(c->batch),
        .lda = clamp32(c->lda), .ldb = clamp32(c->ldb), .ldc = clamp32(c->ldc),
        .stride_a = c->stride_a, .stride_b = c->stride_b,
        .a_type = (uint8_t)c->a_type, .b_type = (uint8_t)c->a_type, .c_type = (uint8_t)c->c_type,
        .compute = (uint8_t)compute, .scale_type = (uint8_t)scale, .epilogue = CUBLASLT_EPILOGUE_DEFAULT,
    };
    if (b->pointer_mode == CUBLAS_POINTER_MODE_DEVICE) g.flags |= REC_GEMM_X_DEVICE_SCALARS;
    else if (revati_scalar_nonzero(c->beta, scale)) g.flags |= REC_GEMM_X_BETA;
    return revati_gemm_submit(&g, b->stream, c->fn);
}

/* The typed GEMMs: element type t (cudaDataType_t), compute type ct. */
#define TYPED_GEMMS(P, T, t, ct, ctype_suffix)                                                            \
    API cublas##P##gemm##ctype_suffix(void *h, int ta, int tb, int m, int n, int k, const T *alpha,        \
                                      const T *A, int lda, const T *B, int ldb, const T *beta, T *C,      \
                                      int ldc) {                                                           \
        (void)alpha; (void)A; (void)B; (void)C;                                                            \
        struct gemm_call c = {FN_cublas##P##gemm##ctype_suffix, ta, tb, m, n, k, lda, ldb, ldc, 0, 0, 1,    \
                              t, t, ct, beta, 0};                                                          \
        return gemm(h, &c);                                                                                \
    }                                                                                                      \
    API cublas##P##gemm##ctype_suffix##_64(void *h, int ta, int tb, int64_t m, int64_t n, int64_t k,        \
                                           const T *alpha, const T *A, int64_t lda, const T *B,             \
                                           int64_t ldb, const T *beta, T *C, int64_t ldc) {                \
        (void)alpha; (void)A; (void)B; (void)C;                                                            \
        struct gemm_call c = {FN_cublas##P##gemm##ctype_suffix, ta, tb, m, n, k, lda, ldb, ldc, 0, 0, 1,    \
                              t, t, ct, beta, 0};                                                          \
        return gemm(h, &c);                                                                                \
    }                                                                                                      \
    API cublas##P##gemmStridedBatched(void *h, int ta, int tb, int m, int n, int k, const T *alpha,        \
                                      const T *A, int lda, long long sa, const T *B, int ldb,               \
                                      long long sb, const T *beta, T *C, int ldc, long long sc,             \
                                      int batch) {                                                         \
        (void)alpha; (void)A; (void)B; (void)C; (void)sc;                                                  \
        struct gemm_call c = {FN_cublas##P##gemmStridedBatched, ta, tb, m, n, k, lda, ldb, ldc, sa, sb,     \
                              batch, t, t, ct, beta, 0};                                                   \
        return gemm(h, &c);                                                                                \
    }                                                                                                      \
    API cublas##P##gemmStridedBatched_64(void *h, int ta, int tb, int64_t m, int64_t n, int64_t k,          \
                                         const T *alpha, const T *A, int64_t lda, long long sa,             \
                                         const T *B, int64_t ldb, long long sb, const T *beta, T *C,       \
                                         int64_t ldc, long long sc, int64_t batch) {                       \
        (void)alpha; (void)A; (void)B; (void)C; (void)sc;                                                  \
        struct gemm_call c = {FN_cublas##P##gemmStridedBatched, ta, tb, m, n, k, lda, ldb, ldc, sa, sb,     \
                              batch, t, t, ct, beta, 0};                                                   \
        return gemm(h, &c);                                                                                \
    }                                                                                                      \
    API cublas##P##gemmBatched(void *h, int ta, int tb, int m, int n, int k, const T *alpha,               \
                               const T *const A[], int lda, const T *const B[], int ldb, const T *beta,    \
                               T *const C[], int ldc, int batch) {                                         \
        (void)alpha; (void)A; (void)B; (void)C;                                                            \
        struct gemm_call c = {FN_cublas##P##gemmBatched, ta, tb, m, n, k, lda, ldb, ldc, 0, 0, batch,       \
                              t, t, ct, beta, 1};                                                          \
        return gemm(h, &c);                                                                                \
    }                                                                                                      \
    API cublas##P##gemmBatched_64(void *h, int ta, int tb, int64_t m, int64_t n, int64_t k,                 \
                                  const T *alpha, const T *const A[], int64_t lda, const T *const B[],      \
                                  int64_t ldb, const T *beta, T *const C[], int64_t ldc, int64_t batch) {  \
        (void)alpha; (void)A; (void)B; (void)C;                                                            \
        struct gemm_call c = {FN_cublas##P##gemmBatched, ta, tb, m, n, k, lda, ldb, ldc, 0, 0, batch,       \
                              t, t, ct, beta, 1};                                                          \
        return gemm(h, &c);                                                                                \
    }

typedef struct { float x, y; } complex_float;
typedef struct { double x, y; } complex_double;
typedef uint16_t half_bits;

TYPED_GEMMS(S, float, CUDA_R_32F, CUBLAS_COMPUTE_32F, _v2)
TYPED_GEMMS(D, double, CUDA_R_64F, CUBLAS_COMPUTE_64F, _v2)
TYPED_GEMMS(C, complex_float, CUDA_C_32F, CUBLAS_COMPUTE_32F, _v2)
TYPED_GEMMS(Z, complex_double, CUDA_C_64F, CUBLAS_COMPUTE_64F, _v2)
TYPED_GEMMS(H, half_bits, CUDA_R_16F, CUBLAS_COMPUTE_16F, )

API cublasGemmEx(void *h, int ta, int tb, int m, int n, int k, const void *alpha, const void *A, int at, int lda,
                 const void *B, int bt, int ldb, const void *beta, void *C, int ctype, int ldc, int compute, int algo) {
    (void)alpha; (void)A; (void)B; (void)C; (void)bt; (void)algo;
    struct gemm_call c = {FN_cublasGemmEx, ta, tb, m, n, k, lda, ldb, ldc, 0, 0, 1, at, ctype, compute, beta, 0};
    return gemm(h, &c);
}
API cublasGemmEx_64(void *h, int ta, int tb, int64_t m, int64_t n, int64_t k, const void *alpha, const void *A,
                    int at, int64_t lda, const void *B, int bt, int64_t ldb, const void *beta, void *C, int ctype,
                    int64_t ldc, int compute, int algo) {
    (void)alpha; (void)A; (void)B; (void)C; (void)bt; (void)algo;
    struct gemm_call c = {FN_cublasGemmEx, ta, tb, m, n, k, lda, ldb, ldc, 0, 0, 1, at, ctype, compute, beta, 0};
    return gemm(h, &c);
}

API cublasSgemmEx(void *h, int ta, int tb, int m, int n, int k, const float *alpha, const void *A, int at, int lda,
                  const void *B, int bt, int ldb, const float *beta, void *C, int ctype, int ldc) {
    (void)alpha; (void)A; (void)B; (void)C; (void)bt;
    struct gemm_call c = {FN_cublasSgemmEx, ta, tb, m, n, k, lda, ldb, ldc, 0, 0, 1, at, ctype, CUBLAS_COMPUTE_32F,
                          beta, 0};
    return gemm(h, &c);
}

API cublasGemmStridedBatchedEx(void *h, int ta, int tb, int m, int n, int k, const void *alpha, const void *A,
                               int at, int lda, long long sa, const void *B, int bt, int ldb, long long sb,
                               const void *beta, void *C, int ctype, int ldc, long long sc, int batch, int compute,
                               int algo) {
    (void)alpha; (void)A; (void)B; (void)C; (void)bt; (void)sc; (void)algo;
    struct gemm_call c = {FN_cublasGemmStridedBatchedEx, ta, tb, m, n, k, lda, ldb, ldc, sa, sb, batch, at, ctype,
                          compute, beta, 0};
    return gemm(h, &c);
}
API cublasGemmStridedBatchedEx_64(void *h, int ta, int tb, int64_t m, int64_t n, int64_t k, const void *alpha,
                                  const void *A, int at, int64_t lda, long long sa, const void *B, int bt,
                                  int64_t ldb, long long sb, const void *beta, void *C, int ctype, int64_t ldc,
                                  long long sc, int64_t batch, int compute, int algo) {
    (void)alpha; (void)A; (void)B; (void)C; (void)bt; (void)sc; (void)algo;
    struct gemm_call c = {FN_cublasGemmStridedBatchedEx, ta, tb, m, n, k, lda, ldb, ldc, sa, sb, batch, at, ctype,
                          compute, beta, 0};
    return gemm(h, &c);
}

API cublasGemmBatchedEx(void *h, int ta, int tb, int m, int n, int k, const void *alpha, const void *const A[],
                        int at, int lda, const void *const B[], int bt, int ldb, const void *beta, void *const C[],
                        int ctype, int ldc, int batch, int compute, int algo) {
    (void)alpha; (void)A; (void)B; (void)C; (void)bt; (void)algo;
    struct gemm_call c = {FN_cublasGemmBatchedEx, ta, tb, m, n, k, lda, ldb, ldc, 0, 0, batch, at, ctype, compute,
                          beta, 1};
    return gemm(h, &c);
}
API cublasGemmBatchedEx_64(void *h, int ta, int tb, int64_t m, int64_t n, int64_t k, const void *alpha,
                           const void *const A[], int at, int64_t lda, const void *const B[], int bt, int64_t ldb,
                           const void *beta, void *const C[], int ctype, int64_t ldc, int64_t batch, int compute,
                           int algo) {
    (void)alpha; (void)A; (void)B; (void)C; (void)bt; (void)algo;
    struct gemm_call c = {FN_cublasGemmBatchedEx, ta, tb, m, n, k, lda, ldb, ldc, 0, 0, batch, at, ctype, compute,
                          beta, 1};
    return gemm(h, &c);
}

/* y = op(A) x as the GEMM (op(A) rows) x 1 x (op(A) cols). */
#define TYPED_GEMV(P, T, t, ct)                                                                             \
    API cublas##P##gemv_v2(void *h, int trans, int m, int n, const T *alpha, const T *A, int lda,           \
                           const T *x, int incx, const T *beta, T *y, int incy) {                           \
        (void)alpha; (void)A; (void)x; (void)incx; (void)y; (void)incy;                                    \
        int64_t rows = trans == CUBLAS_OP_N ? m : n, cols = trans == CUBLAS_OP_N ? n : m;                   \
        struct gemm_call c = {FN_cublas##P##gemv_v2, trans, CUBLAS_OP_N, rows, 1, cols, lda, cols, rows, 0, \
                              0, 1, t, t, ct, beta, 0};                                                     \
        return gemm(h, &c);                                                                                 \
    }
TYPED_GEMV(S, float, CUDA_R_32F, CUBLAS_COMPUTE_32F)
TYPED_GEMV(D, double, CUDA_R_64F, CUBLAS_COMPUTE_64F)
