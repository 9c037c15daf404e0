/*
 * NCCL at its API. Communicators are the shim's own: a unique id carries a run-local
 * communicator id, and members meet at the coordinator, never on the network. Every operation
 * is one REC_COLLECTIVE record (its arrival); the calling thread then waits (SYNC_BARRIER) until
 * every member of each of its operations has arrived, so the coordinator places the collective
 * as a barrier on every member's stream before any later work of these threads. Inside
 * ncclGroupStart/End the wait happens once, at the group's end. Backed buffers get real bytes
 * (nccl_data.c). When a member dies, the others' waits end with ncclRemoteError, which
 * ncclCommGetAsyncError reports from then on.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nccl_layer.h"
#include "objects.h"

#define NCCL_API REVATI_EXPORT ncclResult_t
#define ID_MAGIC 0x4e565452u /* "RVTN" */
#define MAX_RANKS 0xfffe

struct unique_id {
    uint32_t magic;
    uint32_t pad;
    uint64_t comm;
};

cudaError_t cudaMalloc(void **ptr, size_t bytes);
cudaError_t cudaFree(void *ptr);

static __thread int t_group_depth;
static __thread struct revati_nccl_op *t_group_ops;
static __thread int t_group_n, t_group_cap;

/* ---- ids and communicators ---------------------------------------------------------------- */

static uint64_t new_comm_id(void) {
    static _Atomic uint32_t counter;
    uint32_t n = atomic_fetch_add(&counter, 1) + 1;
    uint64_t salt = (uint64_t)revati_now() & 0xfff;
    return (uint64_t)(uint32_t)getpid() << 32 | salt << 20 | (n & 0xfffff);
}

static struct revati_nccl_comm *comm_of(void *handle) {
    struct revati_nccl_comm *c = handle;
    return c && c->magic == NCCL_COMM_MAGIC ? c : NULL;
}

static struct revati_nccl_comm *comm_new(uint64_t id, int nranks, int rank, int device) {
    struct revati_nccl_comm *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->send_seq = calloc((size_t)nranks, sizeof *c->send_seq);
    c->recv_seq = calloc((size_t)nranks, sizeof *c->recv_seq);
    if (!c->send_seq || !c->recv_seq) {
        free(c->send_seq);
        free(c->recv_seq);
        free(c);
        return NULL;
    }
    *c = (struct revati_nccl_comm){.magic = NCCL_COMM_MAGIC, .id = id, .nranks = nranks,
                                   .rank = rank, .device = device, .send_seq = c->send_seq,
                                   .recv_seq = c->recv_seq};
    return c;
}

static void comm_free(struct revati_nccl_comm *c) {
    c->magic = 0;
    free(c->send_seq);
    free(c->recv_seq);
    free(c);
}

/* ---- arrivals and the wait ---------------------------------------------------------------- */

static uint64_t op_bytes(const struct revati_nccl_op *op) {
    uint64_t b = op->count * revati_nccl_type_size(op->dtype);
    int whole = op->kind == COLL_ALLGATHER || op->kind == COLL_REDUCESCATTER ||
                op->kind == COLL_ALLTOALL || op->kind == COLL_GATHER;
    return whole ? b * (uint64_t)op->comm->nranks : b;
}

static void arrive(const struct revati_nccl_op *op, int64_t stream_ref, uint16_t fn) {
    struct revati_nccl_comm *c = op->comm;
    revati_nccl_publish(op);
    int64_t enter = revati_now();
    int64_t exit = revati_charge(COST_LAUNCH, enter);
    uint64_t bytes = op->kind == COLL_INIT ? (uint64_t)c->device : op_bytes(op);
    revati_emit(REC_COLLECTIVE, op->kind, fn, ncclSuccess, enter, exit, c->id, bytes,
                (uint64_t)stream_ref, REVATI_COLL_PACK(c->rank, c->nranks, op->peer, op->dtype, op->redop));
}

static void split_finish(const struct revati_nccl_op *op);

/* Wait until every member of `ops` arrived, then move their bytes. */
static ncclResult_t wait_members(struct revati_nccl_op *ops, int n, uint16_t fn) {
    struct revati_msg out;
    int waited = revati_block(MSG_WAIT, SYNC_BARRIER, fn, n, 0, 0, &out) == 0;
    ncclResult_t rc = waited && out.result ? ncclRemoteError : ncclSuccess;
    for (int i = 0; i < n; i++) {
        if (rc != ncclSuccess) {
            atomic_store(&ops[i].comm->async_error, rc);
            continue;
        }
        if (waited) revati_nccl_complete(&ops[i]);
        if (ops[i].kind == COLL_SPLIT) split_finish(&ops[i]);
    }
    return rc;
}

