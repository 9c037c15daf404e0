/*
 * What a module image tells about its kernels, read in C when the driver loads it (the same
 * facts revati/fatbin.py reads in Python): a cubin is an ELF file whose `.text.<kernel>`
 * sections are the kernels, whose global `.nv.info` section holds each kernel's register count
 * (attribute REGCOUNT, 0x2f) and whose `.nv.shared.<kernel>` size is its static shared memory.
 * A fatbinary is unwrapped to the cubin for the device's architecture when that entry is not
 * compressed; PTX and compressed entries yield no list (names then come from the lookups).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cubin.h"

#define FATBIN_WRAPPER_MAGIC 0x466243b1u
#define FATBIN_MAGIC 0xBA55ED50u
#define ATTR_REGCOUNT 0x2f
enum { EIFMT_NVAL = 1, EIFMT_BVAL = 2, EIFMT_HVAL = 3, EIFMT_SVAL = 4 };
enum { SHT_SYMTAB = 2 };

static uint16_t u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

struct elf {
    const uint8_t *data;
    size_t size;
    const uint8_t *sections; /* section header table */
    unsigned int count;
    const char *names;       /* section name strings */
    size_t names_size;
};

struct section { const char *name; uint32_t type, link; uint64_t offset, size; };

static int section_at(const struct elf *e, unsigned int i, struct section *s) {
    const uint8_t *h = e->sections + (size_t)i * 64;
    uint32_t name = u32(h);
    s->type = u32(h + 4);
    s->offset = u64(h + 24);
    s->size = u64(h + 32);
    s->link = u32(h + 40);
    s->name = name < e->names_size ? e->names + name : "";
    return s->offset <= e->size && s->size <= e->size - s->offset;
}

static int elf_open(struct elf *e, const uint8_t *data, size_t size) {
    if (size < 64 || memcmp(data, "\x7f" "ELF", 4) || data[4] != 2 /* 64-bit */) return -1;
    uint64_t shoff = u64(data + 0x28);
    unsigned int count = u16(data + 0x3c), strndx = u16(data + 0x3e);
    if (u16(data + 0x3a) != 64 || shoff > size || (uint64_t)count * 64 > size - shoff || strndx >= count) return -1;
    *e = (struct elf){data, size, data + shoff, count, NULL, 0};
    struct section names;
    e->names = "";
    if (!section_at(e, strndx, &names)) return -1;
    e->names = (const char *)data + names.offset;
    e->names_size = names.size;
    return 0;
}

static int find_section(const struct elf *e, const char *name, struct section *out) {
    for (unsigned int i = 0; i < e->count; i++)
        if (section_at(e, i, out) && !strcmp(out->name, name)) return 1;
    return 0;
}

static struct cubin_kernel *kernel_named(struct cubin_info *info, const char *name) {
    for (unsigned int i = 0; i < info->count; i++)
        if (!strcmp(info->kernels[i].name, name)) return &info->kernels[i];
    return NULL;
}

/* REGCOUNT attributes of the global .nv.info section: (symbol index, registers). */
static void read_register_counts(const struct elf *e, struct cubin_info *info) {
    struct section nvinfo, symtab, strtab;
    if (!find_section(e, ".nv.info", &nvinfo) || !find_section(e, ".symtab", &symtab)) return;
    if (symtab.link >= e->count || !section_at(e, symtab.link, &strtab)) return;
    const uint8_t *p = e->data + nvinfo.offset, *end = p + nvinfo.size;
    while (p + 4 <= end) {
        uint8_t format = p[0], attribute = p[1];
        uint16_t size = u16(p + 2);
        if (format != EIFMT_SVAL) {
            p += format == EIFMT_NVAL ? 2 : 4;
            if (format < EIFMT_NVAL || format > EIFMT_HVAL) return; /* unknown: stop, never misread */
            continue;
        }
        if (p + 4 + size > end) return;
        if (attribute == ATTR_REGCOUNT && size >= 8) {
            uint32_t sym = u32(p + 4), regs = u32(p + 8);
            if ((uint64_t)(sym + 1) * 24 <= symtab.size) {
                uint32_t name = u32(e->data + symtab.offset + (uint64_t)sym * 24);
                struct cubin_kernel *k = name < strtab.size ? kernel_named(info, (const char *)e->data + strtab.offset + name) : NULL;
                if (k) k->registers = (int)regs;
            }
        }
        p += 4 + size;
    }
}

