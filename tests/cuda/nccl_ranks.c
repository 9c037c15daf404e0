/*
 * NCCL programs for revati's tests, built with gcc against the real nccl.h and linked to the
 * real libnccl.so.2 and libcudart.so (as applications are). Every mode checks the data it gets
 * back and exits non-zero on a mismatch.
 *
 *   nccl_ranks threads N ITERS   one thread per rank, ncclCommInitRank: all-reduce (float),
 *                                all-gather (int32), broadcast (half) and a send/recv ring
 *   nccl_ranks group N ITERS     one thread, ncclCommInitAll, every call inside a group
 *   nccl_ranks fork N ITERS      one process per rank (fork), the same loop as `threads`
 *   nccl_ranks straggler N ITERS threads; the last rank sleeps 5 ms before each all-reduce
 *   nccl_ranks kill N ITERS      processes; rank 1 kills itself before its 3rd all-reduce, the
 *                                others must see an error (exit 0 when they all did)
 *   nccl_ranks jumps N ITERS [P]  bench, every rank sleeping 100 us before each all-reduce (jumps)
 *   nccl_ranks bench N ITERS [P] ITERS all-reduces of 64 MiB (virtual) each, one sync; ranks are
 *                                threads, or P processes of N/P threads (up to 8 per process)
 */
#include <cuda_runtime.h>
#include <nccl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define COUNT 256

static int nranks, iters, straggle, per_proc = 8;
static const char *mode;
static ncclUniqueId uid;
static ncclComm_t *group_comms;

#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (!(cond)) {                                     \
            fprintf(stderr, "rank check failed: " __VA_ARGS__); \
            fprintf(stderr, "\n");                         \
            return 1;                                      \
        }                                                  \
    } while (0)

struct rank_bufs {
    float *sum;
    int *gathered, *mine;
    unsigned short *bcast;
    float *ring_out, *ring_in;
    cudaStream_t stream;
};

/* fp16 bits of a float that fp16 holds exactly (the values used here) */
static unsigned short half_of(float f) {
    unsigned int x;
    memcpy(&x, &f, sizeof x);
    if (!(x & 0x7fffffff)) return (unsigned short)(x >> 16);
    return (unsigned short)(((x >> 16) & 0x8000) | ((((x >> 23) & 0xff) - 112) << 10) | ((x & 0x7fffff) >> 13));
}

static int setup(int rank, struct rank_bufs *b) {
    CHECK(cudaSetDevice(rank) == cudaSuccess, "cudaSetDevice %d", rank);
    CHECK(cudaStreamCreate(&b->stream) == cudaSuccess, "stream");
    cudaMalloc((void **)&b->sum, COUNT * sizeof(float));
    cudaMalloc((void **)&b->mine, COUNT * sizeof(int));
    cudaMalloc((void **)&b->gathered, (size_t)nranks * COUNT * sizeof(int));
    cudaMalloc((void **)&b->bcast, COUNT * sizeof(unsigned short));
    cudaMalloc((void **)&b->ring_out, COUNT * sizeof(float));
    cudaMalloc((void **)&b->ring_in, COUNT * sizeof(float));
    return 0;
}

/* Fill this rank's inputs for iteration `it`. */
static void fill(int rank, int it, struct rank_bufs *b) {
    float f[COUNT];
    int v[COUNT];
    unsigned short h[COUNT];
    for (int i = 0; i < COUNT; i++) {
        f[i] = (float)(rank + 1) * (float)(i + it);
        v[i] = rank * 1000 + i + it;
        h[i] = half_of(rank == 0 ? 0.5f * (float)(it + 1) : -1.0f);
    }
    cudaMemcpy(b->sum, f, sizeof f, cudaMemcpyHostToDevice);
    cudaMemcpy(b->ring_out, f, sizeof f, cudaMemcpyHostToDevice);
    cudaMemcpy(b->mine, v, sizeof v, cudaMemcpyHostToDevice);
    cudaMemcpy(b->bcast, h, sizeof h, cudaMemcpyHostToDevice);
}

