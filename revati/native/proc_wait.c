/*
 * Waits on other processes and threads with no deadline: waitpid, wait, wait4, sem_wait and
 * pthread_cond_wait. A thread blocked in them leaves `running` (deadline ∞), as in pthread_join.
 *
 * - waitpid/wait/wait4 (blocking, exits only): a wait on the children's pidfds through
 *   revati_block_io, so the thread takes part in the two-phase jump: a child that has exited
 *   vetoes any jump (PREPARE finds its pidfd ready) and the parent resumes at the exit, never
 *   after a jump past it. A child under the shim counts as running until it exits, so the clock
 *   keeps moving while it works. Then the real call reaps it.
 * - sem_wait and pthread_cond_wait: the waiter leaves `running`; sem_post, pthread_cond_signal
 *   and pthread_cond_broadcast of this process hand a share of `running` over to the waiters
 *   they wake before waking them, so `running` never touches 0 between the post and the waiter
 *   resuming. A semaphore shared between processes (sem_open, pshared) is waited for on the
 *   coordinator instead (revati_block_ready): a post from another process hands nothing over,
 *   but once the value is up every jump is vetoed until the waiter took it.
 * - futex waits made through libc's syscall() (Rust's std Mutex, Condvar and thread parking;
 *   the rayon worker pool of Hugging Face tokenizers sleeps there), untimed: the same, keyed by
 *   the futex word, FUTEX_WAKE handing the shares over. Futex calls made with the syscall
 *   instruction itself (glibc's own) cannot be seen.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shim_internal.h"

#define MAX_CHILDREN 64

static int virtual_waits(void) { return revati_recording(); }

static int pidfd_open_(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

/* pidfds of the children `pid` (waitpid semantics) may name; 0 if we cannot tell. */
static int child_pidfds(pid_t pid, struct pollfd *fds) {
    if (pid > 0) {
        int fd = pidfd_open_(pid);
        if (fd < 0) return 0;
        fds[0] = (struct pollfd){.fd = fd, .events = POLLIN};
        return 1;
    }
    if (pid != -1) return 0; /* process groups: not followed */
    int n = 0;
    DIR *tasks = opendir("/proc/self/task");
    if (!tasks) return 0;
    struct dirent *t;
    while ((t = readdir(tasks)) && n < MAX_CHILDREN) {
        if (t->d_name[0] == '.') continue;
        char path[320];
        snprintf(path, sizeof path, "/proc/self/task/%s/children", t->d_name);
        FILE *f = fopen(path, "re");
        if (!f) continue;
        long child;
        while (n < MAX_CHILDREN && fscanf(f, "%ld", &child) == 1) {
            int fd = pidfd_open_((pid_t)child);
            if (fd >= 0) fds[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
        }
        fclose(f);
    }
    closedir(tasks);
    return n;
}

/* Block (out of `running`) until one of the children may be reaped. 0: go on with the real call
 * (which then returns at once, or blocks in real time if we could not follow the children);
 * -1: interrupted by a signal (EINTR). */
static int wait_children(uint16_t fn, pid_t pid, int options) {
    if (!virtual_waits() || (options & (WNOHANG | WUNTRACED | WCONTINUED))) return 0;
    siginfo_t info = {0};
    idtype_t type = pid > 0 ? P_PID : P_ALL;
    if (pid > 0 || pid == -1) {
        /* already exited: nothing to wait for */
        if (waitid(type, pid > 0 ? (id_t)pid : 0, &info, WEXITED | WNOHANG | WNOWAIT | (options & __WALL)) == 0 &&
            info.si_pid != 0)
            return 0;
    }
    struct pollfd fds[MAX_CHILDREN];
    int n = child_pidfds(pid, fds);
    if (n == 0) return 0;
    int r = revati_block_io(fn, -1, fds, (unsigned long)n);
    for (int i = 0; i < n; i++) close(fds[i].fd);
    if (r == 2) {
        errno = EINTR;
        return -1;
    }
    return 0;
}

REVATI_EXPORT pid_t waitpid(pid_t pid, int *status, int options) {
    revati_ensure_init();
    if (wait_children(FN_waitpid, pid, options) < 0) return -1;
    return REAL(waitpid)(pid, status, options);
}

REVATI_EXPORT pid_t wait(int *status) {
    revati_ensure_init();
    if (wait_children(FN_wait, -1, 0) < 0) return -1;
    return REAL(wait)(status);
}

REVATI_EXPORT pid_t wait4(pid_t pid, int *status, int options, struct rusage *usage) {
    revati_ensure_init();
    if (wait_children(FN_wait4, pid, options) < 0) return -1;
    return REAL(wait4)(pid, status, options, usage);
}

/* ---- hand-over table: waiters per semaphore / condition variable ------------------------- */

#define SLOTS 256
struct handoff {
    const void *obj;
    int waiting; /* threads of this process blocked on obj, out of `running` */
    int credits; /* shares of `running` already handed to them by a post/signal */
};
static struct handoff g_slots[SLOTS];
static pthread_mutex_t g_slots_lock = PTHREAD_MUTEX_INITIALIZER;

static struct handoff *slot_find(const void *obj, int insert) {
    size_t h = (size_t)(((uintptr_t)obj >> 4) * 11400714819323198485ull >> 56);
    struct handoff *reuse = NULL;
    for (size_t i = 0; i < SLOTS; i++) {
        struct handoff *s = &g_slots[(h + i) % SLOTS];
        if (s->obj == obj) return s;
        if (!reuse && s->obj && !s->waiting && !s->credits) reuse = s;
        if (!s->obj) {
            if (!reuse) reuse = s;
            break;
        }
    }
    if (!insert || !reuse) return NULL;
    *reuse = (struct handoff){.obj = obj};
    return reuse;
}

/* The caller is about to block on obj: leave `running`. NULL: not followed (table full). */
static struct handoff *waiter_enter(const void *obj) {
    if (!virtual_waits()) return NULL;
    pthread_mutex_lock(&g_slots_lock);
    struct handoff *s = slot_find(obj, 1);
    if (s) {
        s->waiting++;
        revati_adjust_running(-1);
    }
    pthread_mutex_unlock(&g_slots_lock);
    return s;
}

static void waiter_leave(struct handoff *s) {
    if (!s) return;
    pthread_mutex_lock(&g_slots_lock);
    s->waiting--;
    if (s->credits > 0)
        s->credits--; /* the waker counted us already */
    else
        revati_adjust_running(+1);
    pthread_mutex_unlock(&g_slots_lock);
}

/* A post/signal wakes up to `wakes` waiters of obj: count them as running first. sem_post is
 * async-signal-safe: a handler may interrupt this very thread inside the table, so the lock is
 * only tried (a missed hand-over just lets the waiter count itself when it returns). */
static void wake_waiters(const void *obj, int wakes) {
    if (!virtual_waits()) return;
    int tries = 0;
    while (pthread_mutex_trylock(&g_slots_lock) != 0)
        if (++tries > 1000) return;
    struct handoff *s = slot_find(obj, 0);
    if (s) {
        int give = s->waiting - s->credits;
        if (wakes >= 0 && give > wakes) give = wakes;
        if (give > 0) {
            s->credits += give;
            revati_adjust_running(give);
        }
    }
    pthread_mutex_unlock(&g_slots_lock);
}

void revati_waits_after_fork(void) {
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    g_slots_lock = fresh;
    memset(g_slots, 0, sizeof g_slots);
    revati_timed_after_fork();
}

/* glibc's sem_t: {uint64 value and waiters, int private, int pad}; `private` holds the futex
 * flag to use, 128 (glibc's LLL_SHARED) for a semaphore shared between processes. */
static int sem_shared(const sem_t *sem) { return ((const int *)(const void *)sem)[2] == 128; }

static int sem_posted(void *sem) {
    int v = 0;
    return sem_getvalue(sem, &v) == 0 && v > 0;
}

/* A semaphore another process may post: no hand-over can reach us from there, so the wait is
 * an fd-less wait on the coordinator (block.c) that vetoes every jump once the value is up. */
static int sem_wait_shared(sem_t *sem) {
    for (;;) {
        int r = revati_block_ready(FN_sem_wait, -1, sem_posted, sem);
        if (sem_trywait(sem) == 0) return 0;
        if (r == 2) {
            errno = EINTR;
            return -1;
        }
        if (r < 0) return REAL(sem_wait)(sem); /* no coordinator: a plain wait */
    }
}

REVATI_EXPORT int sem_wait(sem_t *sem) {
    if (!virtual_waits()) return REAL(sem_wait)(sem);
    if (sem_trywait(sem) == 0) return 0;
    if (sem_shared(sem)) return sem_wait_shared(sem);
    struct handoff *s = waiter_enter(sem);
    int rc = REAL(sem_wait)(sem);
    waiter_leave(s);
    return rc;
}

REVATI_EXPORT int sem_post(sem_t *sem) {
    wake_waiters(sem, 1);
    int rc = REAL(sem_post)(sem);
    /* after the post: a timed waiter woken before it would find nothing to take, wait again
     * and sleep through this post until its deadline */
    if (rc == 0) revati_timed_wake(sem, 1);
    return rc;
}

REVATI_EXPORT int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m) {
    struct handoff *s = waiter_enter(c);
    int rc = REAL(pthread_cond_wait)(c, m);
    waiter_leave(s);
    return rc;
}

