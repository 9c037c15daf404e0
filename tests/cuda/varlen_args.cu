// Varlen attention launches whose sequence lengths live in device arrays: a kernel named like
// vLLM's FlashAttention 2 forward kernel (flash::flash_fwd_kernel) takes a 472-byte parameter
// block with its fields where the layout table says (revati/engine/kernel_layouts.py,
// vllm_fa2_fwd): h, h_k at 96; b, seqlen_q, seqlen_k at 176; d at 192; the cu_seqlens_q,
// cu_seqlens_k and seqused_k pointers at 224, 232 and 248.
//
// Three sequences: queries 100, 1, 1; keys 100, 50, 30. Launches, each followed by a sync:
//   1. lengths in small (backed) allocations, KV lengths per sequence (seqused_k)
//   2. the same lengths in a large (virtual) allocation: their bytes are not kept
//   3. KV lengths as cumulative lengths (cu_seqlens_k), backed
//   4. launch 1 captured in a graph and replayed: a graph node keeps no lengths
#include <cstdint>
#include <cstring>

#include "cuda_check.h"

namespace flash {
struct Flash_fwd_params {
    alignas(8) unsigned char bytes[472];
};
template <int Variant>
__global__ void flash_fwd_kernel(Flash_fwd_params) {}
}  // namespace flash

static void put(flash::Flash_fwd_params &p, size_t offset, const void *value, size_t n) {
    memcpy(p.bytes + offset, value, n);
}

static flash::Flash_fwd_params params(const int *cu_q, const int *cu_k, const int *used_k) {
    flash::Flash_fwd_params p;
    memset(&p, 0, sizeof p);
    const int heads[2] = {32, 8}, lengths[3] = {3, 100, 100}, d = 128;
    put(p, 96, heads, sizeof heads);
    put(p, 176, lengths, sizeof lengths);
    put(p, 192, &d, sizeof d);
    put(p, 224, &cu_q, sizeof cu_q);
    put(p, 232, &cu_k, sizeof cu_k);
    put(p, 248, &used_k, sizeof used_k);
    return p;
}

static int *device_ints(const int *values, int n, size_t bytes) {
    int *out;
    CHECK(cudaMalloc(&out, bytes));
    CHECK(cudaMemcpy(out, values, n * sizeof(int), cudaMemcpyHostToDevice));
    return out;
}

int main() {
    const int cu_q[4] = {0, 100, 101, 102}, used_k[3] = {100, 50, 30}, cu_k[4] = {0, 100, 150, 180};
    int *small_cu_q = device_ints(cu_q, 4, 256), *small_used_k = device_ints(used_k, 3, 256);
    int *small_cu_k = device_ints(cu_k, 4, 256);
    const size_t large = 64 << 20;  // past --backed-max: virtual
    int *big_cu_q = device_ints(cu_q, 4, large), *big_used_k = device_ints(used_k, 3, large);

    flash::flash_fwd_kernel<0><<<1, 32>>>(params(small_cu_q, nullptr, small_used_k));
    CHECK(cudaDeviceSynchronize());
    flash::flash_fwd_kernel<0><<<1, 32>>>(params(big_cu_q, nullptr, big_used_k));
    CHECK(cudaDeviceSynchronize());
    flash::flash_fwd_kernel<0><<<1, 32>>>(params(small_cu_q, small_cu_k, nullptr));
    CHECK(cudaDeviceSynchronize());

    cudaStream_t stream;
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CHECK(cudaStreamCreate(&stream));
    CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    flash::flash_fwd_kernel<0><<<1, 32, 0, stream>>>(params(small_cu_q, nullptr, small_used_k));
    CHECK(cudaStreamEndCapture(stream, &graph));
    CHECK(cudaGraphInstantiate(&exec, graph, 0));
    CHECK(cudaGraphLaunch(exec, stream));
    CHECK(cudaStreamSynchronize(stream));
    printf("done\n");
    return 0;
}
