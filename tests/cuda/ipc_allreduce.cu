// Two processes meeting in a kernel that is an all-reduce over CUDA IPC, as vLLM's custom
// all-reduce is: each rank maps its peer's signal buffer and launches a kernel of the same name
// and argument layout as vLLM 0.33.0's cross_device_reduce_1stage<T, ngpus> (csrc/
// custom_all_reduce.cuh), whose body here is empty. Rank 0 is the parent, rank 1 a child it
// starts; rank 1 sleeps before its second launch, so that launch's barrier waits for it.
// Usage: ipc_allreduce small|large (rank 0; starts rank 1). The signal buffers are a small
// allocation (whose bytes are shared) or, as vLLM's (its signals and an 8 MiB staging buffer),
// a large one (virtual: no bytes behind it).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(x)                                                                   \
    do {                                                                           \
        cudaError_t e_ = (x);                                                      \
        if (e_ != cudaSuccess) {                                                   \
            fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e_));               \
            exit(3);                                                               \
        }                                                                          \
    } while (0)

namespace vllm {
struct Signal {
    unsigned start[36][8];
};
struct RankData {
    const void *ptrs[8];
};
struct RankSignals {
    Signal *signals[8];
};
template <typename T, int ngpus>
__global__ void cross_device_reduce_1stage(RankData *, RankSignals, Signal *, T *, int, int) {}
}  // namespace vllm

static const int PACKS[] = {1024, 2048, 4096};  // 16-byte packs per launch
static const int SLEEP_US = 20000;               // rank 1, before its second launch

static int run(int rank, int sock, bool large) {
    CHECK(cudaSetDevice(rank));
    vllm::Signal *own;
    CHECK(cudaMalloc(&own, sizeof(vllm::Signal) + (large ? 8 << 20 : 0)));
    cudaIpcMemHandle_t mine, peers;
    CHECK(cudaIpcGetMemHandle(&mine, own));
    if (write(sock, &mine, sizeof mine) != (ssize_t)sizeof mine) return 4;
    if (read(sock, &peers, sizeof peers) != (ssize_t)sizeof peers) return 4;
    vllm::RankSignals sg = {};
    sg.signals[rank] = own;
    CHECK(cudaIpcOpenMemHandle((void **)&sg.signals[1 - rank], peers, cudaIpcMemLazyEnablePeerAccess));
    float *out;
    CHECK(cudaMalloc(&out, 4096 * 16));
    for (int i = 0; i < 3; i++) {
        if (rank == 1 && i == 1) usleep(SLEEP_US);
        vllm::cross_device_reduce_1stage<float, 2><<<1, 32>>>(nullptr, sg, own, out, rank, PACKS[i]);
        CHECK(cudaGetLastError());
        CHECK(cudaDeviceSynchronize());
    }
    printf("rank%d_done=1\n", rank);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    bool large = strcmp(argv[1], "large") == 0;
    if (argc == 4) return run(1, atoi(argv[3]), large);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 4;
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        char arg[16];
        snprintf(arg, sizeof arg, "%d", sv[1]);
        execl(argv[0], argv[0], argv[1], "rank1", arg, (char *)nullptr);
        _exit(127);
    }
    close(sv[1]);
    int rc = run(0, sv[0], large);
    int status = 0;
    waitpid(pid, &status, 0);
    printf("rank1_status=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return rc;
}
