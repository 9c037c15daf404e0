/*
 * Argument bytes of kernel launches. The coordinator's table of argument layouts
 * (revati/engine/kernel_layouts.py, sent as config.txt `kernel_args` lines) names kernels by
 * parts of their mangled name and says which bytes of which argument to keep; a kernel is
 * matched once, at registration, so a launch of any other kernel pays one predictable branch.
 * A matched launch sends one REC_KERNEL_ARGS record before its launch record.
 *
 * A slice may also be a varlen summary (`v<arg>:<batch>:<cu_q>:<used_k>:<cu_k>`): the byte
 * offsets, inside argument <arg>, of an int32 batch size and of three device pointers to int32
 * arrays (cumulative query lengths, per-sequence KV lengths, cumulative KV lengths; the last two
 * may be null). Where the arrays sit in backed device memory, a direct launch reads them and
 * keeps their totals (struct varlen_summary); otherwise, and in a captured graph node (whose
 * arrays change from replay to replay), the summary is zeros.
 *
 * A layout may end with `g<unit>`: its launches are a barrier of a group of processes that share
 * IPC-mapped buffers (ipc_barrier.c): its first three slices hold a device pointer into the
 * group's shared buffer, the int32 rank and the int32 message size in `unit` bytes.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "kernel_args.h"
#include "memory.h"
#include "shim_internal.h"

#define LAYOUTS_MAX 64
#define SLICES_MAX 8
#define PATTERN_MAX 192
#define VARLEN_BATCH_MAX (1 << 16) /* sequences a summary reads at most */

struct args_slice {
    uint16_t arg;
    uint16_t length;
    uint32_t offset;     /* a varlen summary: the batch size's */
    uint32_t arrays[3];  /* a varlen summary: cu_q, used_k, cu_k pointers' offsets; else unused */
    uint8_t varlen;
};

/* What a varlen summary keeps: 0 sequences when the arrays could not be read. */
struct varlen_summary {
    uint32_t sequences, total_q, total_k;
    uint64_t sum_qk, sum_qq; /* sum over sequences of q_i * k_i and of q_i * q_i */
} __attribute__((packed));
_Static_assert(sizeof(struct varlen_summary) == 28, "varlen summary is 28 bytes");

struct revati_args_layout {
    uint8_t id;
    uint8_t nslices;
    uint32_t group_unit; /* `g<unit>`: a group barrier's message unit in bytes; 0: none */
    struct args_slice slice[SLICES_MAX];
    char pattern[PATTERN_MAX];
};

static struct revati_args_layout g_layouts[LAYOUTS_MAX];
static int g_nlayouts;

/* "v<arg>:<batch>:<cu_q>:<used_k>:<cu_k>" (s after the 'v') into *out; the end, or NULL. */
static const char *parse_varlen(const char *s, struct args_slice *out) {
    unsigned long v[5];
    char *end = (char *)s;
    for (int i = 0; i < 5; i++) {
        if (i && *end++ != ':') return NULL;
        v[i] = strtoul(end, &end, 10);
        if (v[i] > (i ? 1u << 16 : 255u)) return NULL;
    }
    *out = (struct args_slice){(uint16_t)v[0], sizeof(struct varlen_summary), (uint32_t)v[1],
                               {(uint32_t)v[2], (uint32_t)v[3], (uint32_t)v[4]}, 1};
    return end;
}

/* "<arg>:<offset>:<length>,..." into l's slices; 0, or -1 if malformed or over the record. */
static int parse_slices(const char *s, struct revati_args_layout *l) {
    unsigned total = 0;
    while (*s && l->nslices < SLICES_MAX) {
        char *end;
        if (*s == 'g') {
            unsigned long unit = strtoul(s + 1, &end, 10);
            if (unit == 0 || unit > 1u << 16 || *end) return -1;
            l->group_unit = (uint32_t)unit;
            s = end;
            continue;
        }
        if (*s == 'v') {
            struct args_slice *v = &l->slice[l->nslices];
            const char *after = parse_varlen(s + 1, v);
            if (!after || (total += v->length) > REVATI_ARGS_BYTES) return -1;
            l->nslices++;
            s = *after == ',' ? after + 1 : after;
            continue;
        }
        unsigned long arg = strtoul(s, &end, 10);
        if (*end != ':') return -1;
        unsigned long offset = strtoul(end + 1, &end, 10);
        if (*end != ':') return -1;
        unsigned long length = strtoul(end + 1, &end, 10);
        if (arg > 255 || offset > 1u << 16 || length == 0 || (total += (unsigned)length) > REVATI_ARGS_BYTES)
            return -1;
        l->slice[l->nslices++] = (struct args_slice){(uint16_t)arg, (uint16_t)length, (uint32_t)offset, {0}, 0};
        s = *end == ',' ? end + 1 : end;
    }
    return *s ? -1 : 0;
}

