// cuBLAS and cuBLASLt GEMMs, built with gcc against the real headers and linked against the
// real libcublas/libcublasLt and libcudart (as applications are), run under `revati record`.
// Modes print key=value lines the tests compare with the trace.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CHECK(x)                                                                              \
    do {                                                                                      \
        int rc_ = (int)(x);                                                                   \
        if (rc_ != 0) {                                                                       \
            fprintf(stderr, "%s:%d: %s returned %d\n", __FILE__, __LINE__, #x, rc_);          \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

static void *device(size_t bytes) {
    void *p;
    CHECK(cudaMalloc(&p, bytes));
    return p;
}

// One GEMM of each kind, in order, on a stream of its own; events around the fp16 GemmEx, which
// a long Sgemm before it keeps from starting early (so the events measure it alone).
static int gemms(void) {
    cublasHandle_t h;
    cudaStream_t s;
    cudaEvent_t e0, e1;
    CHECK(cublasCreate(&h));
    CHECK(cudaStreamCreate(&s));
    CHECK(cublasSetStream(h, s));
    void *ws = device(32 << 20);
    CHECK(cublasSetWorkspace(h, ws, 32 << 20));
    CHECK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
    int version = 0;
    CHECK(cublasGetVersion(h, &version));
    void *a = device(64 << 20), *b = device(64 << 20), *c = device(64 << 20), *bias = device(1 << 16);
    float one = 1.0f, zero = 0.0f;
    CHECK(cudaEventCreate(&e0));
    CHECK(cudaEventCreate(&e1));

    // 0. fp32 Sgemm 8192^3 (alpha and beta in device memory)
    float *scalars = device(16);
    CHECK(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_DEVICE));
    CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 8192, 8192, 8192, scalars, a, 8192, b, 8192, scalars + 1, c,
                      8192));
    CHECK(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST));
    // 1. fp16 GemmEx, A transposed: m=4096 n=2048 k=1024, between two events
    CHECK(cudaEventRecord(e0, s));
    CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, 4096, 2048, 1024, &one, a, CUDA_R_16F, 1024, b, CUDA_R_16F,
                       1024, &zero, c, CUDA_R_16F, 4096, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    CHECK(cudaEventRecord(e1, s));
    // 2. bf16 GemmEx with beta = 1
    CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 1024, 1024, 4096, &one, a, CUDA_R_16BF, 1024, b, CUDA_R_16BF,
                       4096, &one, c, CUDA_R_16BF, 1024, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    // 3. fp32 Sgemm
    CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, 512, 256, 128, &one, a, 512, b, 256, &zero, c, 512));
    // 4. bf16 strided batched: 8 x (256 x 512 x 64)
    CHECK(cublasGemmStridedBatchedEx(h, CUBLAS_OP_T, CUBLAS_OP_N, 256, 512, 64, &one, a, CUDA_R_16BF, 64,
                                     256 * 64, b, CUDA_R_16BF, 64, 512 * 64, &zero, c, CUDA_R_16BF, 256,
                                     256 * 512, 8, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    // 5. cuBLASLt bf16 with a bias epilogue: D (2048 x 768) = A^T (2048 x 4096) B (4096 x 768) + bias
    cublasLtHandle_t lt;
    CHECK(cublasLtCreate(&lt));
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    CHECK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T;
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    cublasLtEpilogue_t back = 0;
    size_t written = 0;
    CHECK(cublasLtMatmulDescGetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &back, sizeof back, &written));
    if (back != epi || written != sizeof epi) return 3;
    CHECK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, 4096, 2048, 4096));
    CHECK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, 4096, 768, 4096));
    CHECK(cublasLtMatrixLayoutCreate(&lc, CUDA_R_16BF, 2048, 768, 2048));
    cublasLtMatmulPreference_t pref;
    CHECK(cublasLtMatmulPreferenceCreate(&pref));
    size_t max_ws = 32 << 20;
    CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws,
                                               sizeof max_ws));
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    CHECK(cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 1, &result, &found));
    if (found != 1 || result.state != CUBLAS_STATUS_SUCCESS) return 4;
    CHECK(cublasLtMatmul(lt, op, &one, a, la, b, lb, &zero, c, lc, c, lc, &result.algo, ws, max_ws, s));
    // 6. the same Lt matmul through a cublasHandle_t (as PyTorch passes it), batch 4 strided
    int32_t batch = 4;
    int64_t stride = 4096LL * 2048;
    CHECK(cublasLtMatrixLayoutSetAttribute(la, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch));
    CHECK(cublasLtMatrixLayoutSetAttribute(la, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                           sizeof stride));
    CHECK(cublasLtMatrixLayoutSetAttribute(lb, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch));
    CHECK(cublasLtMatrixLayoutSetAttribute(lc, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch));
    CHECK(cublasLtMatmul((cublasLtHandle_t)h, op, &one, a, la, b, lb, &zero, c, lc, c, lc, NULL, ws, max_ws, s));

    // 7. cuBLASLt fp8 (e4m3) inputs, bf16 output, per-tensor scales, GELU + bias epilogue
    cublasLtMatmulDesc_t op8;
    cublasLtMatrixLayout_t a8, b8, d8;
    CHECK(cublasLtMatmulDescCreate(&op8, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasLtEpilogue_t gelu_bias = CUBLASLT_EPILOGUE_GELU_BIAS;
    void *scale_a = scalars, *scale_b = scalars + 1;
    CHECK(cublasLtMatmulDescSetAttribute(op8, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CHECK(cublasLtMatmulDescSetAttribute(op8, CUBLASLT_MATMUL_DESC_EPILOGUE, &gelu_bias, sizeof gelu_bias));
    CHECK(cublasLtMatmulDescSetAttribute(op8, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    CHECK(cublasLtMatmulDescSetAttribute(op8, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &scale_a, sizeof scale_a));
    CHECK(cublasLtMatmulDescSetAttribute(op8, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &scale_b, sizeof scale_b));
    CHECK(cublasLtMatrixLayoutCreate(&a8, CUDA_R_8F_E4M3, 8192, 4096, 8192));
    CHECK(cublasLtMatrixLayoutCreate(&b8, CUDA_R_8F_E4M3, 8192, 1024, 8192));
    CHECK(cublasLtMatrixLayoutCreate(&d8, CUDA_R_16BF, 4096, 1024, 4096));
    CHECK(cublasLtMatmul(lt, op8, &one, a, a8, b, b8, &zero, c, d8, c, d8, NULL, ws, max_ws, s));

    CHECK(cudaStreamSynchronize(s));
    float ms = 0;
    CHECK(cudaEventElapsedTime(&ms, e0, e1));
    printf("version=%d\nelapsed_ns=%.1f\nstream=%#lx\n", version, ms * 1e6, (unsigned long)(uintptr_t)s);
    // an unemulated cuBLAS call is recorded and answers CUBLAS_STATUS_NOT_SUPPORTED
    float result_dot = 0;
    printf("sdot=%d\n", (int)cublasSdot(h, 16, (float *)a, 1, (float *)b, 1, &result_dot));
    CHECK(cublasLtMatmulPreferenceDestroy(pref));
    CHECK(cublasLtMatrixLayoutDestroy(la));
    CHECK(cublasLtMatrixLayoutDestroy(lb));
    CHECK(cublasLtMatrixLayoutDestroy(lc));
    CHECK(cublasLtMatmulDescDestroy(op));
    CHECK(cublasLtDestroy(lt));
    CHECK(cublasDestroy(h));
    return 0;
}

// A GEMM captured into a CUDA graph, replayed three times.
static int capture(void) {
    cublasHandle_t h;
    cudaStream_t s;
    cudaGraph_t g;
    cudaGraphExec_t exec;
    CHECK(cublasCreate(&h));
    CHECK(cudaStreamCreate(&s));
    CHECK(cublasSetStream(h, s));
    void *a = device(64 << 20), *b = device(64 << 20), *c = device(64 << 20);
    float one = 1.0f, zero = 0.0f;
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, 3072, 1024, 2048, &one, a, CUDA_R_16BF, 2048, b, CUDA_R_16BF,
                       2048, &zero, c, CUDA_R_16BF, 3072, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    CHECK(cudaStreamEndCapture(s, &g));
    CHECK(cudaGraphInstantiate(&exec, g, 0));
    for (int i = 0; i < 3; i++) CHECK(cudaGraphLaunch(exec, s));
    CHECK(cudaStreamSynchronize(s));
    printf("replays=3\n");
    return 0;
}

static double real_s(void) {
    struct timespec ts;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Host cost of one intercepted GEMM call (real ns), median of batches of 1,000, for
// cublasGemmEx ("gemm") and cublasLtMatmul ("lt").
static int gemmcost(int n) {
    enum { BATCH = 1000 };
    cublasHandle_t h;
    CHECK(cublasCreate(&h));
    void *a = device(1 << 20);
    float one = 1.0f, zero = 0.0f;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t l;
    CHECK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    CHECK(cublasLtMatrixLayoutCreate(&l, CUDA_R_16BF, 4096, 4096, 4096));
    int batches = n / BATCH > 0 ? n / BATCH : 1;
    double *gemm_ns = malloc(batches * sizeof(double)), *lt_ns = malloc(batches * sizeof(double));
    for (int b = 0; b < batches; b++) {
        double start = real_s();
        for (int i = 0; i < BATCH; i++)
            cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, 4096, 4096, 4096, &one, a, CUDA_R_16BF, 4096, a, CUDA_R_16BF,
                         4096, &zero, a, CUDA_R_16BF, 4096, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        double mid = real_s();
        for (int i = 0; i < BATCH; i++)
            cublasLtMatmul((cublasLtHandle_t)h, op, &one, a, l, a, l, &zero, a, l, a, l, NULL, NULL, 0, 0);
        gemm_ns[b] = (mid - start) * 1e9 / BATCH;
        lt_ns[b] = (real_s() - mid) * 1e9 / BATCH;
    }
    CHECK(cudaDeviceSynchronize());
    qsort(gemm_ns, batches, sizeof(double), by_value);
    qsort(lt_ns, batches, sizeof(double), by_value);
    printf("calls=%d\ngemm_median_ns=%.1f\ngemm_min_ns=%.1f\nlt_median_ns=%.1f\nlt_min_ns=%.1f\n", batches * BATCH,
           gemm_ns[batches / 2], gemm_ns[0], lt_ns[batches / 2], lt_ns[0]);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "gemms";
    if (!strcmp(mode, "gemms")) return gemms();
    if (!strcmp(mode, "capture")) return capture();
    if (!strcmp(mode, "gemmcost")) return gemmcost(argc > 2 ? atoi(argv[2]) : 50000);
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