static int check(int rank, int it, struct rank_bufs *b) {
    float f[COUNT];
    static __thread int g[8 * COUNT];
    unsigned short h[COUNT];
    cudaMemcpy(f, b->sum, sizeof f, cudaMemcpyDeviceToHost);
    float total = (float)(nranks * (nranks + 1) / 2);
    for (int i = 0; i < COUNT; i++) CHECK(f[i] == total * (float)(i + it), "rank %d sum[%d] = %g", rank, i, f[i]);
    cudaMemcpy(g, b->gathered, (size_t)nranks * COUNT * sizeof(int), cudaMemcpyDeviceToHost);
    for (int r = 0; r < nranks; r++)
        for (int i = 0; i < COUNT; i++) CHECK(g[r * COUNT + i] == r * 1000 + i + it, "rank %d gather", rank);
    cudaMemcpy(h, b->bcast, sizeof h, cudaMemcpyDeviceToHost);
    CHECK(h[7] == half_of(0.5f * (float)(it + 1)), "rank %d bcast %#x", rank, h[7]);
    cudaMemcpy(f, b->ring_in, sizeof f, cudaMemcpyDeviceToHost);
    int from = (rank + nranks - 1) % nranks;
    CHECK(f[3] == (float)(from + 1) * (float)(3 + it), "rank %d ring got %g", rank, f[3]);
    return 0;
}

static ncclResult_t step(ncclComm_t c, int rank, struct rank_bufs *b) {
    ncclResult_t rc = ncclAllReduce(b->sum, b->sum, COUNT, ncclFloat, ncclSum, c, b->stream);
    if (rc != ncclSuccess) return rc;
    rc = ncclAllGather(b->mine, b->gathered, COUNT, ncclInt32, c, b->stream);
    if (rc == ncclSuccess) rc = ncclBroadcast(b->bcast, b->bcast, COUNT, ncclFloat16, 0, c, b->stream);
    if (rc != ncclSuccess) return rc;
    ncclGroupStart();
    ncclSend(b->ring_out, COUNT, ncclFloat, (rank + 1) % nranks, c, b->stream);
    ncclRecv(b->ring_in, COUNT, ncclFloat, (rank + nranks - 1) % nranks, c, b->stream);
    return ncclGroupEnd();
}

static int run_rank(int rank) {
    struct rank_bufs b;
    if (setup(rank, &b)) return 1;
    ncclComm_t c;
    CHECK(ncclCommInitRank(&c, nranks, uid, rank) == ncclSuccess, "init rank %d", rank);
    int n = 0, dev = -1, me = -1;
    ncclCommCount(c, &n);
    ncclCommCuDevice(c, &dev);
    ncclCommUserRank(c, &me);
    CHECK(n == nranks && me == rank && dev == rank, "comm info %d %d %d", n, dev, me);
    for (int it = 0; it < iters; it++) {
        fill(rank, it, &b);
        if (!strcmp(mode, "kill") && rank == 1 && it == 2) raise(SIGKILL);
        if (straggle && rank == nranks - 1) usleep(5000);
        ncclResult_t rc = step(c, rank, &b);
        if (!strcmp(mode, "kill") && rc != ncclSuccess) {
            ncclResult_t async = ncclSuccess;
            ncclCommGetAsyncError(c, &async);
            printf("rank %d: iteration %d failed: %s (async: %s)\n", rank, it, ncclGetErrorString(rc),
                   ncclGetErrorString(async));
            ncclCommAbort(c);
            return async == ncclRemoteError ? 0 : 1;
        }
        CHECK(rc == ncclSuccess, "rank %d step %d: %s", rank, it, ncclGetErrorString(rc));
        CHECK(cudaStreamSynchronize(b.stream) == cudaSuccess, "sync");
        if (check(rank, it, &b)) return 1;
    }
    ncclCommDestroy(c);
    return !strcmp(mode, "kill") ? 1 : 0; /* a kill run must have failed */
}

/* Coordination cost: all-reduces back to back on a virtual buffer, one sync at the end. */
static int bench_rank(int rank) {
    cudaStream_t s;
    void *buf;
    CHECK(cudaSetDevice(rank % per_proc) == cudaSuccess && cudaStreamCreate(&s) == cudaSuccess, "setup");
    CHECK(cudaMalloc(&buf, 64u << 20) == cudaSuccess, "alloc");
    ncclComm_t c;
    CHECK(ncclCommInitRank(&c, nranks, uid, rank) == ncclSuccess, "init");
    int sleeps = !strcmp(mode, "jumps");
    for (int it = 0; it < iters; it++) {
        if (sleeps) usleep(100);
        CHECK(ncclAllReduce(buf, buf, 16u << 20, ncclFloat, ncclSum, c, s) == ncclSuccess, "allreduce");
    }
    CHECK(cudaStreamSynchronize(s) == cudaSuccess, "sync");
    ncclCommDestroy(c);
    return 0;
}

