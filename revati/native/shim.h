/*
 * revati shim ABI: everything the preloaded shim and the coordinator share, defined once.
 *
 * A run directory (mode 0700) holds:
 *   clock.page            struct revati_clock_page, mmap'd by every participant and the coordinator
 *   coordinator.sock      SOCK_SEQPACKET Unix socket; one registration connection per process
 *                         (held open for the life of the process) and one lazily opened
 *                         connection per thread that blocks
 *   config.txt            "key=value" lines written by the coordinator before the program starts
 *                         (device properties, host costs, backed-max); read once by the shim
 *   ring-<pid>-<serial>.bin   struct revati_ring_header followed by `capacity` 64-byte records
 *   names-<pid>-<serial>.txt  append-only: kernel, thread and unsupported-call names
 *
 * The Python side mirrors these layouts in revati/shim.py (the one module that talks to the
 * native side); tests/unit/test_shim_abi.py compiles a probe from this header and checks every
 * size, offset and constant shim.py uses. Bump REVATI_PROTOCOL_VERSION on any layout or meaning
 * change; the trace stores it.
 */
#ifndef REVATI_SHIM_H
#define REVATI_SHIM_H

#include <stdint.h>

#define REVATI_PROTOCOL_VERSION 11
#define REVATI_PAGE_MAGIC 0x52565443u /* "RVTC" */
#define REVATI_RING_MAGIC 0x52565452u /* "RVTR" */
#define REVATI_MAX_DEVICES 16
/* A stream in a record is a created stream's handle, or a default stream of a device of the
 * node: (device << REVATI_DEFAULT_STREAM_DEVICE_SHIFT) | (0 legacy, 2 per-thread). Device 0's
 * default streams are 0 and 2, as before devices were carried. */
#define REVATI_DEFAULT_STREAM_DEVICE_SHIFT 8

/* ---- clock page -------------------------------------------------------------------------- */
/* V = (frozen ? base_virtual : base_virtual + (now_real - base_real) / dilation) + charge_ns.
 * Writers (block entry/exit, jumps) take `lock`, then make `seq` odd, write, make it even.
 * Readers retry while `seq` is odd or changed. `charge_ns` (host cost of calls) only grows and is
 * added with one atomic op on the launch path, outside the seqlock. */
struct revati_clock_page {
    uint32_t magic;
    uint32_t version;
    uint32_t lock;             /* writers' spinlock: the holder's process id, 0 when free */
    uint32_t seq;              /* seqlock sequence: odd while a writer is inside */
    int64_t base_real;         /* CLOCK_MONOTONIC ns at the last unfreeze/jump */
    int64_t base_virtual;      /* virtual ns at base_real (without charge) */
    int64_t charge_ns;         /* modelled host cost of intercepted calls, added to V */
    int32_t running;           /* participant threads not inside an intercepted blocking call */
    uint32_t frozen;           /* 1 while running == 0 */
    uint64_t generation;       /* bumped by every jump */
    uint64_t waits_announced;  /* blocking entries ever made; the coordinator counts WAITs */
    double dilation;           /* host time dilation (>= 1 slows host time down; the coordinator
                                * raises it while participant threads wait for a CPU) */
    int64_t epoch_realtime_ns; /* CLOCK_REALTIME at V = 0 */
    int64_t proposal_target;   /* two-phase jump: proposed V (prepare) */
    uint64_t proposal_generation;
    uint32_t coordinator_pid;
    uint32_t device_count;
    int64_t epoch_monotonic_ns; /* CLOCK_MONOTONIC a traced program reads at V = 0 */
    int32_t stalled;           /* threads waiting for ring space or moving emulated bytes: no jump */
    uint32_t pad0;
    int64_t mem_capacity[REVATI_MAX_DEVICES];
    int64_t mem_used[REVATI_MAX_DEVICES]; /* atomic: capacity accounting across processes */
    int64_t flowed_ns;         /* virtual ns the clock flowed (unfrozen) up to the last freeze */
    uint64_t unfreezes;        /* times `running` left 0, but for a spin waiter's own wake:
                                * someone ran (spin waits watch it) */
    int32_t spinning;          /* threads counted in `running` that spin on sched_yield (atomic) */
    uint32_t pad1;
    int64_t flowed_real_ns;    /* real ns the clock flowed (unfrozen) up to the last freeze */
    int64_t wake_wait_ns;      /* atomic: run_delay of woken threads before they ran (block.c) */
    uint8_t reserved[216];
};

