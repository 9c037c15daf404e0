/*
 * Blocking reads on host channels (docs/time-model.md, "Host channels"): read, recv, recvfrom,
 * recvmsg, accept and accept4 on a blocking fd that has nothing to give yet (a socket, pipe,
 * FIFO or eventfd) become fd waits: the thread leaves `running` until the fd is readable or its
 * SO_RCVTIMEO passes in virtual time, and takes part in the two-phase jump (revati_block_io), so
 * a jump never passes bytes already written to it. Then the real call runs. Regular files, fds
 * with O_NONBLOCK and calls with MSG_DONTWAIT go straight to the real call.
 *
 * Semaphores shared between processes (sem_wait in proc_wait.c) use the same wait with a
 * condition instead of an fd: a post from another process vetoes any jump until the waiter
 * took it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "shim_internal.h"

/* The virtual deadline of a receive on fd: now + SO_RCVTIMEO, or -1 for none (or no socket). */
static int64_t receive_deadline(int fd) {
    struct timeval tv = {0, 0};
    socklen_t len = sizeof tv;
    if (getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) != 0 || (tv.tv_sec == 0 && tv.tv_usec == 0))
        return -1;
    return revati_now() + (int64_t)tv.tv_sec * 1000000000LL + (int64_t)tv.tv_usec * 1000;
}

/* Before a blocking read of fd: wait out of `running` until it is readable. 0: go on with the
 * real call; -1: fail it with errno (EINTR for a signal, EAGAIN when SO_RCVTIMEO passed). */
static int wait_readable(uint16_t fn, int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (REAL(poll)(&p, 1, 0) != 0) return 0; /* data, end of file, an error, or not pollable */
    revati_ensure_init();
    if (!revati_recording()) return 0;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || (flags & O_NONBLOCK)) return 0;
    int64_t deadline = receive_deadline(fd);
    int r = revati_block_io(fn, deadline, &p, 1);
    if (r == 2) {
        errno = EINTR;
        return -1;
    }
    if (r == 0 && deadline >= 0) {
        errno = EAGAIN;
        return -1;
    }
    return 0;
}

REVATI_EXPORT ssize_t read(int fd, void *buf, size_t n) {
    if (n && wait_readable(FN_read, fd) < 0) return -1;
    return REAL(read)(fd, buf, n);
}

REVATI_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags) {
    if (!(flags & MSG_DONTWAIT) && wait_readable(FN_recv, fd) < 0) return -1;
    return REAL(recv)(fd, buf, n, flags);
}

REVATI_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *len) {
    if (!(flags & MSG_DONTWAIT) && wait_readable(FN_recvfrom, fd) < 0) return -1;
    return REAL(recvfrom)(fd, buf, n, flags, from, len);
}

REVATI_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
    if (!(flags & MSG_DONTWAIT) && wait_readable(FN_recvmsg, fd) < 0) return -1;
    return REAL(recvmsg)(fd, msg, flags);
}

REVATI_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len) {
    if (wait_readable(FN_accept, fd) < 0) return -1;
    return REAL(accept)(fd, addr, len);
}

REVATI_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    if (wait_readable(FN_accept4, fd) < 0) return -1;
    return REAL(accept4)(fd, addr, len, flags);
}

/* _FORTIFY_SOURCE's checked variants (glibc calls its own read inside them, not ours). */
void __chk_fail(void) __attribute__((noreturn));

REVATI_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen) {
    if (n > buflen) __chk_fail();
    return read(fd, buf, n);
}

REVATI_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags) {
    if (n > buflen) __chk_fail();
    return recv(fd, buf, n, flags);
}
