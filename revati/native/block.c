/*
 * Blocking calls: the thread leaves `running`, tells the coordinator over its own connection
 * (opened on its first wait, closed when it ends) and sleeps until the coordinator wakes it at
 * the virtual time its wait ends. Waits on fds take part in the two-phase jump. Losing the
 * coordinator detaches the process: it goes on in real time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core.h"

static __thread int t_conn = -1;

/* ---- wake-up waits ------------------------------------------------------------------------
 * A thread the coordinator wakes is ready to run at once and may wait for a CPU before it runs.
 * That wait is the emulator's, not the program's: the coordinator's CPU-wait share (`--cpu-wait
 * discount`) leaves it out. The thread reads its own run_delay (schedstat, through an fd kept
 * per thread, with raw system calls the shim does not see) once it has left `running` (the
 * first read opens the file: not program time) and after it resumes, and adds the growth to the
 * page's `wake_wait_ns`: while blocked it is not runnable, so what grew is the wait between its
 * wake and its running. */
static __thread int t_schedstat = -2; /* -2: not opened yet, -1: unavailable */
static __thread int64_t t_delay_before;

static int64_t own_run_delay(void) {
    if (t_schedstat == -2)
        t_schedstat = (int)syscall(SYS_openat, AT_FDCWD, "/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    if (t_schedstat < 0) return -1;
    char buf[96];
    long n = syscall(SYS_pread64, t_schedstat, buf, sizeof buf - 1, 0);
    if (n <= 0) return -1;
    buf[n] = 0;
    char *p = strchr(buf, ' ');
    return p ? strtoll(p + 1, NULL, 10) : -1;
}

static void wake_wait_begin(void) { t_delay_before = own_run_delay(); }

static void wake_wait_end(void) {
    if (t_delay_before < 0) return;
    int64_t after = own_run_delay();
    if (after > t_delay_before)
        __atomic_add_fetch(&g_page->wake_wait_ns, after - t_delay_before, __ATOMIC_ACQ_REL);
}

static void close_schedstat(void) {
    if (t_schedstat >= 0) syscall(SYS_close, t_schedstat);
    t_schedstat = -2;
}

void revati_block_thread_exit(void) {
    close_schedstat();
    revati_spin_end();
    revati_timed_thread_exit();
    if (t_conn >= 0) close(t_conn);
    t_conn = -1;
}

void revati_block_after_fork(void) {
    t_conn = -1;
    close_schedstat(); /* it reads the parent's thread */
    revati_spin_after_fork();
}

int revati_thread_conn(void) {
    if (t_conn >= 0) return t_conn;
    t_conn = revati_connect_coordinator();
    if (t_conn >= 0) revati_thread_watch_exit();
    return t_conn;
}

/* The coordinator's answer to a wait: take its virtual time as this thread's now. */
static void resume(const struct revati_msg *in) {
    wake_wait_end();
    /* The coordinator counted us as running again before it answered (a = page seq then). */
    if (in->a) revati_page_rebase(g_page, (uint32_t)in->a);
    revati_clock_not_before(in->v);
}

static int coordinator_lost(void) {
    revati_detach("lost the revati coordinator"); /* first: the shared page may be held by it */
    revati_page_adjust(g_page, g_ring, +1);       /* on this process's own page from now on */
    return -1;
}

int revati_block(uint32_t msg_type, uint8_t sync_kind, uint16_t fn, int64_t a, int64_t b,
                 int64_t value, struct revati_msg *out) {
    revati_ensure_init();
    if (!revati_recording()) return -1;
    int64_t enter = revati_now();
    uint64_t idx = revati_emit(REC_SYNC, sync_kind, fn, 0, enter, enter, (uint64_t)a, (uint64_t)b,
                               (uint64_t)value, msg_type);
    /* Leave `running` before opening this thread's connection (the first time): connecting
     * wakes the coordinator, which may take the CPU from us, and that must not be program time
     * (it made the first sync of a run resume late). The coordinator does not jump while this
     * announced wait has not arrived. */
    revati_spin_end();
    revati_page_block_enter(g_page, g_ring, 0);
    wake_wait_begin(); /* out of `running`: reading schedstat is not program time */
    int fd = revati_thread_conn();
    if (fd < 0) return coordinator_lost();
    struct revati_msg m = {.type = msg_type, .pid = (int32_t)getpid(), .serial = g_serial,
                           .thread = revati_thread_index(), .ring = idx, .v = enter,
                           .value = value, .a = a, .b = b, .result = sync_kind, .pad = fn};
    if (send(fd, &m, sizeof m, MSG_NOSIGNAL) != sizeof m) return coordinator_lost();
    int left_sent = 0;
    for (;;) {
        ssize_t n = REAL(recv)(fd, out, sizeof *out, 0);
        if (n == sizeof *out && (out->type == MSG_WAKE || out->type == MSG_ANSWER)) break;
        if (n < 0 && errno == EINTR) {
            /* A signal interrupts a sleep: ask to be woken now (the answer says EINTR). */
            if (msg_type == MSG_WAIT && sync_kind == SYNC_SLEEP && !left_sent) {
                struct revati_msg l = m;
                l.type = MSG_LEFT;
                if (send(fd, &l, sizeof l, MSG_NOSIGNAL) != sizeof l) return coordinator_lost();
                left_sent = 1;
            }
            continue;
        }
        return coordinator_lost();
    }
    resume(out);
    return 0;
}

/* A wait on file descriptors (poll/select/epoll, blocking reads) or on a condition `ready` that
 * no fd signals (a semaphore another process posts), with a virtual deadline (-1: none). The
 * thread leaves `running`, announces the wait, and polls its fds together with its coordinator
 * connection (with `ready`, every WAIT_READY_POLL_MS of real time as well). It leaves early
 * (MSG_LEFT) when an fd or the condition becomes ready, and answers the coordinator's PREPARE(T)
 * of a two-phase jump with a VETO if one is ready, else ACCEPT: whatever is already on its way to
 * this thread is seen before the clock may move. Returns 1 if it left because it was ready, 0 at
 * the deadline, 2 when a signal interrupted it, -1 without a coordinator. */
#define WAIT_READY_POLL_MS 1
static int block_until(uint16_t fn, int64_t deadline, struct pollfd *fds, nfds_t n,
                       int (*ready)(void *), void *arg) {
    revati_ensure_init();
    if (!revati_recording()) return -1;
    int64_t enter = revati_now();
    uint64_t idx = revati_emit(REC_SYNC, SYNC_POLL, fn, 0, enter, enter, n, 0, (uint64_t)deadline, MSG_WAIT);
    struct pollfd *all = calloc(n + 1, sizeof *all);
    /* A spin waiter leaves `spinning` with `running` and the coordinator's wake puts it back in
     * both; any other wait ends a spin. */
    int spinner = fn == FN_sched_yield && revati_spin_marked();
    if (!spinner) revati_spin_end();
    revati_page_block_enter(g_page, g_ring, spinner); /* before connecting: see revati_block */
    wake_wait_begin();
    int fd = revati_thread_conn();
    if (fd < 0 || !all) goto lost;
    if (n) memcpy(all, fds, n * sizeof *fds);
    all[n] = (struct pollfd){.fd = fd, .events = POLLIN};
    struct revati_msg m = {.type = MSG_WAIT, .pid = (int32_t)getpid(), .serial = g_serial,
                           .thread = revati_thread_index(), .ring = idx, .v = enter, .value = deadline,
                           .a = (int64_t)n, .result = SYNC_POLL, .pad = fn};
    int left = 0, interrupted = 0, every = ready ? WAIT_READY_POLL_MS : -1;
    if (send(fd, &m, sizeof m, MSG_NOSIGNAL) != sizeof m) goto lost;
    for (;;) {
        int r = left ? REAL(poll)(&all[n], 1, -1) : REAL(poll)(all, n + 1, every);
        int user_ready = 0;
        if (r < 0) {
            if (errno != EINTR) goto lost;
            interrupted = user_ready = 1;
        } else if (!left) {
            for (nfds_t i = 0; i < n; i++) user_ready |= all[i].revents != 0;
            user_ready |= ready && ready(arg);
        }
        if (user_ready && !left) {
            struct revati_msg l = m;
            l.type = MSG_LEFT;
            if (send(fd, &l, sizeof l, MSG_NOSIGNAL) != sizeof l) goto lost;
            left = 1;
        }
        if (r <= 0 || !(all[n].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        struct revati_msg in;
        if (REAL(recv)(fd, &in, sizeof in, 0) != sizeof in) goto lost;
        if (in.type == MSG_WAKE || in.type == MSG_ANSWER) {
            resume(&in);
            break;
        }
        if (in.type == MSG_PREPARE) {
            int now_ready = left || (n && REAL(poll)(fds, n, 0) > 0) || (ready && ready(arg));
            struct revati_msg reply = m;
            reply.type = now_ready ? MSG_VETO : MSG_ACCEPT;
            if (send(fd, &reply, sizeof reply, MSG_NOSIGNAL) != sizeof reply) goto lost;
            left = left || now_ready;
        }
    }
    free(all);
    return interrupted ? 2 : left;
lost:
    free(all);
    return coordinator_lost();
}

int revati_block_io(uint16_t fn, int64_t deadline, struct pollfd *fds, nfds_t n) {
    return block_until(fn, deadline, fds, n, NULL, NULL);
}

int revati_block_ready(uint16_t fn, int64_t deadline, int (*ready)(void *), void *arg) {
    return block_until(fn, deadline, NULL, 0, ready, arg);
}

int revati_block_io_ready(uint16_t fn, int64_t deadline, struct pollfd *fds, nfds_t n,
                          int (*ready)(void *), void *arg) {
    return block_until(fn, deadline, fds, n, ready, arg);
}
