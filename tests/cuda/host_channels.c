/*
 * Host channels between processes, for revati's tests (no CUDA needed): a forked sender sleeps
 * 2 s of virtual time, writes its CLOCK_MONOTONIC into the channel and at once sleeps 10 s
 * more; the parent blocks on the channel with no timeout. Prints `waited=` (the parent's wait)
 * and `lag=` (receive time minus send time; a jump past the message would make it about 10 s).
 *
 *   host_channels pipe|socketpair|eventfd|semaphore|rcvtimeo
 *
 * rcvtimeo: nobody sends; a recv with SO_RCVTIMEO of 3 s must fail with EAGAIN after 3 s of
 * virtual time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The sender: 2 s, the stamp into fd (and a post of sem), 10 s. */
static void send_later(int fd, sem_t *sem) {
    sleep(2);
    double t = now_s();
    if (write(fd, &t, sizeof t) != sizeof t) _exit(3);
    if (sem) sem_post(sem);
    sleep(10);
    _exit(0);
}

static int report(double t0, double sent) {
    double t1 = now_s();
    printf("waited=%.6f\nlag=%.6f\n", t1 - t0, t1 - sent);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *mode = argv[1];
    int fds[2];
    double t0 = now_s(), sent = 0;
    pid_t pid = -1;
    if (!strcmp(mode, "pipe") || !strcmp(mode, "socketpair")) {
        int ok = !strcmp(mode, "pipe") ? pipe(fds) : socketpair(AF_UNIX, SOCK_STREAM, 0, fds);
        if (ok != 0) return 1;
        if ((pid = fork()) == 0) send_later(fds[1], NULL);
        ssize_t n = !strcmp(mode, "pipe") ? read(fds[0], &sent, sizeof sent) : recv(fds[0], &sent, sizeof sent, 0);
        if (n != sizeof sent) return 1;
    } else if (!strcmp(mode, "eventfd")) {
        int efd = eventfd(0, 0);
        if ((pid = fork()) == 0) send_later(efd, NULL);
        if (read(efd, &sent, sizeof sent) != sizeof sent) return 1;
    } else if (!strcmp(mode, "semaphore")) {
        sem_t *sem = mmap(NULL, sizeof *sem, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (sem == MAP_FAILED || sem_init(sem, 1, 0) != 0 || pipe(fds) != 0) return 1;
        if ((pid = fork()) == 0) send_later(fds[1], sem);
        if (sem_wait(sem) != 0) return 1;
        if (read(fds[0], &sent, sizeof sent) != sizeof sent) return 1;
    } else if (!strcmp(mode, "rcvtimeo")) {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return 1;
        struct timeval tv = {3, 0};
        setsockopt(fds[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char c;
        ssize_t n = recv(fds[0], &c, 1, 0);
        printf("recv=%zd errno=%s\n", n, n < 0 && errno == EAGAIN ? "EAGAIN" : "other");
        sent = t0;
    } else {
        return 2;
    }
    report(t0, sent);
    if (pid > 0) waitpid(pid, NULL, 0);
    return 0;
}
