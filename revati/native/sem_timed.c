/*
 * Timed waits on process-private semaphores in virtual time: sem_timedwait and sem_clockwait,
 * which every Python lock, Event, Condition and queue with a timeout goes through.
 *
 * The waiter registers (semaphore, its thread's eventfd), then waits on the eventfd with the
 * virtual deadline as an fd wait (revati_block_io): it leaves `running` and takes part in the
 * two-phase jump, so an idle thread that wakes every 100 ms to look for work no longer keeps
 * the clock flowing at real speed. sem_post of this process writes the eventfd of every
 * registered waiter of that semaphore after it posts; the waiter then takes the semaphore with
 * sem_trywait or waits again. A waiter checks the semaphore once more after registering, so a
 * post between its first try and its registration is never missed.
 *
 * A process-shared semaphore (sem_open, or sem_init with pshared) keeps the real-time wait of
 * libc_time.c: a post from another process would not reach the eventfd. glibc keeps the
 * distinction in the semaphore itself: on 64-bit targets `struct new_sem` is a 64-bit value
 * followed by `int private`, 0 (LLL_PRIVATE) for a process-private one and FUTEX_PRIVATE_FLAG
 * (128, LLL_SHARED) for a shared one, sem_open's included (the layout since glibc 2.21).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "shim_internal.h"

#define TIMED_SLOTS 256
#define GLIBC_LLL_PRIVATE 0

struct timed_waiter {
    const sem_t *sem;
    int efd;
};
static struct timed_waiter g_timed[TIMED_SLOTS];
static int g_timed_count; /* registered waiters (atomic read): posts skip the table when 0 */
static pthread_mutex_t g_timed_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread int t_efd = -1;

static int sem_is_private(const sem_t *sem) {
#if UINTPTR_MAX == 0xffffffffffffffffu
    struct {
        uint64_t data;
        int private_flag;
        int pad;
    } layout;
    _Static_assert(sizeof layout <= sizeof(sem_t), "glibc sem_t layout");
    memcpy(&layout, sem, sizeof layout);
    return layout.private_flag == GLIBC_LLL_PRIVATE;
#else
    (void)sem;
    return 0;
#endif
}

static int thread_eventfd(void) {
    if (t_efd < 0) t_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return t_efd;
}

void revati_sem_thread_exit(void) {
    if (t_efd >= 0) close(t_efd); /* unregistered: no post can write to it any more */
    t_efd = -1;
}

void revati_sem_after_fork(void) {
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    g_timed_lock = fresh;
    memset(g_timed, 0, sizeof g_timed);
    __atomic_store_n(&g_timed_count, 0, __ATOMIC_RELAXED);
}

static int timed_register(const sem_t *sem, int efd) {
    int slot = -1;
    pthread_mutex_lock(&g_timed_lock);
    for (int i = 0; i < TIMED_SLOTS && slot < 0; i++)
        if (!g_timed[i].sem) slot = i;
    if (slot >= 0) {
        g_timed[slot] = (struct timed_waiter){.sem = sem, .efd = efd};
        __atomic_add_fetch(&g_timed_count, 1, __ATOMIC_SEQ_CST);
    }
    pthread_mutex_unlock(&g_timed_lock);
    return slot;
}

static void timed_unregister(int slot) {
    pthread_mutex_lock(&g_timed_lock);
    g_timed[slot].sem = NULL;
    __atomic_sub_fetch(&g_timed_count, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&g_timed_lock);
}

/* After a sem_post: wake this process's timed waiters of sem. sem_post is async-signal-safe,
 * so the lock is only tried (a missed wake-up delays the waiter to its deadline, no more). */
void revati_sem_posted(const sem_t *sem) {
    if (__atomic_load_n(&g_timed_count, __ATOMIC_SEQ_CST) == 0) return;
    int tries = 0;
    while (pthread_mutex_trylock(&g_timed_lock) != 0)
        if (++tries > 1000) return;
    uint64_t one = 1;
    for (int i = 0; i < TIMED_SLOTS; i++)
        if (g_timed[i].sem == sem) (void)!write(g_timed[i].efd, &one, sizeof one);
    pthread_mutex_unlock(&g_timed_lock);
}

/* Wait for sem until the virtual time `deadline`. Returns 0 (taken), -1 with errno ETIMEDOUT or
 * EINTR, or -2: not a wait this file handles (shared semaphore, no coordinator, table full);
 * the caller then does the real-time wait. */
int revati_sem_wait_until(sem_t *sem, int64_t deadline, uint16_t fn) {
    if (!revati_recording() || !sem_is_private(sem)) return -2;
    int efd = thread_eventfd();
    if (efd < 0) return -2;
    for (;;) {
        if (sem_trywait(sem) == 0) return 0;
        if (revati_now() >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        uint64_t stale;
        (void)!read(efd, &stale, sizeof stale); /* wake-ups of an earlier wait */
        int slot = timed_register(sem, efd);
        if (slot < 0) return -2;
        if (sem_trywait(sem) == 0) {
            timed_unregister(slot);
            return 0;
        }
        struct pollfd p = {.fd = efd, .events = POLLIN};
        int r = revati_block_io(fn, deadline, &p, 1);
        timed_unregister(slot);
        if (r < 0) return -2;
        if (r == 2) {
            errno = EINTR;
            return -1;
        }
    }
}