static void *rank_thread(void *arg) {
    int rank = (int)(long)arg;
    int bench = !strcmp(mode, "bench") || !strcmp(mode, "jumps");
    return (void *)(long)(bench ? bench_rank(rank) : run_rank(rank));
}

static int run_group(void) {
    struct rank_bufs b[8];
    group_comms = calloc((size_t)nranks, sizeof *group_comms);
    for (int r = 0; r < nranks; r++)
        if (setup(r, &b[r])) return 1;
    CHECK(ncclCommInitAll(group_comms, nranks, NULL) == ncclSuccess, "init all");
    for (int it = 0; it < iters; it++) {
        for (int r = 0; r < nranks; r++) fill(r, it, &b[r]);
        ncclGroupStart();
        for (int r = 0; r < nranks; r++)
            ncclAllReduce(b[r].sum, b[r].sum, COUNT, ncclFloat, ncclSum, group_comms[r], b[r].stream);
        for (int r = 0; r < nranks; r++)
            ncclAllGather(b[r].mine, b[r].gathered, COUNT, ncclInt32, group_comms[r], b[r].stream);
        for (int r = 0; r < nranks; r++)
            ncclBroadcast(b[r].bcast, b[r].bcast, COUNT, ncclFloat16, 0, group_comms[r], b[r].stream);
        for (int r = 0; r < nranks; r++) {
            ncclSend(b[r].ring_out, COUNT, ncclFloat, (r + 1) % nranks, group_comms[r], b[r].stream);
            ncclRecv(b[r].ring_in, COUNT, ncclFloat, (r + nranks - 1) % nranks, group_comms[r], b[r].stream);
        }
        CHECK(ncclGroupEnd() == ncclSuccess, "group end");
        for (int r = 0; r < nranks; r++) {
            cudaStreamSynchronize(b[r].stream);
            if (check(r, it, &b[r])) return 1;
        }
    }
    for (int r = 0; r < nranks; r++) ncclCommDestroy(group_comms[r]);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: nccl_ranks threads|group|fork|straggler|kill N ITERS\n");
        return 2;
    }
    mode = argv[1];
    nranks = atoi(argv[2]);
    iters = atoi(argv[3]);
    straggle = !strcmp(mode, "straggler");
    int procs = argc > 4 ? atoi(argv[4]) : 1;
    if (procs < 1 || nranks < 1 || nranks % procs || nranks / procs > 8) return 2;
    per_proc = nranks / procs;
    int version = 0;
    ncclGetVersion(&version);
    printf("nccl %d, %d ranks, mode %s\n", version, nranks, mode);
    if (!strcmp(mode, "group")) {
        int failed = run_group();
        printf("%s\n", failed ? "FAILED" : "ok");
        return failed;
    }
    ncclGetUniqueId(&uid);
    int failed = 0;
    if ((!strcmp(mode, "bench") || !strcmp(mode, "jumps")) && procs > 1) {
        fflush(stdout);
        for (int p = 0; p < procs; p++) {
            if (fork() != 0) continue;
            pthread_t t[8];
            for (int i = 0; i < per_proc; i++)
                pthread_create(&t[i], NULL, rank_thread, (void *)(long)(p * per_proc + i));
            int bad = 0;
            for (int i = 0; i < per_proc; i++) {
                void *rc;
                pthread_join(t[i], &rc);
                bad |= rc != NULL;
            }
            _exit(bad);
        }
        for (int p = 0; p < procs; p++) {
            int status = 0;
            wait(&status);
            failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
        }
    } else if (!strcmp(mode, "fork") || !strcmp(mode, "kill")) {
        pid_t pids[8];
        fflush(stdout); /* children inherit no buffered output */
        for (int r = 0; r < nranks; r++) {
            pids[r] = fork();
            if (pids[r] == 0) {
                int rc = run_rank(r);
                fflush(stdout);
                _exit(rc);
            }
        }
        for (int r = 0; r < nranks; r++) {
            int status = 0;
            waitpid(pids[r], &status, 0);
            int killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
            if (!strcmp(mode, "kill") && r == 1) failed |= !killed;
            else failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
        }
    } else {
        pthread_t t[8];
        for (int r = 0; r < nranks; r++) pthread_create(&t[r], NULL, rank_thread, (void *)(long)r);
        for (int r = 0; r < nranks; r++) {
            void *rc;
            pthread_join(t[r], &rc);
            failed |= rc != NULL;
        }
    }
    printf("%s\n", failed ? "FAILED" : "ok");
    return failed;
}
