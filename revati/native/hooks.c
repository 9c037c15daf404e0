/* The table of real functions behind the interposers (hooks.h), resolved once. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>

#include "hooks.h"

struct revati_hooks revati_hooks_table;
int revati_hooks_ready;

static pthread_once_t g_hooks_once = PTHREAD_ONCE_INIT;
static __thread int t_resolving;

static void *next_symbol(const char *name, const char *version) {
    void *p = version ? dlvsym(RTLD_NEXT, name, version) : NULL;
    return p ? p : dlsym(RTLD_NEXT, name);
}

static void fill(struct revati_hooks *t) {
#define REVATI_HOOK_RESOLVE(name, version, ret, params) \
    __atomic_store_n((void **)&t->name, next_symbol(#name, version), __ATOMIC_RELAXED);
    REVATI_HOOKS(REVATI_HOOK_RESOLVE)
#undef REVATI_HOOK_RESOLVE
}

static void resolve_once(void) {
    fill(&revati_hooks_table);
    __atomic_store_n(&revati_hooks_ready, 1, __ATOMIC_RELEASE);
}

void revati_hooks_resolve(void) {
    if (__atomic_load_n(&revati_hooks_ready, __ATOMIC_ACQUIRE)) return;
    t_resolving = 1;
    pthread_once(&g_hooks_once, resolve_once);
    t_resolving = 0;
}

/* Before the table is ready. A call made from inside the resolution itself (dlsym calling an
 * interposed function on this thread) must not wait on the once it is part of: it gets a table
 * of its own, filled the same way. */
const struct revati_hooks *revati_hooks_slow(void) {
    static __thread struct revati_hooks t_own;
    if (t_resolving) {
        fill(&t_own);
        return &t_own;
    }
    revati_hooks_resolve();
    return &revati_hooks_table;
}
