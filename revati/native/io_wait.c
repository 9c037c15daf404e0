/*
 * poll, ppoll, select, pselect, epoll_wait and epoll_pwait with virtual timeouts (docs/design.md §3).
 * A wait that would block becomes a coordinator wait: fds ready now return at once; otherwise
 * the thread leaves `running` until an fd is ready or the virtual deadline is reached, and takes
 * part in the two-phase jump (revati_block_io). After it resumes, the result is read with a
 * zero-timeout call of the real function, so revents, fd sets and epoll events are exact.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>

#include "shim_internal.h"

static int virtual_waits(void) { return revati_recording(); }

static int64_t deadline_after_ms(int timeout_ms) {
    return timeout_ms < 0 ? -1 : revati_now() + (int64_t)timeout_ms * 1000000LL;
}

static int64_t deadline_after_ts(const struct timespec *ts) {
    return ts ? revati_now() + (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec : -1;
}

/* Wait on fds until ready or deadline; -1 means: no coordinator, do the real wait instead. */
static int wait_io(uint16_t fn, int64_t deadline, struct pollfd *fds, nfds_t n) {
    int r = revati_block_io(fn, deadline, fds, n);
    if (r == 2) {
        errno = EINTR;
        return -2;
    }
    return r;
}

REVATI_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout) {
    revati_ensure_init();
    if (timeout == 0 || !virtual_waits()) return REAL(poll)(fds, n, timeout);
    int ready = REAL(poll)(fds, n, 0);
    if (ready != 0) return ready;
    int r = wait_io(FN_poll, deadline_after_ms(timeout), fds, n);
    if (r == -2) return -1;
    if (r < 0) return REAL(poll)(fds, n, timeout);
    return REAL(poll)(fds, n, 0);
}

REVATI_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *tmo, const sigset_t *mask) {
    static const struct timespec zero = {0, 0};
    revati_ensure_init();
    if (mask || (tmo && tmo->tv_sec == 0 && tmo->tv_nsec == 0) || !virtual_waits()) return REAL(ppoll)(fds, n, tmo, mask);
    int ready = REAL(ppoll)(fds, n, &zero, NULL);
    if (ready != 0) return ready;
    int r = wait_io(FN_ppoll, deadline_after_ts(tmo), fds, n);
    if (r == -2) return -1;
    if (r < 0) return REAL(ppoll)(fds, n, tmo, mask);
    return REAL(ppoll)(fds, n, &zero, NULL);
}

/* select: the fd sets as pollfds for the wait, then a zero-timeout select for the answer. */
static int select_wait(uint16_t fn, int nfds, fd_set *r, fd_set *w, fd_set *e, int64_t deadline) {
    struct pollfd *fds = calloc(nfds > 0 ? (size_t)nfds : 1, sizeof *fds);
    if (!fds) return -1;
    nfds_t n = 0;
    for (int fd = 0; fd < nfds; fd++) {
        short ev = (short)((r && FD_ISSET(fd, r) ? POLLIN : 0) | (w && FD_ISSET(fd, w) ? POLLOUT : 0) |
                           (e && FD_ISSET(fd, e) ? POLLPRI : 0));
        if (ev) fds[n++] = (struct pollfd){.fd = fd, .events = ev};
    }
    int rc = wait_io(fn, deadline, fds, n);
    free(fds);
    return rc;
}

REVATI_EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv) {
    revati_ensure_init();
    if ((tv && tv->tv_sec == 0 && tv->tv_usec == 0) || !virtual_waits()) return REAL(select)(nfds, r, w, e, tv);
    fd_set r0, w0, e0;
    if (r) r0 = *r;
    if (w) w0 = *w;
    if (e) e0 = *e;
    struct timeval zero = {0, 0};
    int ready = REAL(select)(nfds, r, w, e, &zero);
    if (ready != 0) return ready;
    if (r) *r = r0;
    if (w) *w = w0;
    if (e) *e = e0;
    int64_t deadline = tv ? revati_now() + (int64_t)tv->tv_sec * 1000000000LL + (int64_t)tv->tv_usec * 1000 : -1;
    int rc = select_wait(FN_select, nfds, r, w, e, deadline);
    if (rc == -2) return -1;
    if (rc < 0) return REAL(select)(nfds, r, w, e, tv);
    zero = (struct timeval){0, 0};
    ready = REAL(select)(nfds, r, w, e, &zero);
    if (tv && ready == 0) *tv = (struct timeval){0, 0};
    return ready;
}

REVATI_EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *tmo, const sigset_t *mask) {
    static const struct timespec zero = {0, 0};
    revati_ensure_init();
    if (mask || (tmo && tmo->tv_sec == 0 && tmo->tv_nsec == 0) || !virtual_waits()) return REAL(pselect)(nfds, r, w, e, tmo, mask);
    fd_set r0, w0, e0;
    if (r) r0 = *r;
    if (w) w0 = *w;
    if (e) e0 = *e;
    int ready = REAL(pselect)(nfds, r, w, e, &zero, NULL);
    if (ready != 0) return ready;
    if (r) *r = r0;
    if (w) *w = w0;
    if (e) *e = e0;
    int rc = select_wait(FN_pselect, nfds, r, w, e, deadline_after_ts(tmo));
    if (rc == -2) return -1;
    if (rc < 0) return REAL(pselect)(nfds, r, w, e, tmo, mask);
    return REAL(pselect)(nfds, r, w, e, &zero, NULL);
}

REVATI_EXPORT int epoll_wait(int epfd, struct epoll_event *events, int max, int timeout) {
    revati_ensure_init();
    if (timeout == 0 || !virtual_waits()) return REAL(epoll_wait)(epfd, events, max, timeout);
    int ready = REAL(epoll_wait)(epfd, events, max, 0);
    if (ready != 0) return ready;
    struct pollfd p = {.fd = epfd, .events = POLLIN};
    int rc = wait_io(FN_epoll_wait, deadline_after_ms(timeout), &p, 1);
    if (rc == -2) return -1;
    if (rc < 0) return REAL(epoll_wait)(epfd, events, max, timeout);
    return REAL(epoll_wait)(epfd, events, max, 0);
}

REVATI_EXPORT int epoll_pwait(int epfd, struct epoll_event *events, int max, int timeout, const sigset_t *mask) {
    revati_ensure_init();
    if (mask || timeout == 0 || !virtual_waits()) return REAL(epoll_pwait)(epfd, events, max, timeout, mask);
    return epoll_wait(epfd, events, max, timeout);
}
