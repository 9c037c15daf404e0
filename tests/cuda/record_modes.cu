// Test program for `revati record` integration tests: one binary, one scenario per argv[1].
// Built by the tests with: nvcc -cudart shared -o record_modes record_modes.cu
// Each mode prints `key=value` lines the tests parse, and exits non-zero on any CUDA error.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <pthread.h>
#include <semaphore.h>
#include <csignal>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cuda_runtime.h>

#include "cuda_check.h"

__global__ void scale(float *x, float f, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= f;
}

__global__ void busy(float *x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = x[i] * 2.0f + 1.0f;
}

static double now_s(clockid_t clk) {
    timespec ts;
    clock_gettime(clk, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Two streams, events, a cross-stream wait and elapsed times.
static int streams() {
    cudaStream_t s1, s2;
    CHECK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
    CHECK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
    float *x;
    CHECK(cudaMalloc(&x, 1 << 20));
    cudaEvent_t e0, e1, e2, e3;
    CHECK(cudaEventCreate(&e0));
    CHECK(cudaEventCreate(&e1));
    CHECK(cudaEventCreate(&e2));
    CHECK(cudaEventCreate(&e3));
    for (int i = 0; i < 20; i++) busy<<<1024, 256, 0, s1>>>(x, 1 << 18);  // keep s1 busy
    CHECK(cudaEventRecord(e0, s1));
    scale<<<64, 256, 0, s1>>>(x, 2.0f, 1 << 14);
    scale<<<64, 256, 0, s1>>>(x, 0.5f, 1 << 14);
    CHECK(cudaEventRecord(e1, s1));
    CHECK(cudaStreamWaitEvent(s2, e1, 0));  // s2 starts after s1's work
    CHECK(cudaEventRecord(e2, s2));
    busy<<<128, 256, 0, s2>>>(x, 1 << 15);
    CHECK(cudaEventRecord(e3, s2));
    if (cudaEventElapsedTime(nullptr, e0, e1) != cudaErrorInvalidValue) return 4;
    CHECK(cudaStreamSynchronize(s2));
    CHECK(cudaEventSynchronize(e1));
    float ms01, ms12, ms23;
    CHECK(cudaEventElapsedTime(&ms01, e0, e1));
    CHECK(cudaEventElapsedTime(&ms12, e1, e2));
    CHECK(cudaEventElapsedTime(&ms23, e2, e3));
    printf("elapsed01_ns=%.0f\nelapsed12_ns=%.0f\nelapsed23_ns=%.0f\n", ms01 * 1e6, ms12 * 1e6, ms23 * 1e6);
    CHECK(cudaStreamQuery(s1));
    CHECK(cudaEventQuery(e3));
    CHECK(cudaStreamDestroy(s1));
    CHECK(cudaStreamDestroy(s2));
    CHECK(cudaFree(x));
    return 0;
}

// Memory: a round trip of a small buffer, capacity, pointer attributes, memset.
static int memory() {
    const int n = 4096;
    unsigned char host[n], back[n];
    for (int i = 0; i < n; i++) host[i] = (unsigned char)(i * 7 + 3);
    unsigned char *d, *d2;
    CHECK(cudaMalloc(&d, n));
    CHECK(cudaMalloc(&d2, n));
    CHECK(cudaMemcpy(d, host, n, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(d2, d, n, cudaMemcpyDeviceToDevice));
    CHECK(cudaMemcpy(back, d2, n, cudaMemcpyDeviceToHost));
    printf("roundtrip_equal=%d\n", memcmp(host, back, n) == 0);
    CHECK(cudaMemset(d, 0xab, 16));
    CHECK(cudaMemcpy(back, d, 16, cudaMemcpyDeviceToHost));
    printf("memset_ok=%d\n", back[0] == 0xab && back[15] == 0xab);
    cudaPointerAttributes attr;
    CHECK(cudaPointerGetAttributes(&attr, d));
    printf("attr_device=%d\n", attr.type == cudaMemoryTypeDevice);
    size_t free_b, total;
    CHECK(cudaMemGetInfo(&free_b, &total));
    printf("total=%zu\n", total);
    void *big = nullptr;
    cudaError_t e = cudaMalloc(&big, total + (1ull << 30));
    printf("too_big=%s\n", cudaGetErrorName(e));
    cudaGetLastError();
    void *half1, *half2;
    CHECK(cudaMalloc(&half1, total / 2));
    e = cudaMalloc(&half2, total / 2 + (1ull << 30));
    printf("second_half=%s\n", cudaGetErrorName(e));
    cudaGetLastError();
    CHECK(cudaFree(half1));
    CHECK(cudaMalloc(&half2, total / 2 + (1ull << 30)));  // fits again once freed
    CHECK(cudaFree(half2));
    float *pinned;
    CHECK(cudaMallocHost(&pinned, 1 << 16));
    CHECK(cudaFreeHost(pinned));
    CHECK(cudaFree(d));
    CHECK(cudaFree(d2));
    return 0;
}

// sleep(30): virtual +30 s.
static int sleeper() {
    double m0 = now_s(CLOCK_MONOTONIC), r0 = now_s(CLOCK_REALTIME);
    sleep(30);
    double m1 = now_s(CLOCK_MONOTONIC), r1 = now_s(CLOCK_REALTIME);
    printf("slept_monotonic_s=%.6f\nslept_realtime_s=%.6f\n", m1 - m0, r1 - r0);
    return 0;
}

// A GPU-bound loop: ~60 s of predicted device time (big device-to-device copies and kernels).
static int gpubound() {
    size_t bytes = 16ull << 30;
    char *a, *b;
    float *x;
    CHECK(cudaMalloc(&a, bytes));
    CHECK(cudaMalloc(&b, bytes));
    CHECK(cudaMalloc(&x, 1 << 20));
    int iterations = 10000;
    double t0 = now_s(CLOCK_MONOTONIC);
    for (int i = 0; i < iterations; i++) {
        busy<<<1024, 256>>>(x, 1 << 18);
        CHECK(cudaMemcpyAsync(i % 2 ? a : b, i % 2 ? b : a, bytes, cudaMemcpyDeviceToDevice, 0));
        if (i % 100 == 99) CHECK(cudaDeviceSynchronize());
    }
    CHECK(cudaDeviceSynchronize());
    printf("virtual_s=%.3f\n", now_s(CLOCK_MONOTONIC) - t0);
    return 0;
}

struct worker_arg { int id; double elapsed; };

static void *worker(void *p) {
    worker_arg *w = (worker_arg *)p;
    cudaStream_t s;
    float *x;
    CHECK(cudaStreamCreate(&s));
    CHECK(cudaMalloc(&x, 1 << 16));
    double t0 = now_s(CLOCK_MONOTONIC);
    for (int i = 0; i < 200; i++) {
        busy<<<256, 256, 0, s>>>(x, 1 << 14);
        if (i % 10 == 9) CHECK(cudaStreamSynchronize(s));
    }
    CHECK(cudaStreamSynchronize(s));
    w->elapsed = now_s(CLOCK_MONOTONIC) - t0;
    CHECK(cudaFree(x));
    CHECK(cudaStreamDestroy(s));
    return nullptr;
}

// Two host threads launching and syncing concurrently.
static int threads() {
    pthread_t t[2];
    worker_arg args[2] = {{0, 0}, {1, 0}};
    for (int i = 0; i < 2; i++) pthread_create(&t[i], nullptr, worker, &args[i]);
    for (int i = 0; i < 2; i++) pthread_join(t[i], nullptr);
    printf("thread0_s=%.6f\nthread1_s=%.6f\n", args[0].elapsed, args[1].elapsed);
    return 0;
}

// A parent that fork/execs a child that uses CUDA.
static int forker(const char *self) {
    float *x;
    CHECK(cudaMalloc(&x, 1 << 16));
    busy<<<64, 256>>>(x, 1 << 14);
    CHECK(cudaDeviceSynchronize());
    pid_t pid = fork();
    if (pid == 0) {
        execl(self, self, "child", (char *)nullptr);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    busy<<<64, 256>>>(x, 1 << 14);
    CHECK(cudaDeviceSynchronize());
    printf("child_status=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}

static int child() {
    float *x;
    CHECK(cudaMalloc(&x, 1 << 16));
    for (int i = 0; i < 10; i++) busy<<<64, 256>>>(x, 1 << 14);
    CHECK(cudaDeviceSynchronize());
    usleep(1000);
    printf("child_done=1\n");
    return 0;
}

// Three children that end three ways: exit code 7, SIGKILL, SIGABRT with a core dump (written
// in a folder of its own, removed afterwards).
static pid_t ending_child(float *x, int how, const char *core_dir) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    busy<<<64, 256>>>(x, 1 << 14);
    CHECK(cudaDeviceSynchronize());
    if (how == 0) exit(7);
    if (how == 1) raise(SIGKILL);
    rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
    setrlimit(RLIMIT_CORE, &unlimited);
    if (chdir(core_dir) != 0) exit(4);
    abort();
}

static void remove_folder(const char *path) {
    DIR *d = opendir(path);
    for (dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char file[512];
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        unlink(file);
    }
    if (d) closedir(d);
    rmdir(path);
}

static int ends() {
    float *x;
    CHECK(cudaMalloc(&x, 1 << 16));
    busy<<<64, 256>>>(x, 1 << 14);
    CHECK(cudaDeviceSynchronize());
    char core_dir[] = "/tmp/record_modes-core-XXXXXX";
    if (!mkdtemp(core_dir)) return 4;
    for (int how = 0; how < 3; how++) {
        pid_t pid = ending_child(x, how, core_dir);
        int status = 0;
        waitpid(pid, &status, 0);
        printf("child%d=%d status%d=%d\n", how, (int)pid, how, status);
    }
    remove_folder(core_dir);
    return 0;
}

// A call revati does not emulate.
static int unsupported() {
    cudaArray_t arr = nullptr;
    cudaChannelFormatDesc desc = cudaCreateChannelDesc<float>();
    cudaError_t e = cudaMallocArray(&arr, &desc, 16, 16, 0);
    printf("unsupported=%s\n", cudaGetErrorName(e));
    return 0;
}

// Dies midway.
static int aborter() {
    float *x;
    CHECK(cudaMalloc(&x, 1 << 16));
    for (int i = 0; i < 50; i++) busy<<<64, 256>>>(x, 1 << 14);
    CHECK(cudaDeviceSynchronize());
    fflush(stdout);
    abort();
}

// Stream capture and a CUDA graph launched several times.
static int graph() {
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    float *x;
    CHECK(cudaMalloc(&x, 1 << 16));
    cudaGraph_t g;
    cudaGraphExec_t exec;
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    for (int i = 0; i < 5; i++) busy<<<64, 256, 0, s>>>(x, 1 << 14);
    CHECK(cudaMemsetAsync(x, 0, 1024, s));
    CHECK(cudaStreamEndCapture(s, &g));
    CHECK(cudaGraphInstantiate(&exec, g, 0));
    for (int i = 0; i < 3; i++) CHECK(cudaGraphLaunch(exec, s));
    CHECK(cudaStreamSynchronize(s));
    CHECK(cudaGraphExecDestroy(exec));
    CHECK(cudaGraphDestroy(g));
    printf("graph_done=1\n");
    return 0;
}

// A captured fork/join graph: root, then two branches on two streams (two kernels | one big
// kernel), joined by a last kernel. Prints the elapsed time of one launch (events around it).
static int graph_fork() {
    cudaStream_t s0, s1;
    CHECK(cudaStreamCreateWithFlags(&s0, cudaStreamNonBlocking));
    CHECK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
    float *x;
    CHECK(cudaMalloc(&x, 1 << 24));
    cudaEvent_t fork, join, t0, t1;
    CHECK(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming));
    CHECK(cudaEventCreateWithFlags(&join, cudaEventDisableTiming));
    CHECK(cudaEventCreate(&t0));
    CHECK(cudaEventCreate(&t1));
    cudaGraph_t g;
    CHECK(cudaStreamBeginCapture(s0, cudaStreamCaptureModeGlobal));
    scale<<<64, 256, 0, s0>>>(x, 2.0f, 1 << 14);               // root
    CHECK(cudaEventRecord(fork, s0));
    CHECK(cudaStreamWaitEvent(s1, fork, 0));                  // s1 joins the capture
    busy<<<4096, 256, 0, s0>>>(x, 1 << 20);                   // branch A: two kernels
    busy<<<4096, 256, 0, s0>>>(x, 1 << 20);
    busy<<<16384, 256, 0, s1>>>(x, 1 << 22);                  // branch B: one big kernel
    CHECK(cudaEventRecord(join, s1));
    CHECK(cudaStreamWaitEvent(s0, join, 0));                  // join
    scale<<<64, 256, 0, s0>>>(x, 0.5f, 1 << 14);               // last
    CHECK(cudaStreamEndCapture(s0, &g));
    size_t nodes = 0;
    CHECK(cudaGraphGetNodes(g, nullptr, &nodes));
    cudaGraphExec_t exec;
    CHECK(cudaGraphInstantiate(&exec, g, 0));
    CHECK(cudaEventRecord(t0, s0));
    CHECK(cudaGraphLaunch(exec, s0));
    CHECK(cudaEventRecord(t1, s0));
    CHECK(cudaStreamSynchronize(s0));
    float ms = 0;
    CHECK(cudaEventElapsedTime(&ms, t0, t1));
    scale<<<64, 256, 0, s1>>>(x, 1.0f, 1 << 14);  // s1 is an ordinary stream again
    CHECK(cudaStreamSynchronize(s1));
    printf("nodes=%zu\ngraph_elapsed_ns=%.0f\n", nodes, (double)ms * 1e6);
    return 0;
}

static void host_node(void *data) { ++*(int *)data; }

struct host_probe { double at; int other_thread; pthread_t main; };
static void host_probe_fn(void *data) {
    host_probe *p = (host_probe *)data;
    p->at = now_s(CLOCK_MONOTONIC);
    p->other_thread = !pthread_equal(pthread_self(), p->main);
    usleep(2000);  // 2 ms of (virtual) host time: later work on the stream waits for it
}
static void host_callback(cudaStream_t, cudaError_t status, void *data) {
    host_probe *p = (host_probe *)data;
    p->at = status == cudaSuccess ? now_s(CLOCK_MONOTONIC) : -1;
    p->other_thread = !pthread_equal(pthread_self(), p->main);
}

// Host functions run on another thread once the stream reaches them; later work waits.
static int hostfn() {
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    float *x;
    CHECK(cudaMalloc(&x, 1 << 24));
    host_probe a = {0, 0, pthread_self()}, b = {0, 0, pthread_self()};
    double t0 = now_s(CLOCK_MONOTONIC);
    busy<<<16384, 256, 0, s>>>(x, 1 << 22);
    CHECK(cudaLaunchHostFunc(s, host_probe_fn, &a));
    double t_returned = now_s(CLOCK_MONOTONIC);
    busy<<<16384, 256, 0, s>>>(x, 1 << 22);
    CHECK(cudaStreamAddCallback(s, host_callback, &b, 0));
    CHECK(cudaStreamSynchronize(s));
    printf("hostfn_at_ns=%.0f\nhostfn_other_thread=%d\nreturned_ns=%.0f\n", (a.at - t0) * 1e9,
           a.other_thread, (t_returned - t0) * 1e9);
    printf("callback_at_ns=%.0f\ncallback_other_thread=%d\n", (b.at - t0) * 1e9, b.other_thread);
    return 0;
}

// A graph built by hand: kernel, memset and host nodes, launched twice.
static int graph_manual() {
    cudaStream_t s;
    CHECK(cudaStreamCreate(&s));
    float *x;
    CHECK(cudaMalloc(&x, 1 << 16));
    cudaGraph_t g;
    CHECK(cudaGraphCreate(&g, 0));
    cudaGraphNode_t k, m, h;
    int n = 1 << 14;
    float f = 2.0f;
    void *args[] = {&x, &f, &n};
    cudaKernelNodeParams kp = {};
    kp.func = (void *)scale;
    kp.gridDim = dim3(64);
    kp.blockDim = dim3(256);
    kp.kernelParams = args;
    CHECK(cudaGraphAddKernelNode(&k, g, nullptr, 0, &kp));
    cudaMemsetParams mp = {};
    mp.dst = x;
    mp.value = 0x01010101;
    mp.elementSize = 4;
    mp.width = 256;
    mp.height = 1;
    CHECK(cudaGraphAddMemsetNode(&m, g, &k, 1, &mp));
    int calls = 0;
    cudaHostNodeParams hp = {host_node, &calls};
    CHECK(cudaGraphAddHostNode(&h, g, &m, 1, &hp));
    cudaGraphExec_t exec;
    CHECK(cudaGraphInstantiate(&exec, g, 0));
    CHECK(cudaGraphLaunch(exec, s));
    CHECK(cudaGraphLaunch(exec, s));
    CHECK(cudaStreamSynchronize(s));
    unsigned int word = 0;
    CHECK(cudaMemcpy(&word, x, 4, cudaMemcpyDeviceToHost));
    printf("host_calls=%d\nmemset_word=%08x\n", calls, word);
    return 0;
}

// Real (unwarped) time, straight from the kernel: benchmarks measure the shim itself.
static double real_s() {
    timespec ts;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Benchmarks: host cost per intercepted launch and per synchronisation (real ns).
static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Timed in batches of 1000 launches: the median batch is the shim's cost, free of the odd
// preemption that lands in a single timed loop on a shared machine; the mean keeps it.
static int launchcost(int n) {
    enum { BATCH = 1000 };
    float *x;
    CHECK(cudaMalloc(&x, 1 << 16));
    busy<<<64, 256>>>(x, 1 << 14);  // warm up: registration, thread index, ring pages
    int batches = n / BATCH > 0 ? n / BATCH : 1;
    double *per_launch = (double *)malloc(batches * sizeof(double));
    double t0 = real_s();
    for (int b = 0; b < batches; b++) {
        double start = real_s();
        for (int i = 0; i < BATCH; i++) busy<<<64, 256>>>(x, 1 << 14);
        per_launch[b] = (real_s() - start) * 1e9 / BATCH;
    }
    double t1 = real_s();
    CHECK(cudaDeviceSynchronize());
    qsort(per_launch, batches, sizeof(double), by_value);
    printf("launch_ns=%.1f\nlaunch_median_ns=%.1f\nlaunch_min_ns=%.1f\nlaunches=%d\n",
           (t1 - t0) * 1e9 / ((double)batches * BATCH), per_launch[batches / 2], per_launch[0],
           batches * BATCH);
    free(per_launch);
    return 0;
}

static int synccost(int n) {
    cudaStream_t s;
    CHECK(cudaStreamCreate(&s));
    CHECK(cudaStreamSynchronize(s));
    double t0 = real_s();
    for (int i = 0; i < n; i++) CHECK(cudaStreamSynchronize(s));
    double t1 = real_s();
    printf("sync_ns=%.1f\n", (t1 - t0) * 1e9 / n);
    return 0;
}

// A serving-like loop whose schedule depends on time: a request arrives every 100 us of
// (virtual) time; each step serves, in one kernel sized by the batch, every request that has
// arrived, then syncs. So a faster device makes smaller, more frequent batches.
static int batcher(int requests) {
    float *x;
    CHECK(cudaMalloc(&x, 64 << 20));
    double t0 = now_s(CLOCK_MONOTONIC);
    int served = 0, steps = 0;
    while (served < requests) {
        int arrived = (int)((now_s(CLOCK_MONOTONIC) - t0) / 100e-6) + 1;
        int batch = (arrived < requests ? arrived : requests) - served;
        if (batch <= 0) {
            usleep(20);
            continue;
        }
        busy<<<40000 * batch, 256>>>(x, 1 << 20);
        CHECK(cudaDeviceSynchronize());
        served += batch;
        steps++;
    }
    printf("steps=%d\nvirtual_s=%.6f\n", steps, now_s(CLOCK_MONOTONIC) - t0);
    return 0;
}

// Runs for ~n * 10 ms of real CPU time, syncing each step (for robustness tests).
static int survive(int n) {
    float *x;
    CHECK(cudaMalloc(&x, 1 << 16));
    for (int i = 0; i < n; i++) {
        busy<<<64, 256>>>(x, 1 << 14);
        CHECK(cudaDeviceSynchronize());
        double t0 = real_s();
        while (real_s() - t0 < 0.01) {
        }
        if (i == 0) {
            printf("started=1\n");
            fflush(stdout);
        }
    }
    sleep(1);
    printf("survived=1\n");
    return 0;
}

// Launches without ever syncing for `ms` ms of real time, then syncs once (lost-engine tests:
// the ring fills up when nobody drains it).
static int launchloop(int ms) {
    float *x;
    CHECK(cudaMalloc(&x, 1 << 16));
    long launches = 0;
    double t0 = real_s();
    while (real_s() - t0 < ms * 1e-3) {
        for (int i = 0; i < 1000; i++) busy<<<64, 256>>>(x, 1 << 14);
        if (launches == 0) {
            printf("started=1\n");
            fflush(stdout);
        }
        launches += 1000;
    }
    CHECK(cudaDeviceSynchronize());
    printf("finished=1\nlaunches=%ld\nwall_s=%.3f\n", launches, real_s() - t0);
    return 0;
}

// Untimed waits on other threads: a waiter in sem_wait (then pthread_cond_wait) while another
// thread sleeps 200 ms and then wakes it. The waiter is not running, so the sleep is a jump.
static sem_t g_sem;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_flag;

static void *sem_waiter(void *) {
    sem_wait(&g_sem);
    return nullptr;
}

static void *cond_waiter(void *) {
    pthread_mutex_lock(&g_mu);
    while (!g_flag) pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
    return nullptr;
}

static int waits() {
    sem_init(&g_sem, 0, 0);
    pthread_t t;
    double t0 = now_s(CLOCK_MONOTONIC);
    pthread_create(&t, nullptr, sem_waiter, nullptr);
    usleep(200000);
    sem_post(&g_sem);
    pthread_join(t, nullptr);
    double t1 = now_s(CLOCK_MONOTONIC);
    pthread_create(&t, nullptr, cond_waiter, nullptr);
    usleep(200000);
    pthread_mutex_lock(&g_mu);
    g_flag = 1;
    pthread_cond_signal(&g_cv);
    pthread_mutex_unlock(&g_mu);
    pthread_join(t, nullptr);
    double t2 = now_s(CLOCK_MONOTONIC);
    printf("sem_s=%.6f\ncond_s=%.6f\n", t1 - t0, t2 - t1);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "streams";
    if (!strcmp(mode, "streams")) return streams();
    if (!strcmp(mode, "memory")) return memory();
    if (!strcmp(mode, "sleep")) return sleeper();
    if (!strcmp(mode, "gpubound")) return gpubound();
    if (!strcmp(mode, "threads")) return threads();
    if (!strcmp(mode, "fork")) return forker(argv[0]);
    if (!strcmp(mode, "child")) return child();
    if (!strcmp(mode, "waits")) return waits();
    if (!strcmp(mode, "unsupported")) return unsupported();
    if (!strcmp(mode, "abort")) return aborter();
    if (!strcmp(mode, "ends")) return ends();
    if (!strcmp(mode, "graph")) return graph();
    if (!strcmp(mode, "graph_manual")) return graph_manual();
    if (!strcmp(mode, "graph_fork")) return graph_fork();
    if (!strcmp(mode, "hostfn")) return hostfn();
    if (!strcmp(mode, "batcher")) return batcher(argc > 2 ? atoi(argv[2]) : 400);
    if (!strcmp(mode, "survive")) return survive(argc > 2 ? atoi(argv[2]) : 150);
    if (!strcmp(mode, "launchloop")) return launchloop(argc > 2 ? atoi(argv[2]) : 2000);
    if (!strcmp(mode, "launchcost")) return launchcost(argc > 2 ? atoi(argv[2]) : 200000);
    if (!strcmp(mode, "synccost")) return synccost(argc > 2 ? atoi(argv[2]) : 2000);
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
