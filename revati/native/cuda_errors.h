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

#define REVATI_CUDA_ERROR_ENUM(name, value) name = value,
enum revati_cuda_error { REVATI_CUDA_ERRORS(REVATI_CUDA_ERROR_ENUM) };
#undef REVATI_CUDA_ERROR_ENUM

/* NCCL's ncclResult_t */
enum revati_nccl_result {
    ncclSuccess = 0, ncclUnhandledCudaError = 1, ncclSystemError = 2, ncclInternalError = 3,
    ncclInvalidArgument = 4, ncclInvalidUsage = 5, ncclRemoteError = 6, ncclInProgress = 7,
};

#endif
