/* NCCL's types as the shim's NCCL layer sees them (no NCCL header is needed to build revati),
 * and the interface between nccl.c (the API, records, waits) and nccl_data.c (real bytes). */
#ifndef REVATI_NCCL_LAYER_H
#define REVATI_NCCL_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "shim_internal.h"

typedef int ncclResult_t;
#define NCCL_UNIQUE_ID_BYTES 128
typedef struct { char internal[NCCL_UNIQUE_ID_BYTES]; } ncclUniqueId;
#define NCCL_SPLIT_NOCOLOR (-1)
#define REVATI_NCCL_VERSION 23007 /* the NCCL release whose API this layer answers (2.30.7) */

/* ncclDataType_t and ncclRedOp_t values */
enum { NCCL_INT8, NCCL_UINT8, NCCL_INT32, NCCL_UINT32, NCCL_INT64, NCCL_UINT64, NCCL_FLOAT16,
       NCCL_FLOAT32, NCCL_FLOAT64, NCCL_BFLOAT16, NCCL_FP8_E4M3, NCCL_FP8_E5M2, NCCL_NUM_TYPES };
enum { NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN, NCCL_AVG };

#define NCCL_COMM_MAGIC 0x4e434f4du /* "NCOM" */

/* A communicator: this member's view of it. */
struct revati_nccl_comm {
    uint32_t magic;
    uint64_t id;           /* run-local: carried by the unique id every member was given */
    int nranks, rank, device;
    _Atomic int async_error; /* ncclResult_t: set when a member died */
    uint64_t coll_seq;     /* collectives issued on it so far (data slots) */
    uint64_t *send_seq;    /* per peer: sends so far */
    uint64_t *recv_seq;    /* per peer: receives so far */
    uint32_t splits;       /* ncclCommSplit calls so far (ids of the children) */
};

/* One operation of a call or a group, as the data layer needs it. */
struct revati_nccl_op {
    struct revati_nccl_comm *comm;
    struct revati_nccl_comm **out; /* init/split: where the new communicator goes */
    uint8_t kind;                  /* enum revati_coll_kind */
    int dtype, redop, peer;        /* peer: root or the other side of a send/recv, -1 none */
    const void *send;
    void *recv;
    size_t count; /* elements, as the API takes them */
    uint64_t seq; /* the comm's collective count, or the pair's send/recv count */
    int host;     /* buffers are host memory (the shim's own exchanges, e.g. split) */
};

size_t revati_nccl_type_size(int dtype);
/* Before the arrival is recorded: put this member's contribution where the others can read it. */
void revati_nccl_publish(const struct revati_nccl_op *op);
/* After every member arrived: fill this member's receive buffer from the contributions. */
void revati_nccl_complete(const struct revati_nccl_op *op);

#endif
