/* sched_yield spin loops under revati record. Prints what each spin saw:
 *   flag_s     a spinner waits for a flag that another thread sets after sleeping 3 s: it sees
 *              the flag ~3 virtual seconds later (the sleep was a jump, not 3 s of spinning)
 *   late_us    how long after the store (virtual) the spinner saw it
 *   window_s   a lone spinner spins until 2 s of its own clock have passed, as a busy-loop
 *              window does: the loop ends after 2 virtual seconds
 *   spins      yields of that loop
 * With the argument `pair`, two processes spin at once on a flag in shared memory (the readers
 * of one queue, as vLLM's tensor-parallel workers are) that a thread of the first sets after
 * sleeping 3 s: each prints the flag_s it saw (`child_flag_s` for the second).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int flag;
static int64_t stored_ns;

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void *setter(void *arg) {
    (void)arg;
    sleep(3);
    __atomic_store_n(&stored_ns, now_ns(), __ATOMIC_RELEASE);
    __atomic_store_n(&flag, 1, __ATOMIC_RELEASE);
    return NULL;
}

struct shared_flag {
    int flag;
    int64_t stored_ns;
};

static void *shared_setter(void *arg) {
    struct shared_flag *s = arg;
    sleep(3);
    __atomic_store_n(&s->stored_ns, now_ns(), __ATOMIC_RELEASE);
    __atomic_store_n(&s->flag, 1, __ATOMIC_RELEASE);
    return NULL;
}

static int pair(void) {
    struct shared_flag *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED) return 1;
    int64_t t0 = now_ns();
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        while (!__atomic_load_n(&s->flag, __ATOMIC_ACQUIRE)) sched_yield();
        printf("child_flag_s=%.6f\n", (now_ns() - t0) / 1e9);
        return 0;
    }
    pthread_t t;
    pthread_create(&t, NULL, shared_setter, s);
    while (!__atomic_load_n(&s->flag, __ATOMIC_ACQUIRE)) sched_yield();
    int64_t seen = now_ns();
    pthread_join(t, NULL);
    waitpid(child, NULL, 0);
    printf("flag_s=%.6f\n", (seen - t0) / 1e9);
    printf("late_us=%.1f\n", (seen - __atomic_load_n(&s->stored_ns, __ATOMIC_ACQUIRE)) / 1e3);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "pair") == 0) return pair();
    pthread_t t;
    int64_t t0 = now_ns();
    pthread_create(&t, NULL, setter, NULL);
    while (!__atomic_load_n(&flag, __ATOMIC_ACQUIRE)) sched_yield();
    int64_t seen = now_ns();
    pthread_join(t, NULL);
    printf("flag_s=%.6f\n", (seen - t0) / 1e9);
    printf("late_us=%.1f\n", (seen - __atomic_load_n(&stored_ns, __ATOMIC_ACQUIRE)) / 1e3);
    long spins = 0;
    int64_t w0 = now_ns();
    while (now_ns() - w0 < 2000000000LL) {
        sched_yield();
        spins++;
    }
    printf("window_s=%.6f\n", (now_ns() - w0) / 1e9);
    printf("spins=%ld\n", spins);
    return 0;
}