/* One operation: arrive now, and wait now unless a group collects it. */
static ncclResult_t submit(struct revati_nccl_op op, void *stream, uint16_t fn) {
    revati_ensure_init();
    struct revati_nccl_comm *c = op.comm;
    if (!c) return ncclInvalidArgument;
    if (atomic_load(&c->async_error) != ncclSuccess) return atomic_load(&c->async_error);
    if (op.kind == COLL_SEND) op.seq = c->send_seq[op.peer]++;
    else if (op.kind == COLL_RECV) op.seq = c->recv_seq[op.peer]++;
    else if (op.kind != COLL_INIT) op.seq = c->coll_seq++;
    int64_t ref = 0;
    if (op.kind != COLL_INIT && op.kind != COLL_SPLIT) {
        /* a NULL stream is the default stream of the communicator's device (PyTorch passes its
         * current stream, often the default one, for a synchronous collective) */
        struct revati_stream *obj;
        ref = stream ? revati_stream_ref((cudaStream_t)stream, 0, &obj)
                     : revati_default_stream_ref(c->device);
        if (ref < 0) return ncclInvalidArgument;
    }
    arrive(&op, ref, fn);
    if (t_group_depth == 0) return wait_members(&op, 1, fn);
    if (t_group_n == t_group_cap) {
        int cap = t_group_cap ? 2 * t_group_cap : 16;
        struct revati_nccl_op *grown = realloc(t_group_ops, (size_t)cap * sizeof *grown);
        if (!grown) return ncclSystemError;
        t_group_ops = grown;
        t_group_cap = cap;
    }
    t_group_ops[t_group_n++] = op;
    return ncclSuccess;
}

static int valid_peer(const struct revati_nccl_comm *c, int peer) {
    return c && peer >= 0 && peer < c->nranks;
}

/* ---- unique ids and communicators --------------------------------------------------------- */

NCCL_API ncclGetUniqueId(ncclUniqueId *out) {
    if (!out) return ncclInvalidArgument;
    memset(out, 0, sizeof *out);
    struct unique_id id = {.magic = ID_MAGIC, .comm = new_comm_id()};
    memcpy(out->internal, &id, sizeof id);
    return ncclSuccess;
}

static ncclResult_t init_rank(void **comm, int nranks, const ncclUniqueId *uid, int rank, int device) {
    struct unique_id id;
    memcpy(&id, uid->internal, sizeof id);
    if (!comm || id.magic != ID_MAGIC || nranks < 1 || nranks > MAX_RANKS || rank < 0 || rank >= nranks)
        return ncclInvalidArgument;
    struct revati_nccl_comm *c = comm_new(id.comm, nranks, rank, device);
    if (!c) return ncclSystemError;
    *comm = c;
    struct revati_nccl_op op = {.comm = c, .kind = COLL_INIT, .peer = -1};
    return submit(op, NULL, FN_ncclCommInitRank);
}

NCCL_API ncclCommInitRank(void **comm, int nranks, ncclUniqueId id, int rank) {
    return init_rank(comm, nranks, &id, rank, revati_current_device());
}

NCCL_API ncclCommInitRankConfig(void **comm, int nranks, ncclUniqueId id, int rank, void *config) {
    (void)config; /* blocking or not, the init is over when this returns */
    return init_rank(comm, nranks, &id, rank, revati_current_device());
}

NCCL_API ncclCommInitRankScalable(void **comm, int nranks, int rank, int n_ids, ncclUniqueId *ids, void *config) {
    (void)config;
    if (n_ids < 1 || !ids) return ncclInvalidArgument;
    return init_rank(comm, nranks, &ids[0], rank, revati_current_device());
}

NCCL_API ncclGroupStart(void);
NCCL_API ncclGroupEnd(void);

NCCL_API ncclCommInitAll(void **comms, int ndev, const int *devlist) {
    if (!comms || ndev < 1) return ncclInvalidArgument;
    ncclUniqueId id;
    ncclGetUniqueId(&id);
    ncclGroupStart();
    ncclResult_t rc = ncclSuccess;
    for (int i = 0; i < ndev && rc == ncclSuccess; i++)
        rc = init_rank(&comms[i], ndev, &id, i, devlist ? devlist[i] : i);
    ncclResult_t end = ncclGroupEnd();
    return rc != ncclSuccess ? rc : end;
}

