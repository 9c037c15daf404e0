/*
 * Real bytes for NCCL operations on backed buffers (docs/design.md §4): broadcast, all-gather, gather,
 * all-to-all and send/recv copy; all-reduce, reduce and reduce-scatter reduce in the buffer's
 * dtype. Members may live in different processes, whose backed memory is their own, so every
 * member writes its contribution to a slot file in the run directory before its arrival is
 * recorded, and reads the others' after every member arrived:
 *   nccl-<comm>-c<rank>-<slot>.bin       collectives (slot = the comm's collective count % 256)
 *   nccl-<comm>-p<src>-<dst>-<slot>.bin  send/recv (slot = the pair's send count % 256)
 * A slot starts with {seq, bytes}; bytes = 0 says the buffer was virtual (no data). A member
 * cannot be 256 operations ahead of another on one comm unless one group holds that many.
 * A contribution that is missing (virtual buffer) is left out of a reduction and leaves its
 * block of a gather untouched; fp8 types are not reduced.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "memory.h"
#include "nccl_layer.h"

#define SLOTS 256

struct slot_header {
    uint64_t seq;
    uint64_t bytes;
};

size_t revati_nccl_type_size(int dtype) {
    static const size_t sizes[NCCL_NUM_TYPES] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2, 1, 1};
    return dtype >= 0 && dtype < NCCL_NUM_TYPES ? sizes[dtype] : 0;
}

/* Real bytes behind [p, p+n): host memory of the shim's own, or a backed device allocation. */
static int real_span(const struct revati_nccl_op *op, const void *p, size_t n) {
    if (!p) return 0;
    if (op->host) return 1;
    struct revati_alloc a;
    if (!revati_device_lookup(p, &a) || !a.backed) return 0;
    return (const uint8_t *)p + n <= a.addr + a.bytes;
}

static void slot_path(char *out, size_t cap, const struct revati_nccl_op *op, int src, int dst) {
    unsigned slot = (unsigned)(op->seq % SLOTS);
    unsigned long long id = (unsigned long long)op->comm->id;
    if (op->kind == COLL_SEND || op->kind == COLL_RECV)
        snprintf(out, cap, "%s/nccl-%016llx-p%d-%d-%03u.bin", g_run_dir, id, src, dst, slot);
    else
        snprintf(out, cap, "%s/nccl-%016llx-c%d-%03u.bin", g_run_dir, id, src, slot);
}

static void write_slot(const struct revati_nccl_op *op, int src, int dst, const void *data, size_t n) {
    char path[700];
    slot_path(path, sizeof path, op, src, dst);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return;
    int real = real_span(op, data, n);
    struct slot_header h = {op->seq, real ? n : 0};
    if (real && pwrite(fd, data, n, sizeof h) != (ssize_t)n) h.bytes = 0;
    if (pwrite(fd, &h, sizeof h, 0) != sizeof h) h.bytes = 0;
    close(fd);
}

/* Read `n` bytes at `offset` of member src's slot into out; 0 if it holds no such data. */
static int read_slot(const struct revati_nccl_op *op, int src, int dst, size_t offset, void *out, size_t n) {
    char path[700];
    slot_path(path, sizeof path, op, src, dst);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    struct slot_header h;
    int ok = pread(fd, &h, sizeof h, 0) == sizeof h && h.seq == op->seq && offset + n <= h.bytes &&
             pread(fd, out, n, (off_t)(sizeof h + offset)) == (ssize_t)n;
    close(fd);
    return ok;
}

