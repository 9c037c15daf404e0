// Load program for the engine benchmarks (tests/bench/test_engine_bench.py): many tiny kernels,
// eager or replayed from a CUDA graph, with syncs at chosen intervals.
// Built by the benchmarks with: nvcc -cudart shared -o engine_load engine_load.cu
//   engine_load eager N EVERY   N launches of a tiny kernel on one stream, a stream sync every
//                               EVERY launches (EVERY = 0: one sync at the end)
//   engine_load graph R NODES   a stream-captured graph of NODES tiny kernels, replayed R times,
//                               each replay followed by a stream sync (a decode step)
//   engine_load forkgraph R     a captured fork/join graph (root; two kernels | one kernel on a
//                               second stream; join) replayed R times with a sync after each,
//                               updated with cudaGraphExecUpdate (larger kernels) half-way
//   engine_load empty           no CUDA call at all (start and close cost of a run)
//   engine_load steps P T S     decode-like steps: P processes (fork) of T threads, each doing S
//                               steps of a fixed host phase (a loop of arithmetic, the same work
//                               whatever the load), 20 launches and a stream sync; prints
//                               `step_ns_<i>` (the median virtual step time of worker i),
//                               `phase_ns_<i>` and `phase_cpu_ns_<i>` (its host phase's median
//                               virtual and CPU time)
// Timed loops start after one cudaDeviceSynchronize (the engine is up; `revati record` loads it
// while the program starts). Prints `key=value` lines: the counts; `host_wall_ns` (unwarped wall
// time of the loop, read with a raw syscall, which the shim does not see) and `sync_wall_ns`
// (summed wall time inside syncs);
// `start_real_ns` / `end_real_ns` (CLOCK_REALTIME at main's start and end, unwarped) and `cpu_ns`
// (the program's own CPU time; CPU clocks are never warped).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <algorithm>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <vector>
#include <unistd.h>
#include <cuda_runtime.h>

#include "cuda_check.h"

__global__ void tiny(float *x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += 1.0f;
}