/* Data symbols (STT_OBJECT) with their sizes: what cuModuleGetGlobal hands out. */
static void read_globals(const struct elf *e, struct cubin_info *info) {
    struct section symtab, strtab;
    if (!find_section(e, ".symtab", &symtab) || symtab.link >= e->count || !section_at(e, symtab.link, &strtab)) return;
    size_t n = symtab.size / 24;
    info->globals = calloc(n ? n : 1, sizeof *info->globals);
    if (!info->globals) return;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *sym = e->data + symtab.offset + i * 24;
        uint32_t name = u32(sym);
        if ((sym[4] & 0xf) != 1 || name >= strtab.size) continue;
        struct cubin_global *g = &info->globals[info->nglobals++];
        g->name = strdup((const char *)e->data + strtab.offset + name);
        g->size = u64(sym + 16);
    }
}

static int read_cubin(const uint8_t *data, size_t size, struct cubin_info *info) {
    struct elf e;
    if (elf_open(&e, data, size) != 0) return -1;
    struct section s;
    for (unsigned int i = 0; i < e.count; i++)
        if (section_at(&e, i, &s) && !strncmp(s.name, ".text.", 6)) info->count++;
    info->kernels = calloc(info->count ? info->count : 1, sizeof *info->kernels);
    if (!info->kernels) return -1;
    unsigned int n = 0;
    for (unsigned int i = 0; i < e.count && n < info->count; i++) {
        if (!section_at(&e, i, &s) || strncmp(s.name, ".text.", 6)) continue;
        struct cubin_kernel *k = &info->kernels[n++];
        k->name = strdup(s.name + 6);
        char shared[512];
        struct section sh;
        snprintf(shared, sizeof shared, ".nv.shared.%s", k->name ? k->name : "");
        if (find_section(&e, shared, &sh)) k->static_shared = (int)sh.size;
    }
    read_register_counts(&e, info);
    read_globals(&e, info);
    info->parsed = 1;
    return 0;
}

/* The uncompressed cubin for `arch` (else any uncompressed cubin) in a fatbinary container. */
static const uint8_t *fatbin_cubin(const uint8_t *data, size_t size, int arch, size_t *cubin_size) {
    if (size < 16 || u32(data) != FATBIN_MAGIC) return NULL;
    size_t end = 16 + u64(data + 8), off = u16(data + 6);
    const uint8_t *best = NULL;
    if (end > size) end = size;
    while (off + 64 <= end) {
        const uint8_t *h = data + off;
        uint32_t header = u32(h + 4);
        uint64_t padded = u64(h + 8), flags = u64(h + 40);
        if (header < 64 || off + header + padded > end) break;
        int compressed = (flags & 0x8000) || (flags & 0x2000);
        if (u16(h) == 2 && !compressed && (!best || (int)u32(h + 28) == arch)) {
            best = h + header;
            *cubin_size = padded;
            if ((int)u32(h + 28) == arch) break;
        }
        off += header + padded;
    }
    return best;
}

int cubin_read(const void *image, size_t size_hint, int arch, struct cubin_info *info) {
    memset(info, 0, sizeof *info);
    const uint8_t *data = image;
    if (!data) return -1;
    if (u32(data) == FATBIN_WRAPPER_MAGIC) data = *(const uint8_t *const *)(data + 8);
    if (u32(data) == FATBIN_MAGIC) {
        size_t n = 0;
        const uint8_t *cubin = fatbin_cubin(data, 16 + u64(data + 8), arch, &n);
        return cubin ? read_cubin(cubin, n, info) : -1;
    }
    if (!memcmp(data, "\x7f" "ELF", 4)) {
        /* the ELF header says where its section table ends: the image's size without a hint */
        size_t size = size_hint ? size_hint : u64(data + 0x28) + (size_t)u16(data + 0x3c) * 64;
        return read_cubin(data, size, info);
    }
    return -1; /* PTX text */
}

const struct cubin_kernel *cubin_kernel(const struct cubin_info *info, const char *name) {
    return kernel_named((struct cubin_info *)info, name);
}

const struct cubin_global *cubin_global(const struct cubin_info *info, const char *name) {
    for (unsigned int i = 0; i < info->nglobals; i++)
        if (info->globals[i].name && !strcmp(info->globals[i].name, name)) return &info->globals[i];
    return NULL;
}

void cubin_free(struct cubin_info *info) {
    for (unsigned int i = 0; i < info->count; i++) free(info->kernels[i].name);
    for (unsigned int i = 0; i < info->nglobals; i++) free(info->globals[i].name);
    free(info->kernels);
    free(info->globals);
    memset(info, 0, sizeof *info);
}
