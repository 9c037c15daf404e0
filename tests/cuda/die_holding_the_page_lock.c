/* Run under `revati record`: a forked child takes the run's clock page lock and begins a write
 * (`seq` odd), exactly as the shim's writers do, and is SIGKILLed there, as torchrun's SIGTERM or
 * a SIGKILL can do to any thread of a traced process. Every later reader and writer of the page
 * would spin forever on that lock and that odd `seq`; the parent then reads the clock, sleeps 2 s
 * of virtual time (a jump) and prints how long it slept. Build: gcc -I revati/native. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void) {
    pid_t child = fork();
    if (child == 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/clock.page", getenv("REVATI_RUN_DIR"));
        int fd = open(path, O_RDWR);
        struct revati_clock_page *p = mmap(NULL, sizeof *p, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (fd < 0 || p == MAP_FAILED) return 2;
        uint32_t free_ = 0;
        while (!__atomic_compare_exchange_n(&p->lock, &free_, (uint32_t)getpid(), 0, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED))
            free_ = 0;
        __atomic_add_fetch(&p->seq, 1u, __ATOMIC_ACQ_REL); /* inside a write... */
        kill(getpid(), SIGKILL);                            /* ...and gone */
        return 3;
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
        fprintf(stderr, "the child did not die of SIGKILL: status %d\n", status);
        return 1;
    }
    double start = seconds();
    sleep(2);
    printf("slept %.3f\n", seconds() - start);
    return 0;
}
