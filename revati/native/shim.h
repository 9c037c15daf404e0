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

#define REVATI_PROTOCOL_VERSION 4
#define REVATI_PAGE_MAGIC 0x52565443u /* "RVTC" */
#define REVATI_RING_MAGIC 0x52565452u /* "RVTR" */
#define REVATI_MAX_DEVICES 16

/* ---- clock page -------------------------------------------------------------------------- */
/* V = (frozen ? base_virtual : base_virtual + (now_real - base_real) / dilation) + charge_ns.
 * Writers (block entry/exit, jumps) take `lock`, then make `seq` odd, write, make it even.
 * Readers retry while `seq` is odd or changed. `charge_ns` (host cost of calls) only grows and is
 * added with one atomic op on the launch path, outside the seqlock. */
struct revati_clock_page {
    uint32_t magic;
    uint32_t version;
    uint32_t lock;             /* writers' spinlock */
    uint32_t seq;              /* seqlock sequence: odd while a writer is inside */
    int64_t base_real;         /* CLOCK_MONOTONIC ns at the last unfreeze/jump */
    int64_t base_virtual;      /* virtual ns at base_real (without charge) */
    int64_t charge_ns;         /* modelled host cost of intercepted calls, added to V */
    int32_t running;           /* participant threads not inside an intercepted blocking call */
    uint32_t frozen;           /* 1 while running == 0 */
    uint64_t generation;       /* bumped by every jump */
    uint64_t waits_announced;  /* blocking entries ever made; the coordinator counts WAITs */
    double dilation;           /* host time dilation (>= 1 slows host time down) */
    int64_t epoch_realtime_ns; /* CLOCK_REALTIME at V = 0 */
    int64_t proposal_target;   /* two-phase jump: proposed V (prepare) */
    uint64_t proposal_generation;
    uint32_t coordinator_pid;
    uint32_t device_count;
    int64_t epoch_monotonic_ns; /* CLOCK_MONOTONIC a traced program reads at V = 0 */
    int32_t stalled;           /* producers waiting for ring space: the coordinator must not jump */
    uint32_t pad0;
    int64_t mem_capacity[REVATI_MAX_DEVICES];
    int64_t mem_used[REVATI_MAX_DEVICES]; /* atomic: capacity accounting across processes */
    uint8_t reserved[256];
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
    uint32_t flags;           /* REVATI_RING_EXECED once the process exec'd another image */
    uint8_t pad[64 - 56];
};
#define REVATI_RING_EXECED 1u

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
_Static_assert(sizeof(struct revati_ring_header) == 64, "ring header must be 64 bytes");

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
};

/* REC_COPY / REC_MEMSET kind bits */
#define REC_COPY_KIND_MASK 0x7u /* 0 HtoH, 1 HtoD, 2 DtoH, 3 DtoD, 4 default(UVA) */
#define REC_F_ASYNC 0x10u       /* enqueued on a stream, host does not wait */
#define REC_F_BACKED 0x20u      /* moved real bytes */
#define REC_F_GRAPH 0x40u       /* a node of a graph launch: REC_COPY / REC_MEMSET / REC_HOST_FN /
                                   REC_ALLOC / REC_FREE / REC_EVENT_RECORD / REC_STREAM_WAIT */
/* REC_HOST_FN kind bits */
#define REC_F_HOST_START 0x80u  /* the host-function worker starts running it (an instant) */
/* REC_GRAPH_LAUNCH kind bits */
#define REC_GRAPH_REPLAY 0x1u   /* a kernel-only exec whose nodes a launch sent: no node records */
/* REC_ALLOC kind values */
enum { ALLOC_DEVICE = 0, ALLOC_HOST = 1, ALLOC_MANAGED = 2, ALLOC_FAILED = 0x80 };

/* REC_SYNC kind values (mirror syncs.kind in the trace schema) */
enum revati_sync_kind {
    SYNC_STREAM = 1, SYNC_EVENT = 2, SYNC_DEVICE = 3, SYNC_COPY = 4, SYNC_SLEEP = 5,
    SYNC_POLL = 6, SYNC_WAIT = 7, SYNC_QUERY = 8,
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