static long long raw_ns(clockid_t clk = CLOCK_MONOTONIC) {
    timespec ts;
    syscall(SYS_clock_gettime, clk, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long timed_sync(cudaStream_t s) {
    long long t0 = raw_ns();
    CHECK(cudaStreamSynchronize(s));
    return raw_ns() - t0;
}

static int eager(long n, long every) {
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    float *x;
    CHECK(cudaMalloc(&x, 4096 * sizeof(float)));
    CHECK(cudaDeviceSynchronize());  // returns once the engine is up (it loads as we start)
    long long t0 = raw_ns(), in_sync = 0;
    long syncs = 0;
    for (long i = 1; i <= n; i++) {
        tiny<<<16, 256, 0, s>>>(x, 4096);
        if (every > 0 && i % every == 0) {
            in_sync += timed_sync(s);
            syncs++;
        }
    }
    if (every <= 0 || n % every) {
        in_sync += timed_sync(s);
        syncs++;
    }
    long long wall = raw_ns() - t0;
    printf("kernels=%ld\nsyncs=%ld\nhost_wall_ns=%lld\nsync_wall_ns=%lld\n", n, syncs, wall, in_sync);
    return 0;
}

static int graph(long replays, long nodes) {
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    float *x;
    CHECK(cudaMalloc(&x, 4096 * sizeof(float)));
    cudaGraph_t g;
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    for (long i = 0; i < nodes; i++) tiny<<<16, 256, 0, s>>>(x, 4096);
    CHECK(cudaStreamEndCapture(s, &g));
    cudaGraphExec_t exec;
    CHECK(cudaGraphInstantiate(&exec, g, 0));
    CHECK(cudaDeviceSynchronize());  // returns once the engine is up (it loads as we start)
    long long t0 = raw_ns(), in_sync = 0;
    for (long r = 0; r < replays; r++) {
        CHECK(cudaGraphLaunch(exec, s));
        in_sync += timed_sync(s);
    }
    long long wall = raw_ns() - t0;
    CHECK(cudaGraphExecDestroy(exec));
    CHECK(cudaGraphDestroy(g));
    printf("kernels=%ld\nsyncs=%ld\nhost_wall_ns=%lld\nsync_wall_ns=%lld\n", replays * nodes,
           replays, wall, in_sync);
    return 0;
}

static cudaGraph_t capture_fork(cudaStream_t s0, cudaStream_t s1, float *x, int n) {
    cudaEvent_t fork, join;
    CHECK(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming));
    CHECK(cudaEventCreateWithFlags(&join, cudaEventDisableTiming));
    cudaGraph_t g;
    CHECK(cudaStreamBeginCapture(s0, cudaStreamCaptureModeGlobal));
    tiny<<<n / 256, 256, 0, s0>>>(x, n);
    CHECK(cudaEventRecord(fork, s0));
    CHECK(cudaStreamWaitEvent(s1, fork, 0));
    tiny<<<n / 256, 256, 0, s0>>>(x, n);
    tiny<<<n / 256, 256, 0, s0>>>(x, n);
    tiny<<<4 * n / 256, 256, 0, s1>>>(x, 4 * n);
    CHECK(cudaEventRecord(join, s1));
    CHECK(cudaStreamWaitEvent(s0, join, 0));
    tiny<<<n / 256, 256, 0, s0>>>(x, n);
    CHECK(cudaStreamEndCapture(s0, &g));
    return g;
}

static int forkgraph(long replays) {
    cudaStream_t s0, s1;
    CHECK(cudaStreamCreateWithFlags(&s0, cudaStreamNonBlocking));
    CHECK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
    float *x;
    CHECK(cudaMalloc(&x, (16 << 20) * sizeof(float)));
    cudaGraph_t g = capture_fork(s0, s1, x, 1 << 20);
    cudaGraphExec_t exec;
    CHECK(cudaGraphInstantiate(&exec, g, 0));
    for (long r = 0; r < replays; r++) {
        if (r == replays / 2) {
            cudaGraph_t bigger = capture_fork(s0, s1, x, 1 << 22);
            cudaGraphExecUpdateResultInfo info;
            CHECK(cudaGraphExecUpdate(exec, bigger, &info));
            CHECK(cudaGraphDestroy(bigger));
        }
        CHECK(cudaGraphLaunch(exec, s0));
        CHECK(cudaStreamSynchronize(s0));
    }
    CHECK(cudaGraphExecDestroy(exec));
    CHECK(cudaGraphDestroy(g));
    printf("kernels=%ld\nsyncs=%ld\n", replays * 5, replays);
    return 0;
}

// A host phase: the same arithmetic every time (~0.3 ms of CPU on a 2-core VM), never a clock.
static volatile double g_sink;
static void host_phase() {
    double x = 1.0;
    for (int i = 0; i < 100000; i++) x = x * 1.0000001 + 1e-9;
    g_sink = x;
}

// CLOCK_MONOTONIC through libc: virtual time under revati.
static long long clock_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// The thread's CPU time (real under revati: the clock of the work itself).
static long long thread_cpu_ns() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long median(std::vector<long long> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

struct step_worker { long steps; long long step, phase, phase_cpu; };

// Steps of a host phase, 20 launches and a sync: the medians of the step's virtual time, of the
// host phase's virtual time and of its CPU time (what the phase takes with a core to itself).
static void measure_steps(step_worker *w) {
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    float *x;
    CHECK(cudaMalloc(&x, 4096 * sizeof(float)));
    CHECK(cudaStreamSynchronize(s));
    std::vector<long long> step, phase, phase_cpu;
    for (long i = 0; i < w->steps; i++) {
        long long t0 = clock_ns(), c0 = thread_cpu_ns();
        host_phase();
        long long t1 = clock_ns(), c1 = thread_cpu_ns();
        for (int k = 0; k < 20; k++) tiny<<<16, 256, 0, s>>>(x, 4096);
        CHECK(cudaStreamSynchronize(s));
        step.push_back(clock_ns() - t0);
        phase.push_back(t1 - t0);
        phase_cpu.push_back(c1 - c0);
    }
    w->step = median(step);
    w->phase = median(phase);
    w->phase_cpu = median(phase_cpu);
}

static void *step_thread(void *p) {
    measure_steps((step_worker *)p);
    return nullptr;
}

static void threaded_steps(int process, int threads, long steps) {
    std::vector<pthread_t> t(threads);
    std::vector<step_worker> w(threads, step_worker{steps, 0, 0, 0});
    for (int i = 0; i < threads; i++) pthread_create(&t[i], nullptr, step_thread, &w[i]);
    for (int i = 0; i < threads; i++) pthread_join(t[i], nullptr);
    for (int i = 0; i < threads; i++) {
        int n = process * threads + i;
        printf("step_ns_%d=%lld\nphase_ns_%d=%lld\nphase_cpu_ns_%d=%lld\n", n, w[i].step, n,
               w[i].phase, n, w[i].phase_cpu);
    }
    fflush(stdout);
}

static int steps(int procs, int threads, long steps) {
    for (int p = 1; p < procs; p++) {
        if (fork() == 0) {
            threaded_steps(p, threads, steps);
            _exit(0);
        }
    }
    threaded_steps(0, threads, steps);
    while (wait(nullptr) > 0) {
    }
    printf("kernels=%ld\n", (long)procs * threads * steps * 20);
    return 0;
}

static int run(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "eager") && argc == 4) return eager(atol(argv[2]), atol(argv[3]));
    if (!strcmp(mode, "graph") && argc == 4) return graph(atol(argv[2]), atol(argv[3]));
    if (!strcmp(mode, "forkgraph") && argc == 3) return forkgraph(atol(argv[2]));
    if (!strcmp(mode, "steps") && argc == 5) return steps(atoi(argv[2]), atoi(argv[3]), atol(argv[4]));
    if (!strcmp(mode, "empty")) {
        printf("kernels=0\n");
        return 0;
    }
    fprintf(stderr, "usage: engine_load eager N EVERY | graph REPLAYS NODES | forkgraph REPLAYS | "
                    "steps PROCS THREADS STEPS | empty\n");
    return 2;
}

int main(int argc, char **argv) {
    long long start = raw_ns(CLOCK_REALTIME);
    int rc = run(argc, argv);
    timespec cpu;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    printf("start_real_ns=%lld\nend_real_ns=%lld\ncpu_ns=%lld\n", start, raw_ns(CLOCK_REALTIME),
           cpu.tv_sec * 1000000000LL + cpu.tv_nsec);
    return rc;
}