/* ---- ring: one per participant process, multi-producer, single consumer ----------------- */
struct revati_ring_header {
    uint32_t magic;
    uint32_t version;
    uint32_t capacity;        /* records, a power of two */
    uint32_t record_size;     /* 64 */
    uint64_t head;            /* next index to reserve (producers: CAS) */
    uint64_t tail;            /* next index the coordinator reads */
    uint64_t dropped;         /* records dropped because the ring stayed full */
    int32_t proc_running;     /* this process's share of page->running */
    int32_t pid;
    int32_t parent_pid;
    int32_t proc_spinning;    /* this process's share of page->spinning */
    /* CLOCK_MONOTONIC ns this process held a share of `running` (it kept the clock flowing):
     * the closed intervals' sum, less the start of the open one while proc_running > 0 (add
     * now to read it then). Changed with proc_running, under the page lock. */
    int64_t running_real_ns;
    /* This process's blocking entries ever announced (with page->waits_announced, in the same
     * page write): the coordinator jumps only when every live process's WAITs have arrived, and
     * a process killed between announcing and sending its WAIT no longer counts. */
    uint64_t proc_waits_announced;
    int32_t proc_stalled;     /* this process's share of page->stalled */
    uint8_t reserved[52];
};

/* A record is committed when `commit` == (uint32_t)(index + 1); it is written last. */
struct revati_record {
    uint32_t commit;
    uint8_t type;     /* enum revati_record_type */
    uint8_t kind;     /* per type: copy kind | flags, sync kind, alloc kind */
    uint16_t fn;      /* which API call: the fn column of entry_points.tsv (enum revati_fn) */
    uint32_t thread;  /* per-process thread index (names file 'T' line) */
    int32_t result;   /* return code */
    int64_t enter_ns; /* virtual time at entry */
    int64_t exit_ns;  /* virtual time at return (blocking calls: the coordinator knows better) */
    union {
        uint64_t u[4];
        struct {
            uint32_t kernel; /* names file 'K' id */
            uint32_t grid_x;
            uint16_t grid_y, grid_z, block_x, block_y, block_z, graph_flag;
            uint32_t shared_mem;
            uint64_t stream;
        } launch;
    } p;
};
_Static_assert(sizeof(struct revati_record) == 64, "ring record must be 64 bytes");
_Static_assert(sizeof(struct revati_ring_header) == 128, "ring header must be 128 bytes");

enum revati_record_type {
    REC_API = 1,           /* plain call: p.u = args summary (fn-specific) */
    REC_LAUNCH = 2,        /* kernel launch: p.launch */
    REC_COPY = 3,          /* p.u = dst, src, bytes, stream; kind = copy kind | REC_F_* */
    REC_MEMSET = 4,        /* p.u = dst, bytes, value, stream; kind = REC_F_* */
    REC_ALLOC = 5,         /* p.u = address, bytes, device, pool id (stream-ordered) or 0;
                              kind = alloc kind | REC_F_BACKED; with REC_F_GRAPH (an allocation
                              node reached by a graph launch) d = stream */
    REC_FREE = 6,          /* p.u = address; with REC_F_GRAPH (a free node) d = stream */
    REC_STREAM_CREATE = 7, /* p.u = handle, flags, priority, device */
    REC_STREAM_DESTROY = 8,/* p.u = handle */
    REC_EVENT_RECORD = 9,  /* p.u = event, stream */
    REC_STREAM_WAIT = 10,  /* p.u = stream, event */
    REC_SYNC = 11,         /* blocking call: p.u = target a, target b, timeout ns; kind = sync kind */
    REC_UNSUPPORTED = 12,  /* p.u[0] = names file 'U' id */
    REC_THREAD = 13,       /* new thread: p.u = OS tid */
    REC_GRAPH_LAUNCH = 14, /* p.u = graph exec id, stream, node count, exec version;
                              kind REC_GRAPH_REPLAY: no node records follow (as last time) */
    REC_QUERY = 15,        /* non-blocking query answered by the coordinator: p.u = a, b */
    REC_DEVICE_RESET = 16, /* p.u = device */
    REC_HOST_FN = 17,      /* host function enqueued: p.u = stream */
    REC_EVENT_CREATE = 18, /* p.u = event, flags */
    REC_GRAPH_NODE = 19,   /* precedes each node record of a graph launch: p.u = node position,
                              up to 3 positions it depends on (kind = how many; more follow in
                              further REC_GRAPH_NODE records with the same position) */
    REC_GEMM = 20,         /* a library GEMM's shape (struct revati_gemm_record): precedes the
                              REC_LAUNCH record of the same thread that stands for its kernel */
    REC_COLLECTIVE = 21,   /* an NCCL operation arrives: kind = enum revati_coll_kind; p.u = comm id,
                              bytes (the collective's size S: the whole buffer for all-gather,
                              reduce-scatter and all-to-all), stream, packed members (REVATI_COLL_*);
                              init: bytes = the member's device. A REC_SYNC of kind SYNC_BARRIER
                              follows the thread's arrivals (one call, or a group's end) */
    REC_KERNEL_ARGS = 22,  /* bytes of a launch's arguments (struct revati_args_record), kept for
                              kernels whose argument layout the run's table knows (config.txt
                              `kernel_args` lines): precedes the REC_LAUNCH record of the same
                              thread; kind = the layout's id in that table */
};