/* Split: the members exchange (color, key) like an all-gather, then each builds its child. */
struct split_args {
    int mine[2];
    int *all;
    void **newcomm;
};

NCCL_API ncclCommSplit(void *comm, int color, int key, void **newcomm, void *config) {
    (void)config;
    struct revati_nccl_comm *c = comm_of(comm);
    if (!c || !newcomm) return ncclInvalidArgument;
    struct split_args *s = calloc(1, sizeof *s);
    int *all = calloc((size_t)c->nranks * 2, sizeof *all);
    if (!s || !all) {
        free(s);
        free(all);
        return ncclSystemError;
    }
    *s = (struct split_args){{color, key}, all, newcomm};
    *newcomm = NULL;
    struct revati_nccl_op op = {.comm = c, .out = (struct revati_nccl_comm **)s, .kind = COLL_SPLIT,
                                .dtype = NCCL_INT32, .peer = -1, .send = s->mine, .recv = all,
                                .count = 2, .host = 1};
    return submit(op, NULL, FN_ncclCommSplit);
}

static void split_finish(const struct revati_nccl_op *op) {
    struct split_args *s = (struct split_args *)op->out;
    struct revati_nccl_comm *c = op->comm;
    int color = s->mine[0], key = s->mine[1], n = 0, rank = 0;
    for (int r = 0; r < c->nranks; r++) {
        int rc = s->all[2 * r], rk = s->all[2 * r + 1];
        if (rc != color) continue;
        n++;
        if (rk < key || (rk == key && r < c->rank)) rank++;
    }
    uint32_t child = c->splits++;
    if (color != NCCL_SPLIT_NOCOLOR && n > 0) {
        uint64_t id = (c->id * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)child << 32) ^ (uint32_t)color;
        struct revati_nccl_comm *nc = comm_new(id, n, rank, c->device);
        *s->newcomm = nc;
        if (nc) {
            struct revati_nccl_op init = {.comm = nc, .kind = COLL_INIT, .peer = -1};
            arrive(&init, 0, FN_ncclCommSplit);
        }
    }
    free(s->all);
    free(s);
}

static ncclResult_t comm_end(void *comm, uint16_t fn, int release) {
    revati_ensure_init();
    struct revati_nccl_comm *c = comm_of(comm);
    if (!c) return ncclInvalidArgument;
    int64_t now = revati_now();
    revati_emit(REC_API, 0, fn, ncclSuccess, now, now, c->id, (uint64_t)c->rank, 0, 0);
    if (release) comm_free(c);
    return ncclSuccess;
}

NCCL_API ncclCommFinalize(void *comm) { return comm_end(comm, FN_ncclCommFinalize, 0); }
NCCL_API ncclCommDestroy(void *comm) { return comm_end(comm, FN_ncclCommDestroy, 1); }
NCCL_API ncclCommAbort(void *comm) { return comm_end(comm, FN_ncclCommAbort, 1); }

NCCL_API ncclCommGetAsyncError(void *comm, ncclResult_t *err) {
    struct revati_nccl_comm *c = comm_of(comm);
    if (!c || !err) return ncclInvalidArgument;
    *err = atomic_load(&c->async_error);
    return ncclSuccess;
}

NCCL_API ncclCommCount(const void *comm, int *count) {
    struct revati_nccl_comm *c = comm_of((void *)comm);
    if (!c || !count) return ncclInvalidArgument;
    *count = c->nranks;
    return ncclSuccess;
}

NCCL_API ncclCommCuDevice(const void *comm, int *device) {
    struct revati_nccl_comm *c = comm_of((void *)comm);
    if (!c || !device) return ncclInvalidArgument;
    *device = c->device;
    return ncclSuccess;
}

NCCL_API ncclCommUserRank(const void *comm, int *rank) {
    struct revati_nccl_comm *c = comm_of((void *)comm);
    if (!c || !rank) return ncclInvalidArgument;
    *rank = c->rank;
    return ncclSuccess;
}

/* ---- memory ------------------------------------------------------------------------------- */

NCCL_API ncclMemAlloc(void **ptr, size_t size) {
    return cudaMalloc(ptr, size) == cudaSuccess ? ncclSuccess : ncclUnhandledCudaError;
}

NCCL_API ncclMemFree(void *ptr) { return cudaFree(ptr) == cudaSuccess ? ncclSuccess : ncclUnhandledCudaError; }

NCCL_API ncclCommRegister(const void *comm, void *buff, size_t size, void **handle) {
    (void)size;
    if (!comm_of((void *)comm) || !handle) return ncclInvalidArgument;
    *handle = buff; /* nothing to register: the handle only has to come back */
    return ncclSuccess;
}

