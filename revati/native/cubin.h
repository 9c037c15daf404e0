/* Kernels and globals of a module image (cubin.c). */
#ifndef REVATI_CUBIN_H
#define REVATI_CUBIN_H

#include <stddef.h>
#include <stdint.h>

struct cubin_kernel {
    char *name;
    int registers;     /* per thread; 0 when the image does not say */
    int static_shared; /* bytes */
};

struct cubin_global {
    char *name;
    uint64_t size;
};

struct cubin_info {
    int parsed; /* 0: PTX or a compressed entry, no kernel list */
    unsigned int count, nglobals;
    struct cubin_kernel *kernels;
    struct cubin_global *globals;
};

/* Read a cubin, a fatbinary (container or registration wrapper) or PTX; size_hint 0 = unknown.
 * Returns 0 when a kernel list was read. `arch` is e.g. 90 for sm_90. */
int cubin_read(const void *image, size_t size_hint, int arch, struct cubin_info *info);
const struct cubin_kernel *cubin_kernel(const struct cubin_info *info, const char *name);
const struct cubin_global *cubin_global(const struct cubin_info *info, const char *name);
void cubin_free(struct cubin_info *info);

#endif
