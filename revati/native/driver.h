/* The parts of the CUDA driver ABI (cuda.h, CUDA 13.0) the shim's driver layer needs, declared
 * here so the shim builds without the toolkit, and what driver*.c share. The driver layer lives
 * in the shim itself: a CUstream is a cudaStream_t, a CUevent a cudaEvent_t, a CUdeviceptr an
 * address of the shim's device range, so objects made by either API are valid in the other. */
#ifndef REVATI_DRIVER_H
#define REVATI_DRIVER_H

#include <stdint.h>

#include "cuda_types.h"
#include "shim_internal.h"

#define DRV REVATI_EXPORT CUresult

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef void *CUcontext;
typedef void *CUstream;
typedef void *CUevent;
typedef void *CUmodule;
typedef void *CUfunction;
typedef void *CUlibrary;
typedef void *CUkernel;
typedef unsigned long long CUmemGenericAllocationHandle;

/* cuGetProcAddress flags and results */
#define CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM 0x2
#define cudaEnablePerThreadDefaultStream 0x2 /* cudaGetDriverEntryPoint's flag */
enum { CU_GET_PROC_ADDRESS_SUCCESS = 0, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND = 1 };

struct CUmemLocation { int type; int id; };
struct CUmemAllocationProp {
    int type;
    int requestedHandleTypes;
    struct CUmemLocation location;
    void *win32HandleMetaData;
    struct { unsigned char compressionType, gpuDirectRDMACapable; unsigned short usage; unsigned char reserved[4]; } allocFlags;
};
struct CUmemAccessDesc { struct CUmemLocation location; int flags; };

struct CUlaunchAttribute { int id; int pad; char value[64]; };
struct CUlaunchConfig {
    unsigned int gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes;
    CUstream hStream;
    struct CUlaunchAttribute *attrs;
    unsigned int numAttrs;
};

/* launch.c: a launch of an already named kernel (the driver's launch path joins the runtime's). */
cudaError_t revati_launch_kernel_id(uint32_t kernel_id, dim3 grid, dim3 block, size_t smem,
                                    cudaStream_t stream, int per_thread, uint16_t fn);
int revati_occupancy(int block_size, size_t smem, int regs);
/* cudart.c: make `device` the calling thread's current device (cuCtxSetCurrent). */
void revati_set_current_device(int device);
cudaError_t revati_memset_elements(void *dst, uint32_t value, unsigned int size, size_t n, cudaStream_t s,
                                   int async, int per_thread, uint16_t fn);
cudaError_t revati_copy(void *dst, const void *src, size_t n, int kind, cudaStream_t s, int async,
                        int per_thread, uint16_t fn);

CUresult cuCtxGetCurrent(CUcontext *ctx);

/* Runtime entry points the driver layer forwards to (same objects, same records). */
cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocHost(void **p, size_t bytes);
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned int f);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaHostRegister(void *p, size_t bytes, unsigned int f);
cudaError_t cudaHostUnregister(void *p);
cudaError_t cudaMallocManaged(void **p, size_t bytes, unsigned int f);
cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total);
cudaError_t cudaDeviceGetAttribute(int *value, int attr, int device);
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaStreamCreateWithPriority(cudaStream_t *s, unsigned int f, int p);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamQuery(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int f);
cudaError_t cudaStreamGetPriority(cudaStream_t s, int *p);
cudaError_t cudaStreamGetFlags(cudaStream_t s, unsigned int *f);
cudaError_t cudaStreamBeginCapture(cudaStream_t s, int mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g);
cudaError_t cudaStreamIsCapturing(cudaStream_t s, int *status);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int f);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaEventRecordWithFlags(cudaEvent_t e, cudaStream_t s, unsigned int f);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventQuery(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b);
cudaError_t cudaLaunchHostFunc(cudaStream_t s, cudaHostFn_t fn, void *data);
cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long f);
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e);
cudaError_t cudaGraphDestroy(cudaGraph_t g);
cudaError_t cudaDeviceGetPCIBusId(char *buf, int len, int d);
cudaError_t cudaDeviceCanAccessPeer(int *can, int d, int peer);
const char *cudaGetErrorName(cudaError_t e);
const char *cudaGetErrorString(cudaError_t e);

#endif
