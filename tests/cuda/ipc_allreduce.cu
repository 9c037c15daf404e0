// Two processes meeting in a kernel that is an all-reduce over CUDA IPC, as vLLM's custom
// all-reduce is: each rank maps its peer's signal buffer and launches a kernel of the same name
// and argument layout as vLLM 0.33.0's cross_device_reduce_1stage<T, ngpus> (csrc/
// custom_all_reduce.cuh), whose body here is empty. Rank 0 is the parent, rank 1 a child it
// starts; rank 1 sleeps before its second launch, so that launch's barrier waits for it.
// Usage: ipc_allreduce small|large|graph|bench (rank 0; starts rank 1). The signal buffers are a small
// allocation (whose bytes are shared) or, as vLLM's (its signals and an 8 MiB staging buffer),
// a large one (virtual: no bytes behind it). `graph` captures the all-reduce between two plain
// kernels into CUDA graphs, as vLLM's decode graphs hold it (on one stream, and with a kernel on
// a second stream beside it), builds one of two all-reduces alone by hand, captures the two
// plain kernels alone into another, and launches each REPLAYS times (rank 1 sleeps before the third launch of the
// first two). `bench` (a benchmark, tests/bench/test_graph_barrier_bench.py) captures a graph of
// NODES kernels on one stream, every EVERY-th the all-reduce (none if 0), and launches it
// LAUNCHES times, a sync after each (the three from the environment).
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

__global__ void before_reduce(float *out) { out[threadIdx.x] += 1.0f; }
__global__ void after_reduce(float *out) { out[threadIdx.x] *= 0.5f; }
__global__ void beside_reduce(float *out) { out[threadIdx.x] -= 1.0f; }

static const int PACKS[] = {1024, 2048, 4096};  // 16-byte packs per launch
static const int SLEEP_US = 20000;               // rank 1, before its second launch
static const int REPLAYS = 4;                    // launches of each graph (`graph`)
static const int GRAPH_PACKS = 2048;

enum GraphKind { CHAIN, FORKED, BARE, PLAIN };

// BARE: two all-reduces alone, built by hand (cudaGraphAddKernelNode), the second after the first.
static cudaGraph_t build_bare(const vllm::RankSignals &sg, vllm::Signal *own, float *out, int rank) {
    cudaGraph_t g;
    CHECK(cudaGraphCreate(&g, 0));
    vllm::RankData *none = nullptr;
    int packs = GRAPH_PACKS;
    void *args[] = {&none, (void *)&sg, &own, &out, &rank, &packs};
    cudaKernelNodeParams p = {};
    p.func = (void *)vllm::cross_device_reduce_1stage<float, 2>;
    p.gridDim = dim3(1);
    p.blockDim = dim3(32);
    p.kernelParams = args;
    cudaGraphNode_t first, second;
    CHECK(cudaGraphAddKernelNode(&first, g, nullptr, 0, &p));
    CHECK(cudaGraphAddKernelNode(&second, g, &first, 1, &p));
    return g;
}

// CHAIN: the all-reduce captured between two plain kernels on one stream; FORKED: the same with
// a kernel on a second stream beside the all-reduce (forked after the first kernel, joined
// before the last); PLAIN: the two plain kernels alone.
static cudaGraph_t capture(GraphKind kind, cudaStream_t st, cudaStream_t side, const vllm::RankSignals &sg,
                           vllm::Signal *own, float *out, int rank) {
    cudaEvent_t fork, join;
    CHECK(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming));
    CHECK(cudaEventCreateWithFlags(&join, cudaEventDisableTiming));
    cudaGraph_t g;
    CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
    before_reduce<<<64, 128, 0, st>>>(out);
    if (kind == FORKED) {
        CHECK(cudaEventRecord(fork, st));
        CHECK(cudaStreamWaitEvent(side, fork, 0));
        beside_reduce<<<256, 256, 0, side>>>(out + 4096);
        CHECK(cudaEventRecord(join, side));
    }
    if (kind != PLAIN)
        vllm::cross_device_reduce_1stage<float, 2><<<1, 32, 0, st>>>(nullptr, sg, own, out, rank, GRAPH_PACKS);
    if (kind == FORKED) CHECK(cudaStreamWaitEvent(st, join, 0));
    after_reduce<<<64, 128, 0, st>>>(out);
    CHECK(cudaStreamEndCapture(st, &g));
    CHECK(cudaEventDestroy(fork));
    CHECK(cudaEventDestroy(join));
    return g;
}

// Each graph launched REPLAYS times, a sync after each; rank 1 sleeps before the third launch
// of CHAIN and FORKED.
static void replay_graphs(int rank, const vllm::RankSignals &sg, vllm::Signal *own, float *out) {
    cudaStream_t st, side;
    CHECK(cudaStreamCreate(&st));
    CHECK(cudaStreamCreate(&side));
    for (GraphKind kind : {CHAIN, FORKED, BARE, PLAIN}) {
        cudaGraph_t g = kind == BARE ? build_bare(sg, own, out, rank) : capture(kind, st, side, sg, own, out, rank);
        cudaGraphExec_t exec;
        CHECK(cudaGraphInstantiate(&exec, g, 0));
        CHECK(cudaGraphDestroy(g));
        for (int i = 0; i < REPLAYS; i++) {
            if (rank == 1 && i == 2 && (kind == CHAIN || kind == FORKED)) usleep(SLEEP_US);
            CHECK(cudaGraphLaunch(exec, st));
            CHECK(cudaStreamSynchronize(st));
        }
        CHECK(cudaGraphExecDestroy(exec));
    }
    CHECK(cudaStreamDestroy(st));
    CHECK(cudaStreamDestroy(side));
}

// `bench`: a graph of NODES kernels, every EVERY-th the all-reduce, launched LAUNCHES times.
static void bench_graph(int rank, const vllm::RankSignals &sg, vllm::Signal *own, float *out) {
    int nodes = atoi(getenv("NODES")), every = atoi(getenv("EVERY")), launches = atoi(getenv("LAUNCHES"));
    cudaStream_t st;
    CHECK(cudaStreamCreate(&st));
    cudaGraph_t g;
    CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
    for (int i = 1; i <= nodes; i++) {
        if (every && i % every == 0)
            vllm::cross_device_reduce_1stage<float, 2><<<1, 32, 0, st>>>(nullptr, sg, own, out, rank, GRAPH_PACKS);
        else
            before_reduce<<<64, 128, 0, st>>>(out);
    }
    CHECK(cudaStreamEndCapture(st, &g));
    cudaGraphExec_t exec;
    CHECK(cudaGraphInstantiate(&exec, g, 0));
    for (int i = 0; i < launches; i++) {
        CHECK(cudaGraphLaunch(exec, st));
        CHECK(cudaStreamSynchronize(st));
    }
    CHECK(cudaGraphExecDestroy(exec));
    CHECK(cudaGraphDestroy(g));
    CHECK(cudaStreamDestroy(st));
}

static int run(int rank, int sock, const char *mode) {
    bool large = strcmp(mode, "large") == 0;
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
    if (strcmp(mode, "graph") == 0 || strcmp(mode, "bench") == 0) {
        (strcmp(mode, "graph") == 0 ? replay_graphs : bench_graph)(rank, sg, own, out);
        printf("rank%d_done=1\n", rank);
        fflush(stdout);
        return 0;
    }
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
    if (argc == 4) return run(1, atoi(argv[3]), argv[1]);
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
    int rc = run(0, sv[0], argv[1]);
    int status = 0;
    waitpid(pid, &status, 0);
    printf("rank1_status=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return rc;
}
