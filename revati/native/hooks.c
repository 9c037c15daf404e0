/* The table of real functions behind the interposers (hooks.h). */
#define _GNU_SOURCE
#include <dlfcn.h>

#include "hooks.h"

struct revati_hooks revati_hooks_table;
int revati_hooks_ready;

static void *next_symbol(const char *name, const char *version) {
    void *p = version ? dlvsym(RTLD_NEXT, name, version) : NULL;
    return p ? p : dlsym(RTLD_NEXT, name);
}

/* Several threads may be here at once (before the constructor has run): each stores the same
 * pointers, atomically, then publishes the table. */
void revati_hooks_resolve(void) {
    if (__atomic_load_n(&revati_hooks_ready, __ATOMIC_ACQUIRE)) return;
    struct revati_hooks *t = &revati_hooks_table;
#define REVATI_HOOK_RESOLVE(name, version, ret, params) \
    __atomic_store_n((void **)&t->name, next_symbol(#name, version), __ATOMIC_RELAXED);
    REVATI_HOOKS(REVATI_HOOK_RESOLVE)
#undef REVATI_HOOK_RESOLVE
    __atomic_store_n(&revati_hooks_ready, 1, __ATOMIC_RELEASE);
}

/* A function of a library the program may load after the table was filled (libgomp, which
 * PyTorch brings with it): looked up when first needed; the caller keeps the pointer. */
void *revati_hooks_late(const char *name) { return dlsym(RTLD_NEXT, name); }
