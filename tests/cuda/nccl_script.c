/*
 * A multi-rank NCCL program driven by a script, for revati's randomised tests. Built with gcc
 * against the real nccl.h, linked to the real libnccl.so.2 and libcudart.so.
 *
 *   nccl_script RANKS PROCS OPS
 *
 * RANKS ranks run as threads of PROCS processes (forked; RANKS % PROCS == 0). OPS is a list of
 * operations separated by commas, each `KIND:COUNT:STREAM:LATE:DELAY_US`:
 *   KIND    ar (all-reduce), ag (all-gather), rs (reduce-scatter), bc (broadcast from rank 0),
 *           p2p (a send/recv ring in one group)
 *   COUNT   float elements per rank
 *   STREAM  0 or 1: which of the rank's two streams the operation (and a memset before it) runs on
 *   LATE    the rank that sleeps DELAY_US microseconds before the operation (host delay)
 * Every rank syncs both streams at the end. Exits non-zero if a call fails.
 */
#include <cuda_runtime.h>
#include <nccl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_OPS 64

struct op {
    char kind[4];
    size_t count;
    int stream, late, delay_us;
};

static struct op ops[MAX_OPS];
static int n_ops, nranks;
static ncclUniqueId uid;

static int parse(char *text) {
    for (char *tok = strtok(text, ","); tok && n_ops < MAX_OPS; tok = strtok(NULL, ",")) {
        struct op *o = &ops[n_ops++];
        if (sscanf(tok, "%3[a-z2]:%zu:%d:%d:%d", o->kind, &o->count, &o->stream, &o->late, &o->delay_us) != 5)
            return -1;
    }
    return 0;
}

static ncclResult_t issue(const struct op *o, ncclComm_t c, int rank, float *send, float *recv, cudaStream_t s) {
    if (!strcmp(o->kind, "ar")) return ncclAllReduce(send, recv, o->count, ncclFloat, ncclSum, c, s);
    if (!strcmp(o->kind, "ag")) return ncclAllGather(send, recv, o->count, ncclFloat, c, s);
    if (!strcmp(o->kind, "rs")) return ncclReduceScatter(send, recv, o->count, ncclFloat, ncclSum, c, s);
    if (!strcmp(o->kind, "bc")) return ncclBroadcast(send, recv, o->count, ncclFloat, 0, c, s);
    ncclGroupStart();
    ncclSend(send, o->count, ncclFloat, (rank + 1) % nranks, c, s);
    ncclRecv(recv, o->count, ncclFloat, (rank + nranks - 1) % nranks, c, s);
    return ncclGroupEnd();
}

static void *run_rank(void *arg) {
    int rank = (int)(long)arg;
    size_t most = 1;
    for (int i = 0; i < n_ops; i++)
        if (ops[i].count > most) most = ops[i].count;
    cudaStream_t streams[2];
    float *send, *recv;
    int devices = 1;
    cudaGetDeviceCount(&devices);
    if (cudaSetDevice(rank % devices) != cudaSuccess || cudaStreamCreate(&streams[0]) != cudaSuccess ||
        cudaStreamCreate(&streams[1]) != cudaSuccess ||
        cudaMalloc((void **)&send, most * (size_t)nranks * sizeof(float)) != cudaSuccess ||
        cudaMalloc((void **)&recv, most * (size_t)nranks * sizeof(float)) != cudaSuccess)
        return (void *)1L;
    ncclComm_t c;
    if (ncclCommInitRank(&c, nranks, uid, rank) != ncclSuccess) return (void *)2L;
    for (int i = 0; i < n_ops; i++) {
        const struct op *o = &ops[i];
        cudaStream_t s = streams[o->stream & 1];
        if (rank == o->late && o->delay_us > 0) usleep((useconds_t)o->delay_us);
        cudaMemsetAsync(send, 0, o->count * sizeof(float), s);
        if (issue(o, c, rank, send, recv, s) != ncclSuccess) return (void *)3L;
    }
    if (cudaStreamSynchronize(streams[0]) != cudaSuccess || cudaStreamSynchronize(streams[1]) != cudaSuccess)
        return (void *)4L;
    ncclCommDestroy(c);
    return NULL;
}

static int run_threads(int first, int count) {
    pthread_t t[64];
    int bad = 0;
    for (int i = 0; i < count; i++) pthread_create(&t[i], NULL, run_rank, (void *)(long)(first + i));
    for (int i = 0; i < count; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        bad |= rc != NULL;
    }
    return bad;
}

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    nranks = atoi(argv[1]);
    int procs = atoi(argv[2]);
    if (nranks < 1 || procs < 1 || nranks % procs || nranks / procs > 64 || parse(argv[3]) != 0) return 2;
    ncclGetUniqueId(&uid);
    int per = nranks / procs, failed = 0;
    fflush(stdout);
    for (int p = 1; p < procs; p++)
        if (fork() == 0) _exit(run_threads(p * per, per));
    failed |= run_threads(0, per);
    for (int p = 1; p < procs; p++) {
        int status = 0;
        wait(&status);
        failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    printf("%s\n", failed ? "FAILED" : "ok");
    return failed;
}
