/* The parts of the cuBLAS / cuBLASLt 13 ABI the shim needs (cublas_api.h, cublasLt.h), declared
 * here so the shim builds without the CUDA toolkit, and the GEMM path they share (gemm.c). Their
 * status codes are in cuda_errors.h. */
#ifndef REVATI_CUBLAS_TYPES_H
#define REVATI_CUBLAS_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include "cuda_types.h"
#include "shim_internal.h"

#define CUDART_VERSION_NUMBER 13000 /* the runtime cuBLAS 13 reports it was built with */

enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 };
enum { CUBLAS_POINTER_MODE_HOST = 0, CUBLAS_POINTER_MODE_DEVICE = 1 };
enum { CUBLAS_TF32_TENSOR_OP_MATH = 3 };
enum {
    CUDA_R_32F = 0, CUDA_R_64F = 1, CUDA_R_16F = 2, CUDA_C_32F = 4, CUDA_C_64F = 5,
    CUDA_R_32I = 10, CUDA_R_16BF = 14,
};
enum {
    CUBLAS_COMPUTE_16F = 64, CUBLAS_COMPUTE_16F_PEDANTIC = 65, CUBLAS_COMPUTE_32F = 68,
    CUBLAS_COMPUTE_32F_PEDANTIC = 69, CUBLAS_COMPUTE_64F = 70, CUBLAS_COMPUTE_64F_PEDANTIC = 71,
    CUBLAS_COMPUTE_32I = 72, CUBLAS_COMPUTE_32I_PEDANTIC = 73, CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
};
enum { CUBLASLT_EPILOGUE_DEFAULT = 1, CUBLASLT_EPILOGUE_BIAS = 4 };

/* A cublasHandle_t, which is also accepted as a cublasLtHandle_t (PyTorch passes one for the
 * other, as cuBLAS documents). */
#define BLAS_HANDLE_MAGIC 0x424c4153u
struct revati_blas_handle {
    uint32_t magic;
    int device;
    cudaStream_t stream;
    void *workspace;
    size_t workspace_bytes;
    int math_mode, pointer_mode, atomics_mode, sm_count_target;
};

struct revati_blas_handle *revati_blas_handle(void *h); /* NULL if not a handle */

/* A GEMM on `stream` (its shape filled in by the caller: m, n, k, batch, types, lds, strides,
 * kind and flags): a kernel launch on the stream, or a graph node while the stream is captured.
 * Returns a cublasStatus_t. */
cublasStatus_t revati_gemm_submit(struct revati_gemm_record *g, cudaStream_t stream, uint16_t fn);

/* Whether a host scalar of the compute type's scale type is non-zero (beta != 0: C is read). */
int revati_scalar_nonzero(const void *p, int scale_type);
/* The scale type (cudaDataType_t) of a compute type. */
int revati_scale_type_of(int compute);

#endif
