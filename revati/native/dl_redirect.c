/*
 * dlopen of an NVIDIA library that revati stands in for, by its path, opens revati's library of
 * that name instead.
 *
 * PyTorch preloads the CUDA libraries of its wheels by path (nvidia/cu13/lib/libcudart.so.13,
 * nvidia/nccl/lib/libnccl.so.2). Nothing binds to them (the preloaded shim comes first in symbol
 * lookup), but they are mapped, and programs that look a library up in /proc/self/maps and open
 * the path they find there (vLLM's and FlashInfer's CUDA runtime bindings take the first
 * "libcudart" mapping) would get the real runtime, whose first call fails without a GPU
 * (cuGetExportTable). With this redirection the real libraries are never mapped.
 *
 * A name without a slash is passed through untouched: the loader finds the preloaded library by
 * its SONAME anyway. The pass-through must stay a tail call, so that the loader sees the
 * original caller (whose RUNPATH a bare name is searched in), not the shim.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "core.h"

/* The file names of revati's libraries (build.py's SHIM_NAME and FACADE_NAMES), and the bare
 * development names some loaders open, each with the name of revati's library it becomes. */
static const char *const REDIRECTS[][2] = {
    {"libcudart.so.13", "libcudart.so.13"}, {"libcudart.so", "libcudart.so.13"},
    {"libcuda.so.1", "libcuda.so.1"},       {"libcuda.so", "libcuda.so.1"},
    {"libnccl.so.2", "libnccl.so.2"},       {"libnccl.so", "libnccl.so.2"},
    {"libnvidia-ml.so.1", "libnvidia-ml.so.1"}, {"libnvidia-ml.so", "libnvidia-ml.so.1"},
};

static char g_dir[PATH_MAX]; /* the folder of the shim, "" until known */

static const char *shim_dir(void) {
    if (!g_dir[0]) {
        Dl_info info;
        const char *slash;
        if (!dladdr((void *)shim_dir, &info) || !info.dli_fname || !(slash = strrchr(info.dli_fname, '/')))
            return NULL;
        snprintf(g_dir, sizeof g_dir, "%.*s", (int)(slash - info.dli_fname), info.dli_fname);
    }
    return g_dir;
}

/* revati's library of the same name as `file` (a path), or NULL. */
static const char *replacement(const char *file) {
    const char *slash = file ? strrchr(file, '/') : NULL;
    const char *dir = slash ? shim_dir() : NULL;
    if (!dir || (strncmp(file, dir, strlen(dir)) == 0 && file + strlen(dir) == slash)) return NULL;
    for (size_t i = 0; i < sizeof REDIRECTS / sizeof *REDIRECTS; i++)
        if (strcmp(slash + 1, REDIRECTS[i][0]) == 0) return REDIRECTS[i][1];
    return NULL;
}

static __attribute__((noinline)) void *open_replacement(const char *name, int mode) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", shim_dir(), name);
    return REAL(dlopen)(path, mode);
}

REVATI_EXPORT void *dlopen(const char *file, int mode) {
    const char *name = replacement(file);
    if (name) return open_replacement(name, mode);
    return REAL(dlopen)(file, mode); /* a tail call: the loader sees our caller */
}
