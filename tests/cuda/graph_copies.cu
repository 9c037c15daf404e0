// A captured CUDA graph of kernels, copies and memsets, like a serving engine's decode step,
// replayed many times (tests/integration/test_record_graph_copies.py).
// Built by the tests with: nvcc -cudart shared -o graph_copies graph_copies.cu
//   graph_copies R    capture the step once, launch it R times, a stream sync after each
// The step, on stream s0 with a branch on s1:
//   s0: tiny kernel | HtoD of the step's input (pinned host -> small device buffer `a`)
//       | DtoD a -> b | memset of b's second half to 0x01 | tiny kernel | (join s1) | DtoH b ->
//       pinned host output | 16 MiB memset of the large buffer
//   s1: 8 MiB DtoD within the large buffer | tiny kernel
// The small buffers are backed (they hold real bytes), the large one is not. Before each launch
// the program writes a new input and poisons the output; after the sync it checks that the output
// holds the input's first half and the memset's bytes: the copies and memsets move their bytes
// on every replay. Prints `replays=R`, `kernels=K` and `data_ok=N` (launches whose output was right).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>

#include "cuda_check.h"

__global__ void tiny(float *x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += 1.0f;
}

static const int WORDS = 64;                 // the small buffers: 64 ints
static const size_t LARGE = 64 << 20;        // the large buffer: 64 MiB, not backed
static const int KERNELS_PER_STEP = 3;

static cudaGraph_t capture_step(cudaStream_t s0, cudaStream_t s1, float *large, int *a, int *b,
                                int *host_in, int *host_out) {
    cudaEvent_t fork, join;
    CHECK(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming));
    CHECK(cudaEventCreateWithFlags(&join, cudaEventDisableTiming));
    const size_t bytes = WORDS * sizeof(int);
    cudaGraph_t g;
    CHECK(cudaStreamBeginCapture(s0, cudaStreamCaptureModeGlobal));
    tiny<<<64, 256, 0, s0>>>(large, 64 * 256);
    CHECK(cudaMemcpyAsync(a, host_in, bytes, cudaMemcpyHostToDevice, s0));
    CHECK(cudaEventRecord(fork, s0));
    CHECK(cudaStreamWaitEvent(s1, fork, 0));
    CHECK(cudaMemcpyAsync((char *)large + (32 << 20), large, 8 << 20, cudaMemcpyDeviceToDevice, s1));
    tiny<<<1024, 256, 0, s1>>>(large, 1024 * 256);
    CHECK(cudaEventRecord(join, s1));
    CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, s0));
    CHECK(cudaMemsetAsync(b + WORDS / 2, 1, bytes / 2, s0));
    tiny<<<16, 256, 0, s0>>>(large, 16 * 256);
    CHECK(cudaStreamWaitEvent(s0, join, 0));
    CHECK(cudaMemcpyAsync(host_out, b, bytes, cudaMemcpyDeviceToHost, s0));
    CHECK(cudaMemsetAsync(large, 0, 16 << 20, s0));
    CHECK(cudaStreamEndCapture(s0, &g));
    return g;
}

static bool output_right(const int *host_out, int step) {
    for (int i = 0; i < WORDS / 2; i++)
        if (host_out[i] != step * 1000 + i) return false;
    for (int i = WORDS / 2; i < WORDS; i++)
        if (host_out[i] != 0x01010101) return false;
    return true;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: graph_copies REPLAYS\n");
        return 2;
    }
    long replays = atol(argv[1]);
    cudaStream_t s0, s1;
    CHECK(cudaStreamCreateWithFlags(&s0, cudaStreamNonBlocking));
    CHECK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
    float *large;
    int *a, *b, *host_in, *host_out;
    CHECK(cudaMalloc(&large, LARGE));
    CHECK(cudaMalloc(&a, WORDS * sizeof(int)));
    CHECK(cudaMalloc(&b, WORDS * sizeof(int)));
    CHECK(cudaMallocHost(&host_in, WORDS * sizeof(int)));
    CHECK(cudaMallocHost(&host_out, WORDS * sizeof(int)));
    cudaGraph_t g = capture_step(s0, s1, large, a, b, host_in, host_out);
    cudaGraphExec_t exec;
    CHECK(cudaGraphInstantiate(&exec, g, 0));
    long ok = 0;
    for (long r = 0; r < replays; r++) {
        for (int i = 0; i < WORDS; i++) host_in[i] = (int)r * 1000 + i;
        memset(host_out, 0xff, WORDS * sizeof(int));
        CHECK(cudaGraphLaunch(exec, s0));
        CHECK(cudaStreamSynchronize(s0));
        ok += output_right(host_out, (int)r);
    }
    CHECK(cudaGraphExecDestroy(exec));
    CHECK(cudaGraphDestroy(g));
    printf("replays=%ld\nkernels=%ld\ndata_ok=%ld\n", replays, replays * KERNELS_PER_STEP, ok);
    return 0;
}