NCCL_API ncclCommDeregister(const void *comm, void *handle) {
    (void)handle;
    return comm_of((void *)comm) ? ncclSuccess : ncclInvalidArgument;
}

/* ---- groups ------------------------------------------------------------------------------- */

NCCL_API ncclGroupStart(void) {
    t_group_depth++;
    return ncclSuccess;
}

NCCL_API ncclGroupEnd(void) {
    if (t_group_depth == 0) return ncclInvalidUsage;
    if (--t_group_depth > 0 || t_group_n == 0) return ncclSuccess;
    int n = t_group_n;
    t_group_n = 0;
    return wait_members(t_group_ops, n, FN_ncclGroupEnd);
}

/* ---- collectives and point-to-point ------------------------------------------------------- */

static ncclResult_t collective(uint8_t kind, const void *send, void *recv, size_t count, int dtype,
                               int redop, int peer, void *comm, void *stream, uint16_t fn) {
    struct revati_nccl_comm *c = comm_of(comm);
    if (!c || !revati_nccl_type_size(dtype)) return ncclInvalidArgument;
    if (peer != -1 && !valid_peer(c, peer)) return ncclInvalidArgument;
    struct revati_nccl_op op = {.comm = c, .kind = kind, .dtype = dtype, .redop = redop,
                                .peer = peer, .send = send, .recv = recv, .count = count};
    return submit(op, stream, fn);
}

NCCL_API ncclAllReduce(const void *s, void *r, size_t n, int t, int op, void *comm, void *stream) {
    return collective(COLL_ALLREDUCE, s, r, n, t, op, -1, comm, stream, FN_ncclAllReduce);
}

NCCL_API ncclReduce(const void *s, void *r, size_t n, int t, int op, int root, void *comm, void *stream) {
    return collective(COLL_REDUCE, s, r, n, t, op, root, comm, stream, FN_ncclReduce);
}

NCCL_API ncclReduceScatter(const void *s, void *r, size_t n, int t, int op, void *comm, void *stream) {
    return collective(COLL_REDUCESCATTER, s, r, n, t, op, -1, comm, stream, FN_ncclReduceScatter);
}

NCCL_API ncclAllGather(const void *s, void *r, size_t n, int t, void *comm, void *stream) {
    return collective(COLL_ALLGATHER, s, r, n, t, 0, -1, comm, stream, FN_ncclAllGather);
}

NCCL_API ncclBroadcast(const void *s, void *r, size_t n, int t, int root, void *comm, void *stream) {
    return collective(COLL_BROADCAST, s, r, n, t, 0, root, comm, stream, FN_ncclBroadcast);
}

NCCL_API ncclBcast(void *buff, size_t n, int t, int root, void *comm, void *stream) {
    return collective(COLL_BROADCAST, buff, buff, n, t, 0, root, comm, stream, FN_ncclBcast);
}

NCCL_API ncclAlltoAll(const void *s, void *r, size_t n, int t, void *comm, void *stream) {
    return collective(COLL_ALLTOALL, s, r, n, t, 0, -1, comm, stream, FN_ncclAlltoAll);
}

NCCL_API ncclGather(const void *s, void *r, size_t n, int t, int root, void *comm, void *stream) {
    return collective(COLL_GATHER, s, r, n, t, 0, root, comm, stream, FN_ncclGather);
}

NCCL_API ncclSend(const void *s, size_t n, int t, int peer, void *comm, void *stream) {
    return collective(COLL_SEND, s, NULL, n, t, 0, peer, comm, stream, FN_ncclSend);
}

NCCL_API ncclRecv(void *r, size_t n, int t, int peer, void *comm, void *stream) {
    return collective(COLL_RECV, NULL, r, n, t, 0, peer, comm, stream, FN_ncclRecv);
}

/* ---- versions and errors ------------------------------------------------------------------ */

NCCL_API ncclGetVersion(int *version) {
    if (!version) return ncclInvalidArgument;
    *version = REVATI_NCCL_VERSION;
    return ncclSuccess;
}

REVATI_EXPORT const char *ncclGetErrorString(ncclResult_t result) {
    switch (result) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
    }
}

REVATI_EXPORT const char *ncclGetLastError(void *comm) {
    struct revati_nccl_comm *c = comm_of(comm);
    if (c && atomic_load(&c->async_error) == ncclRemoteError)
        return "revati: a member of this communicator died (see the trace's barriers.failed_rank)";
    return "";
}
