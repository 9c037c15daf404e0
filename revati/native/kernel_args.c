/*
 * Argument bytes of kernel launches. The coordinator's table of argument layouts
 * (revati/engine/kernel_layouts.py, sent as config.txt `kernel_args` lines) names kernels by
 * parts of their mangled name and says which bytes of which argument to keep; a kernel is
 * matched once, at registration, so a launch of any other kernel pays one predictable branch.
 * A matched launch sends one REC_KERNEL_ARGS record before its launch record.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "kernel_args.h"
#include "shim_internal.h"

#define LAYOUTS_MAX 64
#define SLICES_MAX 8
#define PATTERN_MAX 192

struct args_slice {
    uint16_t arg;
    uint16_t length;
    uint32_t offset;
};

struct revati_args_layout {
    uint8_t id;
    uint8_t nslices;
    struct args_slice slice[SLICES_MAX];
    char pattern[PATTERN_MAX];
};

static struct revati_args_layout g_layouts[LAYOUTS_MAX];
static int g_nlayouts;

/* "<arg>:<offset>:<length>,..." into l's slices; 0, or -1 if malformed or over the record. */
static int parse_slices(const char *s, struct revati_args_layout *l) {
    unsigned total = 0;
    while (*s && l->nslices < SLICES_MAX) {
        char *end;
        unsigned long arg = strtoul(s, &end, 10);
        if (*end != ':') return -1;
        unsigned long offset = strtoul(end + 1, &end, 10);
        if (*end != ':') return -1;
        unsigned long length = strtoul(end + 1, &end, 10);
        if (arg > 255 || offset > 1u << 16 || length == 0 || (total += (unsigned)length) > REVATI_ARGS_BYTES)
            return -1;
        l->slice[l->nslices++] = (struct args_slice){(uint16_t)arg, (uint16_t)length, (uint32_t)offset};
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

/* Whether the parts of `pattern` between '*'s occur in `name` in that order. */
static int name_matches(const char *name, const char *pattern) {
    char part[PATTERN_MAX];
    while (*pattern) {
        size_t n = strcspn(pattern, "*");
        memcpy(part, pattern, n);
        part[n] = 0;
        if (n && !(name = strstr(name, part))) return 0;
        name += n;
        pattern += n + (pattern[n] == '*');
    }
    return 1;
}

const struct revati_args_layout *revati_args_layout_for(const char *mangled_name) {
    if (!mangled_name) return NULL;
    for (int i = 0; i < g_nlayouts; i++)
        if (name_matches(mangled_name, g_layouts[i].pattern)) return &g_layouts[i];
    return NULL;
}

void revati_args_fill(const struct revati_args_layout *l, void *const *args, struct revati_args_record *out) {
    memset((char *)out + sizeof out->commit, 0, sizeof *out - sizeof out->commit);
    out->type = REC_KERNEL_ARGS;
    out->kind = l->id;
    unsigned at = 0;
    for (unsigned i = 0; i < l->nslices; i++) {
        const struct args_slice *s = &l->slice[i];
        const char *arg = args[s->arg];
        if (arg) memcpy(out->bytes + at, arg + s->offset, s->length);
        at += s->length;
    }
}

__attribute__((cold)) void revati_args_emit(const struct revati_args_layout *l, void *const *args) {
    uint32_t thread = revati_thread_index();
    uint64_t idx;
    struct revati_record *r = revati_ring_reserve(&idx);
    if (!r) return;
    struct revati_args_record *out = (struct revati_args_record *)r;
    revati_args_fill(l, args, out);
    out->thread = thread;
    revati_ring_commit(r, idx);
}