/* REC_GEMM: the shape of one cuBLAS / cuBLASLt GEMM, in the ring slot before its launch record
 * (same thread; another thread's records may come between). Same 12-byte head as every record;
 * the rest is its own. Types are cudaDataType_t values, `compute` a cublasComputeType_t,
 * `epilogue` a cublasLtEpilogue_t (1 = none). Leading dimensions and batch strides in elements;
 * the stride of C is not kept. */
struct revati_gemm_record {
    uint32_t commit;
    uint8_t type;     /* REC_GEMM */
    uint8_t kind;     /* transa | transb << 2 (0 N, 1 T, 2 C) | REC_GEMM_F_* */
    uint16_t fn;      /* the library call */
    uint32_t thread;
    uint32_t m;
    int64_t stride_a, stride_b;
    uint32_t n, k, batch;
    uint32_t lda, ldb, ldc;
    uint8_t a_type, b_type, c_type, compute, scale_type, flags; /* flags: REC_GEMM_X_* */
    uint16_t epilogue;
};
_Static_assert(sizeof(struct revati_gemm_record) == 64, "gemm record must be 64 bytes");
#define REC_GEMM_F_LT 0x10u      /* cublasLtMatmul */
#define REC_GEMM_F_PTR_ARRAY 0x20u /* batched through arrays of pointers (…Batched, not strided) */
#define REC_GEMM_X_BIAS 0x01u    /* epilogue reads a bias vector */
#define REC_GEMM_X_FP8_SCALES 0x02u /* A/B/C/D scale pointers set (fp8) */
#define REC_GEMM_X_DEVICE_SCALARS 0x04u /* alpha/beta are device pointers */
#define REC_GEMM_X_BETA 0x08u    /* beta != 0 (C is read), when alpha/beta live on the host */

/* REC_KERNEL_ARGS: slices of one launch's argument bytes, in the order of its layout's slices
 * (config.txt: `kernel_args=<id>;<name pattern>;<arg>:<offset>:<length>,...`), then zeros.
 * Same 12-byte head as every record. */
#define REVATI_ARGS_BYTES 52
struct revati_args_record {
    uint32_t commit;
    uint8_t type;     /* REC_KERNEL_ARGS */
    uint8_t kind;     /* layout id */
    uint16_t fn;      /* 0 */
    uint32_t thread;
    uint8_t bytes[REVATI_ARGS_BYTES];
};
_Static_assert(sizeof(struct revati_args_record) == 64, "args record must be 64 bytes");

/* cudaDataType_t values and the names the trace gives them (revati/shim.py parses this list). */
#define REVATI_DATA_TYPES(X) \
    X(0, fp32) X(1, fp64) X(2, fp16) X(3, int8) X(4, cfp32) X(5, cfp64) X(6, cfp16) X(7, cint8) \
    X(8, uint8) X(10, int32) X(14, bf16) X(15, cbf16) X(28, fp8_e4m3) X(29, fp8_e5m2) \
    X(30, fp8_ue8m0) X(31, fp6_e2m3) X(32, fp6_e3m2) X(33, fp4_e2m1)
/* cublasLtEpilogue_t values and their names (kernel-name suffixes, trace features). */
#define REVATI_EPILOGUES(X) \
    X(1, none) X(2, relu) X(4, bias) X(6, relu_bias) X(32, gelu) X(36, gelu_bias) \
    X(130, relu_aux) X(134, relu_aux_bias) X(160, gelu_aux) X(164, gelu_aux_bias) X(136, drelu) \
    X(152, drelu_bgrad) X(192, dgelu) X(208, dgelu_bgrad) X(256, bgrada) X(512, bgradb)

/* REC_COLLECTIVE kind values (the barriers.collective names the coordinator writes) */
enum revati_coll_kind {
    COLL_INIT = 1, COLL_ALLREDUCE = 2, COLL_ALLGATHER = 3, COLL_REDUCESCATTER = 4,
    COLL_BROADCAST = 5, COLL_REDUCE = 6, COLL_SEND = 7, COLL_RECV = 8, COLL_ALLTOALL = 9,
    COLL_GATHER = 10, COLL_SPLIT = 11,
};
/* REC_COLLECTIVE p.u[3]: rank | nranks << 16 | (peer or root, 0xffff for none) << 32 |
 * dtype << 48 | reduction op << 56 */
