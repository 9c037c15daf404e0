/* librevati_clock.so: signals sent to the coordinator, with their sender (loaded with ctypes).
 * Python's own handlers do not see who sent a signal; this one writes {signo, si_code, si_pid}
 * to a pipe the coordinator reads, so it can tell a terminal's Ctrl-C (which reached the
 * program too) from a signal sent to revati alone, which it must pass on. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static int g_relay_fd = -1;

static void relay(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    int saved = errno;
    int32_t m[3] = {sig, si ? si->si_code : 0, si ? (int32_t)si->si_pid : 0};
    ssize_t w = write(g_relay_fd, m, sizeof m); /* non-blocking: a full pipe drops the signal */
    (void)w;
    errno = saved;
}

/* Route `sig` to the pipe `fd` (write end, O_NONBLOCK). Returns 0 or -1 (errno). */
int revati_relay_signal(int fd, int sig) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = relay;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    g_relay_fd = fd;
    return sigaction(sig, &sa, NULL);
}
