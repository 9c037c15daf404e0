/*
 * Timed waits on other threads of this process in virtual time: pthread_cond_timedwait,
 * pthread_cond_clockwait, sem_timedwait and sem_clockwait (docs/time-model.md).
 *
 * The waiter leaves `running` and waits on the coordinator until its virtual deadline
 * (revati_block_io) with one fd: its thread's eventfd. pthread_cond_signal, _broadcast and
 * sem_post of this process write the eventfds of the waiters they wake, so such a wait ends
 * early, and until it has resumed the two-phase jump finds it ready (a veto): no jump passes a
 * wake-up. A waiter so woken returns as from a spurious wake-up (a condition variable) or takes
 * the semaphore if it still can. Periodic wait loops (PyTorch's NCCL watchdog and heartbeat
 * threads, Python's `lock.acquire(timeout=...)`) thus let the clock freeze and jump.
 *
 * Process-shared condition variables and semaphores may be woken from another process, which
 * the eventfd never hears of: they keep the real-time wait their virtual deadline converts to.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "shim_internal.h"

#define WAITERS 128

struct vwaiter {
    const void *obj; /* the condition variable or semaphore; NULL: free or woken */
    int efd;
};
static struct vwaiter g_waiters[WAITERS];
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread int t_efd = -1;

/* glibc's layouts (nptl, since 2.25): a condition variable's __wrefs word holds bit 0 =
 * process-shared, bit 1 = CLOCK_MONOTONIC; a semaphore's `private` word is glibc's LLL_SHARED
 * (FUTEX_PRIVATE_FLAG, 128) when shared (sem_init with pshared, sem_open), 0 otherwise. */
#define COND_WREFS_OFFSET 36
#define SEM_PRIVATE_OFFSET 8

static unsigned cond_flags(const pthread_cond_t *c) {
    unsigned w;
    memcpy(&w, (const char *)c + COND_WREFS_OFFSET, sizeof w);
    return w;
}

static int cond_shared(const pthread_cond_t *c) { return cond_flags(c) & 1u; }

clockid_t revati_cond_clock(const pthread_cond_t *c) {
    return cond_flags(c) & 2u ? CLOCK_MONOTONIC : CLOCK_REALTIME;
}

static int sem_shared(const sem_t *s) {
    int private_flag;
    memcpy(&private_flag, (const char *)s + SEM_PRIVATE_OFFSET, sizeof private_flag);
    return private_flag != 0;
}

/* ---- the waiter table -------------------------------------------------------------------- */

static int waiter_add(const void *obj) {
    if (t_efd < 0) t_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (t_efd < 0) return -1;
    uint64_t stale;
    while (read(t_efd, &stale, sizeof stale) == sizeof stale) {
    }
    int slot = -1;
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < WAITERS && slot < 0; i++)
        if (!g_waiters[i].obj) slot = i;
    if (slot >= 0) g_waiters[slot] = (struct vwaiter){.obj = obj, .efd = t_efd};
    pthread_mutex_unlock(&g_lock);
    return slot;
}

static void waiter_remove(int slot, const void *obj) {
    pthread_mutex_lock(&g_lock);
    if (g_waiters[slot].obj == obj && g_waiters[slot].efd == t_efd) g_waiters[slot].obj = NULL;
    pthread_mutex_unlock(&g_lock);
}

void revati_timed_wake(const void *obj, int n) {
    int tries = 0;
    while (pthread_mutex_trylock(&g_lock) != 0)
        if (++tries > 1000) return;
    for (int i = 0; i < WAITERS && n != 0; i++) {
        if (g_waiters[i].obj != obj) continue;
        uint64_t one = 1;
        ssize_t w = write(g_waiters[i].efd, &one, sizeof one);
        (void)w;
        g_waiters[i].obj = NULL;
        n--;
    }
    pthread_mutex_unlock(&g_lock);
}

void revati_timed_after_fork(void) {
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    g_lock = fresh;
    memset(g_waiters, 0, sizeof g_waiters);
    if (t_efd >= 0) close(t_efd); /* the parent's: shared with it */
    t_efd = -1;
}

void revati_timed_thread_exit(void) {
    if (t_efd >= 0) close(t_efd);
    t_efd = -1;
}

/* ---- the interposers' virtual paths ------------------------------------------------------ */

int revati_cond_wait_virtual(pthread_cond_t *c, pthread_mutex_t *m, int64_t deadline, uint16_t fn) {
    if (!revati_recording() || cond_shared(c)) return -1;
    if (deadline <= revati_now()) return ETIMEDOUT;
    int slot = waiter_add(c);
    if (slot < 0) return -1;
    struct pollfd p = {.fd = t_efd, .events = POLLIN};
    pthread_mutex_unlock(m);
    int r = revati_block_io(fn, deadline, &p, 1);
    waiter_remove(slot, c);
    pthread_mutex_lock(m);
    return r == 0 ? ETIMEDOUT : 0; /* woken, interrupted or detached: a spurious wake-up */
}

int revati_sem_wait_virtual(sem_t *s, int64_t deadline, uint16_t fn) {
    if (!revati_recording() || sem_shared(s)) return -1;
    for (;;) {
        if (sem_trywait(s) == 0) return 0;
        if (deadline <= revati_now()) return ETIMEDOUT;
        int slot = waiter_add(s);
        if (slot < 0) return -1;
        if (sem_trywait(s) == 0) { /* posted before we were in the table */
            waiter_remove(slot, s);
            return 0;
        }
        struct pollfd p = {.fd = t_efd, .events = POLLIN};
        int r = revati_block_io(fn, deadline, &p, 1);
        waiter_remove(slot, s);
        if (r < 0) return -1;
        if (r == 2) return EINTR;
        if (r == 0) return sem_trywait(s) == 0 ? 0 : ETIMEDOUT;
    }
}

/* A timed futex wait made through syscall() (libstdc++'s std::future and std::latch waits,
 * Rust's timed parking): woken by a FUTEX_WAKE through syscall() of this process (its eventfd),
 * or by the word leaving `val`, checked every millisecond of real time and at every PREPARE,
 * which covers wakers the shim cannot see (glibc's own futex calls, other processes). */
struct futex_watch {
    const uint32_t *word;
    uint32_t val;
};

static int futex_word_changed(void *arg) {
    const struct futex_watch *w = arg;
    return __atomic_load_n(w->word, __ATOMIC_ACQUIRE) != w->val;
}

int revati_futex_wait_virtual(const uint32_t *word, uint32_t val, int64_t deadline, uint16_t fn) {
    if (!revati_recording()) return -1;
    struct futex_watch watch = {.word = word, .val = val};
    if (futex_word_changed(&watch)) return EAGAIN;
    if (deadline <= revati_now()) return ETIMEDOUT;
    int slot = waiter_add(word);
    if (slot < 0) return -1;
    struct pollfd p = {.fd = t_efd, .events = POLLIN};
    int r = futex_word_changed(&watch) ? 1 : revati_block_io_ready(fn, deadline, &p, 1, futex_word_changed, &watch);
    waiter_remove(slot, word);
    if (r == 2) return EINTR;
    return r == 0 ? ETIMEDOUT : 0; /* woken, the word changed, or detached: a wake-up */
}
