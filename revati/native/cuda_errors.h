/* The error codes the shim returns, by name (values of CUDA 13's cudaError_t), listed once:
 * the enum and cudaGetErrorName are both made from REVATI_CUDA_ERRORS. A library layer that
 * answers with its own status type (cublasStatus_t, CUresult, nvmlReturn_t) declares its
 * values here too, so no file returns a bare number. */
#ifndef REVATI_CUDA_ERRORS_H
#define REVATI_CUDA_ERRORS_H

typedef int cudaError_t;

#define REVATI_CUDA_ERRORS(X)                    \
    X(cudaSuccess, 0)                            \
    X(cudaErrorInvalidValue, 1)                  \
    X(cudaErrorMemoryAllocation, 2)              \
    X(cudaErrorInitializationError, 3)           \
    X(cudaErrorInvalidConfiguration, 9)          \
    X(cudaErrorInvalidDevicePointer, 17)         \
    X(cudaErrorInvalidMemcpyDirection, 21)       \
    X(cudaErrorInvalidDeviceFunction, 98)        \
    X(cudaErrorNoDevice, 100)                    \
    X(cudaErrorInvalidDevice, 101)               \
    X(cudaErrorInvalidContext, 201)              \
    X(cudaErrorInvalidResourceHandle, 400)       \
    X(cudaErrorIllegalState, 401)                \
    X(cudaErrorNotReady, 600)                    \
    X(cudaErrorNotSupported, 801)                \
    X(cudaErrorStreamCaptureUnsupported, 900)    \
    X(cudaErrorStreamCaptureInvalidated, 901)    \
    X(cudaErrorStreamCaptureUnmatched, 903)      \
    X(cudaErrorStreamCaptureUnjoined, 904)       \
    X(cudaErrorStreamCaptureIsolation, 905)      \
    X(cudaErrorStreamCaptureWrongThread, 908)    \
    X(cudaErrorUnknown, 999)

/* CUresult, the driver API's status (cuda.h); cuGetErrorName is made from this list. */
#define REVATI_CU_RESULTS(X)                     \
    X(CUDA_SUCCESS, 0)                           \
    X(CUDA_ERROR_INVALID_VALUE, 1)               \
    X(CUDA_ERROR_OUT_OF_MEMORY, 2)               \
    X(CUDA_ERROR_NOT_INITIALIZED, 3)             \
    X(CUDA_ERROR_NO_DEVICE, 100)                 \
    X(CUDA_ERROR_INVALID_DEVICE, 101)            \
    X(CUDA_ERROR_INVALID_IMAGE, 200)             \
    X(CUDA_ERROR_INVALID_CONTEXT, 201)           \
    X(CUDA_ERROR_INVALID_HANDLE, 400)            \
    X(CUDA_ERROR_NOT_FOUND, 500)                 \
    X(CUDA_ERROR_NOT_READY, 600)                 \
    X(CUDA_ERROR_NOT_SUPPORTED, 801)             \
    X(CUDA_ERROR_UNKNOWN, 999)

/* nvmlReturn_t, NVML's status (nvml.h). */
#define REVATI_NVML_RETURNS(X)                   \
    X(NVML_SUCCESS, 0)                           \
    X(NVML_ERROR_UNINITIALIZED, 1)               \
    X(NVML_ERROR_INVALID_ARGUMENT, 2)            \
    X(NVML_ERROR_NOT_SUPPORTED, 3)               \
    X(NVML_ERROR_NOT_FOUND, 6)                   \
    X(NVML_ERROR_INSUFFICIENT_SIZE, 7)

#define REVATI_CUDA_ERROR_ENUM(name, value) name = value,
enum revati_cuda_error { REVATI_CUDA_ERRORS(REVATI_CUDA_ERROR_ENUM) };
enum revati_cu_result { REVATI_CU_RESULTS(REVATI_CUDA_ERROR_ENUM) };
enum revati_nvml_return { REVATI_NVML_RETURNS(REVATI_CUDA_ERROR_ENUM) };

/* cublasStatus_t: cuBLAS and cuBLASLt (cublas_api.h); cublasGetStatusName is made from it. */
typedef int cublasStatus_t;
#define REVATI_CUBLAS_STATUSES(X)                \
    X(CUBLAS_STATUS_SUCCESS, 0)                  \
    X(CUBLAS_STATUS_NOT_INITIALIZED, 1)          \
    X(CUBLAS_STATUS_ALLOC_FAILED, 3)             \
    X(CUBLAS_STATUS_INVALID_VALUE, 7)            \
    X(CUBLAS_STATUS_ARCH_MISMATCH, 8)            \
    X(CUBLAS_STATUS_MAPPING_ERROR, 11)           \
    X(CUBLAS_STATUS_EXECUTION_FAILED, 13)        \
    X(CUBLAS_STATUS_INTERNAL_ERROR, 14)          \
    X(CUBLAS_STATUS_NOT_SUPPORTED, 15)           \
    X(CUBLAS_STATUS_LICENSE_ERROR, 16)
enum revati_cublas_status { REVATI_CUBLAS_STATUSES(REVATI_CUDA_ERROR_ENUM) };
#undef REVATI_CUDA_ERROR_ENUM

/* NCCL's ncclResult_t */
enum revati_nccl_result {
    ncclSuccess = 0, ncclUnhandledCudaError = 1, ncclSystemError = 2, ncclInternalError = 3,
    ncclInvalidArgument = 4, ncclInvalidUsage = 5, ncclRemoteError = 6, ncclInProgress = 7,
};

#endif
