/*
 * Threads: every participant thread counts as running. A thread started by our pthread_create
 * counts from its creation until it ends. When a joiner waits for it in pthread_join, the joiner
 * leaves `running`; the ending thread hands its own share over to the joiner instead of
 * dropping it, so `running` never touches 0 between the end of one and the wake of the other.
 * OpenMP workers count only inside a parallel region's body (gomp.c).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>

#include "core.h"

/* pthread key values: 1 = close the coordinator connection at exit, 2 = also end its share */
#define EXIT_CONN ((void *)1)
#define EXIT_STARTED ((void *)2)

struct thread_start {
    void *(*fn)(void *);
    void *arg;
    pthread_t handle;
    int joining, exited, handed, omp_worker;
    struct thread_start *next;
};

static pthread_key_t g_thread_key;
static pthread_mutex_t g_join_lock = PTHREAD_MUTEX_INITIALIZER;
static struct thread_start *g_started; /* g_join_lock */
static __thread struct thread_start *t_start;

static void thread_ends(void) {
    struct thread_start *s = t_start;
    if (!revati_recording()) return;
    pthread_mutex_lock(&g_join_lock);
    if (revati_gomp_worker()) { /* out of `running` outside a region's body (gomp.c) */
        if (s) s->exited = 1;
    } else if (s && s->joining) {
        s->handed = 1;
    } else {
        if (s) s->exited = 1;
        revati_page_adjust(g_page, g_ring, -1);
    }
    pthread_mutex_unlock(&g_join_lock);
}

static void thread_exit(void *arg) {
    revati_block_thread_exit();
    if (arg == EXIT_STARTED) thread_ends();
}

void revati_threads_init(void) { pthread_key_create(&g_thread_key, thread_exit); }

void revati_thread_watch_exit(void) {
    if (!pthread_getspecific(g_thread_key)) pthread_setspecific(g_thread_key, EXIT_CONN);
}

void revati_threads_after_fork(void) {
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    g_join_lock = fresh;
    g_started = NULL;
    t_start = NULL;
}

static void *thread_trampoline(void *p) {
    struct thread_start *s = p;
    t_start = s;
    pthread_setspecific(g_thread_key, EXIT_STARTED);
    if (s->omp_worker) revati_gomp_worker_starts();
    return s->fn(s->arg);
}

REVATI_EXPORT int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg) {
    revati_ensure_init();
    if (!revati_recording()) return REAL(pthread_create)(t, attr, fn, arg);
    struct thread_start *s = calloc(1, sizeof *s);
    if (!s) return REAL(pthread_create)(t, attr, fn, arg);
    s->fn = fn;
    s->arg = arg;
    s->omp_worker = revati_gomp_start_routine(fn);
    revati_page_adjust(g_page, g_ring, +1);
    pthread_mutex_lock(&g_join_lock);
    int rc = REAL(pthread_create)(&s->handle, attr, thread_trampoline, s);
    if (rc == 0) {
        *t = s->handle;
        s->next = g_started;
        g_started = s;
    }
    pthread_mutex_unlock(&g_join_lock);
    if (rc != 0) {
        revati_page_adjust(g_page, g_ring, -1);
        free(s);
    }
    return rc;
}

static struct thread_start *take_started(pthread_t t) {
    for (struct thread_start **pp = &g_started; *pp; pp = &(*pp)->next) {
        if (pthread_equal((*pp)->handle, t)) {
            struct thread_start *s = *pp;
            *pp = s->next;
            return s;
        }
    }
    return NULL;
}

REVATI_EXPORT int pthread_join(pthread_t t, void **ret) {
    if (!revati_recording()) return REAL(pthread_join)(t, ret);
    pthread_mutex_lock(&g_join_lock);
    struct thread_start *s = take_started(t);
    int waits = s && !s->exited;
    if (waits) {
        s->joining = 1;
        revati_page_adjust(g_page, g_ring, -1);
    }
    pthread_mutex_unlock(&g_join_lock);
    int rc = REAL(pthread_join)(t, ret);
    if (waits) {
        pthread_mutex_lock(&g_join_lock);
        if (!s->handed) revati_page_adjust(g_page, g_ring, +1); /* it never ran our exit path */
        pthread_mutex_unlock(&g_join_lock);
    }
    free(s);
    return rc;
}
