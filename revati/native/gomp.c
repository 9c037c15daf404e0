/*
 * OpenMP worker threads (GNU libgomp, which PyTorch's intra-op parallelism runs on) count as
 * running only while they run a parallel region's body.
 *
 * Between regions a libgomp worker waits at its team's barrier: it spins a while, then sleeps
 * in a futex call made with the syscall instruction, which the shim cannot see. Counted as
 * running from its creation, one idle worker kept the clock from ever freezing in a process
 * that ran a single parallel region (vLLM's engine core, after PyTorch's first parallel op).
 * So a thread whose start routine lies in libgomp leaves `running` as it starts, and
 * GOMP_parallel (how GCC compiles `#pragma omp parallel`) hands libgomp a wrapper of the region
 * body that counts a worker as running while it runs the body. The thread that starts the
 * region runs the body too and stays counted throughout (it waits for the workers at the end
 * barrier, as running), so the clock flows while any of the team works.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>

#include "shim_internal.h"

static __thread int t_omp_worker;  /* this thread is a libgomp worker */
static __thread int t_omp_counted; /* ... inside a region's body, counted as running */

int revati_gomp_start_routine(void *(*fn)(void *)) {
    Dl_info info;
    return dladdr((void *)fn, &info) && info.dli_fname && strstr(info.dli_fname, "libgomp");
}

void revati_gomp_worker_starts(void) {
    t_omp_worker = 1;
    revati_adjust_running(-1); /* counted at its creation, by its creator */
}

int revati_gomp_worker(void) { return t_omp_worker; }

struct region {
    void (*fn)(void *);
    void *data;
};

static void region_body(void *p) {
    const struct region *r = p;
    if (!t_omp_worker || t_omp_counted) { /* the starting thread, or a nested region */
        r->fn(r->data);
        return;
    }
    t_omp_counted = 1;
    revati_adjust_running(+1);
    r->fn(r->data);
    revati_adjust_running(-1);
    t_omp_counted = 0;
}

typedef void (*gomp_parallel_fn)(void (*)(void *), void *, unsigned, unsigned);

/* libgomp's own GOMP_parallel: the next definition in the global scope, or, for a libgomp
 * loaded only into a local scope (a dependency of a library opened with RTLD_LOCAL), the
 * loaded library's. */
static gomp_parallel_fn real_gomp_parallel(void) {
    void *f = revati_hooks_late("GOMP_parallel");
    if (!f) {
        void *gomp = dlopen("libgomp.so.1", RTLD_LAZY | RTLD_NOLOAD);
        if (gomp) f = dlsym(gomp, "GOMP_parallel");
    }
    return (gomp_parallel_fn)f;
}

REVATI_EXPORT void GOMP_parallel(void (*fn)(void *), void *data, unsigned threads, unsigned flags) {
    static gomp_parallel_fn real;
    gomp_parallel_fn next = __atomic_load_n(&real, __ATOMIC_ACQUIRE);
    if (!next) {
        next = real_gomp_parallel();
        __atomic_store_n(&real, next, __ATOMIC_RELEASE);
    }
    if (!next) { /* no libgomp found: run the body on this thread alone (a team of one) */
        fn(data);
        return;
    }
    struct region r = {fn, data};
    next(region_body, &r, threads, flags);
}
