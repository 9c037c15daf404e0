/* The measured-activity file of `revati record --real`: written by the CUPTI collector
 * (cupti_collector.c), read by revati/engine/measured.py. One header, then records, each a
 * fixed MeasuredRecord followed by `name_len` bytes of name (kernel name, API function).
 * Times are CUPTI timestamps (ns); the header's t0 is the collector's start. */
#ifndef REVATI_MEASURED_H
#define REVATI_MEASURED_H
#include <stdint.h>

#define REVATI_MEASURED_MAGIC 0x534d5652u /* "RVMS" */
#define REVATI_MEASURED_VERSION 1u

enum {
    REVATI_M_KERNEL = 1,
    REVATI_M_COPY = 2,
    REVATI_M_MEMSET = 3,
    REVATI_M_SYNC = 4,
    REVATI_M_API = 5,
    /* Reserved for the pass-through library wrappers (cuBLAS/cuBLASLt shapes, NCCL per-rank
     * arrivals): a record of this kind carries a correlation id and, in its name, a
     * `key=value ...` feature list that revati/engine/measured.py attaches to the kernel of
     * that correlation. Nothing writes it yet. */
    REVATI_M_LIBCALL = 6,
};

typedef struct {
    uint32_t magic, version;
    uint32_t pid, record_size;
    uint64_t t0;
} MeasuredHeader;

typedef struct {
    uint32_t kind, name_len;
    uint64_t start, end;
    uint32_t device, stream, correlation, context;
    uint32_t pid, pad;
    uint64_t thread;
    int32_t grid[3], block[3];
    int32_t registers, shared_mem;
    uint64_t bytes;
    uint32_t sub;    /* copy kind, sync type, memset value, API callback id */
    int32_t result;  /* API / sync return value */
    uint64_t event;  /* CUDA event id of an event sync */
} MeasuredRecord;

_Static_assert(sizeof(MeasuredHeader) == 24, "MeasuredHeader layout");
_Static_assert(sizeof(MeasuredRecord) == 112, "MeasuredRecord layout");
#endif