REVATI_EXPORT int pthread_cond_signal(pthread_cond_t *c) {
    wake_waiters(c, 1);
    revati_timed_wake(c, 1);
    return REAL(pthread_cond_signal)(c);
}

REVATI_EXPORT int pthread_cond_broadcast(pthread_cond_t *c) {
    wake_waiters(c, -1);
    revati_timed_wake(c, -1);
    return REAL(pthread_cond_broadcast)(c);
}

/* A timed FUTEX_WAIT (relative timeout) or FUTEX_WAIT_BITSET (absolute, on CLOCK_MONOTONIC or,
 * with FUTEX_CLOCK_REALTIME, CLOCK_REALTIME, as the caller read them: virtual) waits in virtual
 * time (timed_wait.c). Without a coordinator, the virtual deadline is converted to real time. */
static long futex_timed_wait(const long a[6]) {
    const struct timespec *ts = (const struct timespec *)a[3];
    int cmd = (int)a[1] & FUTEX_CMD_MASK;
    clockid_t clk = (int)a[1] & FUTEX_CLOCK_REALTIME ? CLOCK_REALTIME : CLOCK_MONOTONIC;
    int64_t t = (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
    int64_t deadline = cmd == FUTEX_WAIT ? revati_now() + t : revati_timespec_to_virtual(ts, clk);
    int rc = revati_futex_wait_virtual((const uint32_t *)a[0], (uint32_t)a[2], deadline, FN_syscall);
    if (rc > 0) {
        errno = rc;
        return -1;
    }
    if (rc == 0) return 0;
    int64_t left = deadline - revati_now();
    struct timespec rel = {left > 0 ? left / 1000000000LL : 0, left > 0 ? left % 1000000000LL : 0};
    int op = ((int)a[1] & ~(FUTEX_CMD_MASK | FUTEX_CLOCK_REALTIME)) | FUTEX_WAIT; /* relative */
    return REAL(syscall)(SYS_futex, a[0], (long)op, a[2], (long)&rel, 0L, 0L);
}

/* An untimed FUTEX_WAIT(_BITSET) leaves `running` like pthread_cond_wait; FUTEX_WAKE counts the
 * waiters it wakes first. Timed waits wait in virtual time; every other call goes straight
 * through. */
static long futex_call(const long a[6]) {
    int cmd = (int)a[1] & FUTEX_CMD_MASK;
    const void *word = (const void *)a[0];
    if ((cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET) && a[3] == 0) {
        struct handoff *s = waiter_enter(word);
        long rc = REAL(syscall)(SYS_futex, a[0], a[1], a[2], a[3], a[4], a[5]);
        int saved = errno;
        waiter_leave(s);
        errno = saved;
        return rc;
    }
    if (cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET) return futex_timed_wait(a);
    if (cmd == FUTEX_WAKE || cmd == FUTEX_WAKE_BITSET) {
        int n = a[2] > INT_MAX ? INT_MAX : (int)a[2];
        wake_waiters(word, n);
        revati_timed_wake(word, n);
    }
    return REAL(syscall)(SYS_futex, a[0], a[1], a[2], a[3], a[4], a[5]);
}

REVATI_EXPORT long syscall(long number, ...) {
    long a[6];
    va_list ap;
    va_start(ap, number);
    for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_futex && virtual_waits()) return futex_call(a);
    return REAL(syscall)(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