void revati_kernel_args_add(const char *spec) {
    if (g_nlayouts >= LAYOUTS_MAX) return;
    struct revati_args_layout *l = &g_layouts[g_nlayouts];
    memset(l, 0, sizeof *l);
    char *end;
    unsigned long id = strtoul(spec, &end, 10);
    const char *pattern = end + 1, *slices = *end == ';' ? strchr(pattern, ';') : NULL;
    if (!slices || id > 255 || slices == pattern || (size_t)(slices - pattern) >= PATTERN_MAX) return;
    memcpy(l->pattern, pattern, (size_t)(slices - pattern));
    l->id = (uint8_t)id;
    if (parse_slices(slices + 1, l) == 0 && l->nslices) g_nlayouts++;
}

/* The first place in `name` where the n characters of `part` occur ('?' matches any one), or
 * NULL. */
static const char *find_part(const char *name, const char *part, size_t n) {
    for (; *name; name++) {
        size_t i = 0;
        while (i < n && name[i] && (part[i] == '?' || part[i] == name[i])) i++;
        if (i == n) return name;
    }
    return NULL;
}

/* Whether the parts of `pattern` between '*'s occur in `name` in that order. */
static int name_matches(const char *name, const char *pattern) {
    while (*pattern) {
        size_t n = strcspn(pattern, "*");
        if (n && !(name = find_part(name, pattern, n))) return 0;
        name += n;
        pattern += n + (pattern[n] == '*');
    }
    return 1;
}

unsigned revati_args_group_unit(const struct revati_args_layout *l) { return l ? l->group_unit : 0; }

const struct revati_args_layout *revati_args_layout_for(const char *mangled_name) {
    if (!mangled_name) return NULL;
    for (int i = 0; i < g_nlayouts; i++)
        if (name_matches(mangled_name, g_layouts[i].pattern)) return &g_layouts[i];
    return NULL;
}

/* The `count` int32 values that the device pointer at `field` points to: 1 and *out if they lie
 * in one live backed allocation, 0 if the pointer is null, -1 if they cannot be read. */
static int backed_ints(const char *field, uint64_t count, const int32_t **out) {
    const int32_t *p;
    memcpy(&p, field, sizeof p);
    if (!p) return 0;
    struct revati_alloc a;
    if (!revati_device_lookup(p, &a) || !a.backed || !a.live) return -1;
    if ((const uint8_t *)p + count * sizeof *p > a.addr + a.bytes) return -1;
    *out = p;
    return 1;
}

/* Totals over the sequences of a varlen launch, or zeros (see the top of this file). */
static struct varlen_summary varlen_summary(const struct args_slice *s, const char *arg) {
    struct varlen_summary v = {0};
    int32_t batch;
    memcpy(&batch, arg + s->offset, sizeof batch);
    const int32_t *cu_q = NULL, *used_k = NULL, *cu_k = NULL;
    if (batch <= 0 || batch > VARLEN_BATCH_MAX || backed_ints(arg + s->arrays[0], (uint64_t)batch + 1, &cu_q) != 1)
        return v;
    int k_from = backed_ints(arg + s->arrays[1], (uint64_t)batch, &used_k);
    if (k_from == 0) k_from = backed_ints(arg + s->arrays[2], (uint64_t)batch + 1, &cu_k);
    if (k_from != 1) return v;
    for (int32_t i = 0; i < batch; i++) {
        int64_t q = (int64_t)cu_q[i + 1] - cu_q[i];
        int64_t k = used_k ? used_k[i] : (int64_t)cu_k[i + 1] - cu_k[i];
        if (q < 0 || k < 0) return (struct varlen_summary){0};
        v.total_q += (uint32_t)q;
        v.total_k += (uint32_t)k;
        v.sum_qk += (uint64_t)q * (uint64_t)k;
        v.sum_qq += (uint64_t)q * (uint64_t)q;
    }
    v.sequences = (uint32_t)batch;
    return v;
}

void revati_args_fill(const struct revati_args_layout *l, void *const *args, int read_memory,
                      struct revati_args_record *out) {
    memset((char *)out + sizeof out->commit, 0, sizeof *out - sizeof out->commit);
    out->type = REC_KERNEL_ARGS;
    out->kind = l->id;
    unsigned at = 0;
    for (unsigned i = 0; i < l->nslices; i++) {
        const struct args_slice *s = &l->slice[i];
        const char *arg = args[s->arg];
        if (arg && s->varlen && read_memory) {
            struct varlen_summary v = varlen_summary(s, arg);
            memcpy(out->bytes + at, &v, sizeof v);
        } else if (arg && !s->varlen) {
            memcpy(out->bytes + at, arg + s->offset, s->length);
        }
        at += s->length;
    }
}

__attribute__((cold)) void revati_args_emit(const struct revati_args_layout *l, void *const *args) {
    uint32_t thread = revati_thread_index();
    uint64_t idx;
    struct revati_record *r = revati_ring_reserve(&idx);
    if (!r) return;
    struct revati_args_record *out = (struct revati_args_record *)r;
    revati_args_fill(l, args, 1, out);
    out->thread = thread;
    revati_ring_commit(r, idx);
}