/* ---- reductions --------------------------------------------------------------------------- */

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) bits = sign | 0x7f800000u | man << 13;
    else if (exp) bits = sign | (exp + 112) << 23 | man << 13;
    else if (!man) bits = sign;
    else {
        int e = -1;
        do { man <<= 1; e++; } while (!(man & 0x400));
        bits = sign | (uint32_t)(112 - e) << 23 | (man & 0x3ff) << 13;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint16_t float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t man = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) return sign | 0x7c00 | (man ? 0x200 : 0);
    if (exp >= 0x1f) return sign | 0x7c00;
    if (exp <= 0) {
        if (exp < -10) return sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp), half = man >> shift;
        uint32_t rest = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rest > mid || (rest == mid && (half & 1))) half++;
        return sign | (uint16_t)half;
    }
    uint32_t half = (uint32_t)exp << 10 | man >> 13, rest = man & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) half++;
    return sign | (uint16_t)half;
}

static float bf16_to_float(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint16_t float_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

#define COMBINE(a, b, op) \
    ((op) == NCCL_PROD ? (a) * (b) : (op) == NCCL_MAX ? ((a) > (b) ? (a) : (b)) : (op) == NCCL_MIN ? ((a) < (b) ? (a) : (b)) : (a) + (b))

#define REDUCE_NATIVE(T)                                                            \
    do {                                                                            \
        T *acc_ = acc;                                                              \
        const T *x_ = x;                                                            \
        for (size_t i = 0; i < n; i++) acc_[i] = (T)COMBINE(acc_[i], x_[i], op);    \
    } while (0)

#define REDUCE_16(TO_F, FROM_F)                                                     \
    do {                                                                            \
        uint16_t *acc_ = acc;                                                       \
        const uint16_t *x_ = x;                                                     \
        for (size_t i = 0; i < n; i++)                                              \
            acc_[i] = FROM_F(COMBINE(TO_F(acc_[i]), TO_F(x_[i]), op));              \
    } while (0)

/* acc[i] = acc[i] (op) x[i] for n elements of dtype; 0 if the dtype cannot be reduced. */
static int reduce_into(void *acc, const void *x, size_t n, int dtype, int op) {
    switch (dtype) {
    case NCCL_INT8: REDUCE_NATIVE(int8_t); return 1;
    case NCCL_UINT8: REDUCE_NATIVE(uint8_t); return 1;
    case NCCL_INT32: REDUCE_NATIVE(int32_t); return 1;
    case NCCL_UINT32: REDUCE_NATIVE(uint32_t); return 1;
    case NCCL_INT64: REDUCE_NATIVE(int64_t); return 1;
    case NCCL_UINT64: REDUCE_NATIVE(uint64_t); return 1;
    case NCCL_FLOAT32: REDUCE_NATIVE(float); return 1;
    case NCCL_FLOAT64: REDUCE_NATIVE(double); return 1;
    case NCCL_FLOAT16: REDUCE_16(half_to_float, float_to_half); return 1;
    case NCCL_BFLOAT16: REDUCE_16(bf16_to_float, float_to_bf16); return 1;
    default: return 0;
    }
}

#define DIVIDE(T)                                                                   \
    do {                                                                            \
        T *v_ = acc;                                                                \
        for (size_t i = 0; i < n; i++) v_[i] = (T)(v_[i] / d);                      \
    } while (0)

static void divide(void *acc, size_t n, int dtype, int d) {
    switch (dtype) {
    case NCCL_INT8: DIVIDE(int8_t); break;
    case NCCL_UINT8: DIVIDE(uint8_t); break;
    case NCCL_INT32: DIVIDE(int32_t); break;
    case NCCL_UINT32: DIVIDE(uint32_t); break;
    case NCCL_INT64: DIVIDE(int64_t); break;
    case NCCL_UINT64: DIVIDE(uint64_t); break;
    case NCCL_FLOAT32: DIVIDE(float); break;
    case NCCL_FLOAT64: DIVIDE(double); break;
    case NCCL_FLOAT16: {
        uint16_t *v = acc;
        for (size_t i = 0; i < n; i++) v[i] = float_to_half(half_to_float(v[i]) / (float)d);
        break;
    }
    case NCCL_BFLOAT16: {
        uint16_t *v = acc;
        for (size_t i = 0; i < n; i++) v[i] = float_to_bf16(bf16_to_float(v[i]) / (float)d);
        break;
    }
    default: break;
    }
}

/* out = the reduction over members of their `n` elements at element offset `at`. */
static void reduce_members(const struct revati_nccl_op *op, size_t at, size_t n, void *out) {
    size_t ts = revati_nccl_type_size(op->dtype), bytes = n * ts;
    int redop = op->redop == NCCL_AVG ? NCCL_SUM : op->redop, have = 0;
    uint8_t *acc = malloc(bytes ? bytes : 1), *x = malloc(bytes ? bytes : 1);
    for (int r = 0; acc && x && r < op->comm->nranks; r++) {
        uint8_t *dst = have ? x : acc;
        if (!read_slot(op, r, 0, at * ts, dst, bytes)) continue;
        if (have && !reduce_into(acc, x, n, op->dtype, redop)) have = -1;
        if (have < 0) break;
        have++;
    }
    if (have > 0) {
        if (op->redop == NCCL_AVG) divide(acc, n, op->dtype, have);
        memcpy(out, acc, bytes);
    }
    free(acc);
    free(x);
}

/* ---- publish and complete ----------------------------------------------------------------- */

void revati_nccl_publish(const struct revati_nccl_op *op) {
    struct revati_nccl_comm *c = op->comm;
    size_t bytes = op->count * revati_nccl_type_size(op->dtype);
    switch (op->kind) {
    case COLL_ALLREDUCE: case COLL_REDUCE: case COLL_ALLGATHER: case COLL_GATHER: case COLL_SPLIT:
        write_slot(op, c->rank, 0, op->send, bytes);
        break;
    case COLL_REDUCESCATTER: case COLL_ALLTOALL:
        write_slot(op, c->rank, 0, op->send, bytes * (size_t)c->nranks);
        break;
    case COLL_BROADCAST:
        if (c->rank == op->peer) write_slot(op, c->rank, 0, op->send, bytes);
        break;
    case COLL_SEND:
        write_slot(op, c->rank, op->peer, op->send, bytes);
        break;
    default:
        break;
    }
}

void revati_nccl_complete(const struct revati_nccl_op *op) {
    struct revati_nccl_comm *c = op->comm;
    size_t n = op->count, bytes = n * revati_nccl_type_size(op->dtype);
    uint8_t *out = op->recv;
    int all = op->kind == COLL_ALLGATHER || op->kind == COLL_GATHER || op->kind == COLL_ALLTOALL ||
              op->kind == COLL_SPLIT;
    if (!real_span(op, out, all ? bytes * (size_t)c->nranks : bytes)) return;
    switch (op->kind) {
    case COLL_ALLREDUCE: reduce_members(op, 0, n, out); break;
    case COLL_REDUCE: if (c->rank == op->peer) reduce_members(op, 0, n, out); break;
    case COLL_REDUCESCATTER: reduce_members(op, (size_t)c->rank * n, n, out); break;
    case COLL_BROADCAST: read_slot(op, op->peer, 0, 0, out, bytes); break;
    case COLL_RECV: read_slot(op, op->peer, c->rank, 0, out, bytes); break;
    case COLL_ALLGATHER: case COLL_SPLIT:
        for (int r = 0; r < c->nranks; r++) read_slot(op, r, 0, 0, out + (size_t)r * bytes, bytes);
        break;
    case COLL_GATHER:
        if (c->rank != op->peer) break;
        for (int r = 0; r < c->nranks; r++) read_slot(op, r, 0, 0, out + (size_t)r * bytes, bytes);
        break;
    case COLL_ALLTOALL:
        for (int r = 0; r < c->nranks; r++)
            read_slot(op, r, 0, (size_t)c->rank * bytes, out + (size_t)r * bytes, bytes);
        break;
    default: break;
    }
}