#define REVATI_COLL_PACK(rank, nranks, peer, dtype, op)                                        \
    ((uint64_t)(uint16_t)(rank) | (uint64_t)(uint16_t)(nranks) << 16 |                            \
     (uint64_t)(uint16_t)(peer) << 32 | (uint64_t)(uint8_t)(dtype) << 48 | (uint64_t)(uint8_t)(op) << 56)

/* REC_COPY / REC_MEMSET kind bits */
#define REC_COPY_KIND_MASK 0x7u /* 0 HtoH, 1 HtoD, 2 DtoH, 3 DtoD, 4 default(UVA) */
#define REC_F_ASYNC 0x10u       /* enqueued on a stream, host does not wait */
#define REC_F_BACKED 0x20u      /* moved real bytes */
#define REC_F_GRAPH 0x40u       /* a node of a graph launch: REC_COPY / REC_MEMSET / REC_HOST_FN /
                                   REC_ALLOC / REC_FREE / REC_EVENT_RECORD / REC_STREAM_WAIT */
/* REC_HOST_FN kind bits */
#define REC_F_HOST_START 0x80u  /* the host-function worker starts running it (an instant) */
/* REC_GRAPH_LAUNCH kind bits */
#define REC_GRAPH_REPLAY 0x1u   /* an exec of kernels, copies and memsets only whose nodes a launch
                                   sent: no node records (the shim moved the copies' bytes) */
/* REC_ALLOC kind values */
enum { ALLOC_DEVICE = 0, ALLOC_HOST = 1, ALLOC_MANAGED = 2, ALLOC_FAILED = 0x80 };

/* REC_SYNC kind values (mirror syncs.kind in the trace schema) */
enum revati_sync_kind {
    SYNC_STREAM = 1, SYNC_EVENT = 2, SYNC_DEVICE = 3, SYNC_COPY = 4, SYNC_SLEEP = 5,
    SYNC_POLL = 6, SYNC_WAIT = 7, SYNC_QUERY = 8,
    SYNC_BARRIER = 9, /* until every member of the thread's collectives arrived: p.u[0] = how many */
};

/* REC_QUERY: what is asked (p.u[0]) */
enum revati_query_kind { QUERY_EVENT_ELAPSED = 1, QUERY_EVENT = 2, QUERY_STREAM = 3 };

/* ---- socket messages (SOCK_SEQPACKET, fixed size) --------------------------------------- */
enum revati_msg_type {
    MSG_REGISTER = 1, /* process joins: a = serial, b = flags (REG_*) */
    MSG_WAIT = 2,     /* thread blocks: ring = index of its REC_SYNC record */
    MSG_WAKE = 3,     /* coordinator -> thread: v = virtual time now, value = answer */
    MSG_QUERY = 4,    /* thread asks (elapsed time, query): ring = index of its REC_QUERY */
    MSG_ANSWER = 5,   /* coordinator -> thread for MSG_QUERY / MSG_REGISTER */
    MSG_PREPARE = 6,  /* two-phase jump, phase 1 (to I/O waiters): v = proposed target */
    MSG_VETO = 7,     /* thread -> coordinator: I am ready, do not jump */
    MSG_ACCEPT = 8,   /* thread -> coordinator: no objection */
    MSG_LEFT = 9,     /* thread woke by itself (fd ready): ring = its REC_SYNC index */
};
#define REG_INHERITED 1u /* this process's main thread is already counted in `running` */
#define REG_BEFORE_EXEC 2u /* a vfork child: a copy of its parent until it execs (no trace row) */

struct revati_msg {
    uint32_t type;
    int32_t pid;
    uint32_t serial;
    uint32_t thread;
    uint64_t ring;    /* ring index of the record this message is about */
    int64_t v;        /* virtual time */
    int64_t value;    /* answer / argument */
    int64_t a, b;
    int32_t result;
    uint32_t pad;
};
_Static_assert(sizeof(struct revati_msg) == 64, "message must be 64 bytes");

/* ---- API calls: record.fn ------------------------------------------------------------------
 * The id of the function a record is about is the `fn` column of entry_points.tsv; the build
 * generates `enum revati_fn` (FN_<name>, revati_fn.h) from it and revati/shim.py reads the same
 * column. 0 is FN_unknown. An id, once given, is never reused for another function. */

#endif
