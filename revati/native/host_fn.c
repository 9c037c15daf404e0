/*
 * Host functions (cudaLaunchHostFunc, cudaStreamAddCallback) run like the real runtime runs
 * them: on a separate thread, once the stream has reached them in virtual time, in the order
 * they were enqueued. Work submitted to that stream afterwards waits for them: the thread that
 * submits it (or synchronises) waits, outside `running`, until the host functions pending on
 * the stream have run (an fd wait on the stream's gate, so the clock can jump meanwhile).
 *
 * The worker counts as running exactly while it has work and is not waiting: the enqueuer adds
 * its share when it finds it idle, the worker drops it when its queue is empty.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "objects.h"

struct hostfn_item {
    void (*fn)(void *);
    cudaStreamCallback_t cb;
    cudaStream_t stream;
    void *data;
    int64_t ref;
    struct hostfn_item *next;
};

/* A gate per stream ref: its eventfd is readable exactly while nothing is pending on it. */
struct gate {
    int64_t ref;
    int pending;
    int efd;
};

#define GATES 64
#define ANY_REF INT64_MIN
static struct gate g_gates[GATES];
static int g_ngates;
static int g_pending; /* host functions enqueued and not yet run, all streams (atomic read) */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hostfn_item *g_head, *g_tail;
static int g_worker_started, g_worker_busy, g_wake_fd = -1;

static struct gate *gate_of(int64_t ref) { /* g_lock held */
    for (int i = 0; i < g_ngates; i++)
        if (g_gates[i].ref == ref) return &g_gates[i];
    if (g_ngates == GATES) return &g_gates[0]; /* table full: share the "any" gate */
    int efd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) return NULL;
    struct gate *g = &g_gates[g_ngates++];
    *g = (struct gate){.ref = ref, .efd = efd};
    return g;
}

static void gate_add(struct gate *g, int delta) { /* g_lock held */
    uint64_t v;
    if (!g) return;
    if (g->pending == 0 && delta > 0) (void)!REAL(read)(g->efd, &v, sizeof v); /* close it */
    g->pending += delta;
    if (g->pending == 0) { v = 1; (void)!write(g->efd, &v, sizeof v); } /* open it */
}

/* Wait (outside `running`) until nothing is pending on ref's gate (ANY_REF: on any stream). */
static void gate_wait(int64_t ref, uint16_t fn) {
    for (;;) {
        pthread_mutex_lock(&g_lock);
        struct gate *g = g_ngates ? gate_of(ref) : NULL;
        int pending = g ? g->pending : 0, efd = g ? g->efd : -1;
        pthread_mutex_unlock(&g_lock);
        if (!pending) return;
        struct pollfd p = {.fd = efd, .events = POLLIN};
        if (revati_block_io(fn, -1, &p, 1) < 0) {
            REAL(poll)(&p, 1, 100);
        }
    }
}

void revati_hostfn_gate(int64_t ref, uint16_t fn) {
    if (LIKELY(!__atomic_load_n(&g_pending, __ATOMIC_ACQUIRE))) return;
    gate_wait(ref, fn);
}

void revati_hostfn_gate_all(uint16_t fn) {
    if (LIKELY(!__atomic_load_n(&g_pending, __ATOMIC_ACQUIRE))) return;
    gate_wait(ANY_REF, fn);
}

static void *worker(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&g_lock);
        struct hostfn_item *it = g_head;
        if (!it) {
            if (g_worker_busy) revati_adjust_running(-1);
            g_worker_busy = 0;
            pthread_mutex_unlock(&g_lock);
            uint64_t v;
            struct pollfd p = {.fd = g_wake_fd, .events = POLLIN};
            REAL(poll)(&p, 1, -1);
            (void)!REAL(read)(g_wake_fd, &v, sizeof v);
            continue;
        }
        g_head = it->next;
        if (!g_head) g_tail = NULL;
        pthread_mutex_unlock(&g_lock);
        /* wait until the stream reaches the host function: the work enqueued before it ends */
        struct revati_msg m;
        revati_block(MSG_WAIT, SYNC_STREAM, it->cb ? FN_cudaStreamAddCallback : FN_cudaLaunchHostFunc,
                     it->ref, 0, 0, &m);
        int64_t start = revati_now(); /* a mark where it starts, in the worker's call order */
        revati_emit(REC_HOST_FN, REC_F_HOST_START, it->cb ? FN_cudaStreamAddCallback : FN_cudaLaunchHostFunc, 0,
                    start, start, (uint64_t)it->ref, 0, 0, 0);
        if (it->cb) it->cb(it->stream, cudaSuccess, it->data);
        else it->fn(it->data);
        pthread_mutex_lock(&g_lock);
        gate_add(gate_of(it->ref), -1);
        gate_add(gate_of(ANY_REF), -1);
        __atomic_sub_fetch(&g_pending, 1, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&g_lock);
        free(it);
    }
    return NULL;
}

int revati_hostfn_enqueue(int64_t ref, cudaStream_t s, void (*fn)(void *), cudaStreamCallback_t cb, void *data) {
    struct hostfn_item *it = calloc(1, sizeof *it);
    if (!it) return -1;
    *it = (struct hostfn_item){.fn = fn, .cb = cb, .stream = s, .data = data, .ref = ref};
    pthread_mutex_lock(&g_lock);
    if (!g_worker_started) {
        pthread_t t;
        g_wake_fd = eventfd(0, EFD_CLOEXEC);
        if (g_wake_fd < 0 || REAL(pthread_create)(&t, NULL, worker, NULL) != 0) {
            pthread_mutex_unlock(&g_lock);
            free(it);
            return -1;
        }
        pthread_detach(t);
        g_worker_started = 1;
    }
    gate_add(gate_of(ANY_REF), +1); /* first: the "any" gate is g_gates[0] */
    gate_add(gate_of(ref), +1);
    __atomic_add_fetch(&g_pending, 1, __ATOMIC_RELEASE);
    if (g_tail) g_tail->next = it;
    else g_head = it;
    g_tail = it;
    if (!g_worker_busy) {
        g_worker_busy = 1;
        revati_adjust_running(+1);
        uint64_t v = 1;
        (void)!write(g_wake_fd, &v, sizeof v);
    }
    pthread_mutex_unlock(&g_lock);
    return 0;
}
