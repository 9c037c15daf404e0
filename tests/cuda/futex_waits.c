/* Timed futex waits made through libc's syscall() (as libstdc++'s std::future and Rust's timed
 * parking make them), under revati record. Prints what each wait saw:
 *   timeout_s      a FUTEX_WAIT_BITSET with an absolute CLOCK_MONOTONIC deadline 30 s ahead
 *                  that nobody wakes: ETIMEDOUT after 30 virtual seconds
 *   woken_s        a relative FUTEX_WAIT of 100 s; another thread sleeps 2 s, stores the word
 *                  and wakes it with FUTEX_WAKE through syscall(): returns 0 after ~2 s
 *   unseen_s       the same, but the waker stores the word and wakes it with the syscall
 *                  instruction itself (the shim cannot see that wake): the waiter notices the
 *                  changed word and returns, not 100 s later
 *   again          a wait whose word no longer holds the value: EAGAIN at once
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint32_t word;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static long futex_wait_rel(uint32_t *w, uint32_t val, long seconds) {
    struct timespec t = {seconds, 0};
    return syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, &t, NULL, 0);
}

/* FUTEX_WAKE without libc: the raw syscall instruction. */
static long raw_futex_wake(uint32_t *w) {
    long rc;
    register long r10 __asm__("r10") = 0;
    __asm__ volatile("syscall"
                     : "=a"(rc)
                     : "0"((long)SYS_futex), "D"(w), "S"((long)FUTEX_WAKE_PRIVATE), "d"(1L), "r"(r10)
                     : "rcx", "r11", "memory");
    return rc;
}

static void *waker(void *unseen) {
    sleep(2);
    __atomic_store_n(&word, 1, __ATOMIC_RELEASE);
    if (unseen)
        raw_futex_wake(&word);
    else
        syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    return NULL;
}

static double woken_after(int unseen) {
    pthread_t t;
    __atomic_store_n(&word, 0, __ATOMIC_RELEASE);
    double t0 = now_s();
    pthread_create(&t, NULL, waker, unseen ? &word : NULL);
    while (__atomic_load_n(&word, __ATOMIC_ACQUIRE) == 0) futex_wait_rel(&word, 0, 100);
    double waited = now_s() - t0;
    pthread_join(t, NULL);
    return waited;
}

int main(void) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += 30;
    double t0 = now_s();
    long rc = syscall(SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE, 0, &deadline, NULL, FUTEX_BITSET_MATCH_ANY);
    printf("timeout=%s\n", rc == -1 && errno == ETIMEDOUT ? "ETIMEDOUT" : "other");
    printf("timeout_s=%.6f\n", now_s() - t0);
    printf("woken_s=%.6f\n", woken_after(0));
    printf("unseen_s=%.6f\n", woken_after(1));
    rc = futex_wait_rel(&word, 0, 100); /* word is 1 */
    printf("again=%s\n", rc == -1 && errno == EAGAIN ? "EAGAIN" : "other");
    return 0;
}
