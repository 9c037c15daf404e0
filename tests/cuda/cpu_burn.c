/* Threads that each burn the same CPU work at once, more of them than the machine has cores.
 * Prints the virtual time the whole took (CLOCK_MONOTONIC, virtual under revati record) and the
 * most CPU time one thread used (CLOCK_THREAD_CPUTIME_ID, real):
 *   total_s    from before the threads start to after the last ends
 *   thread_s   the largest thread CPU time: what the whole takes with a core for every thread
 * Usage: cpu_burn THREADS ITERATIONS
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long iterations;
static double thread_s[256];

static double seconds(clockid_t clk) {
    struct timespec t;
    clock_gettime(clk, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void *burn(void *arg) {
    volatile uint64_t x = (uint64_t)(intptr_t)arg;
    for (long i = 0; i < iterations; i++) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    thread_s[(intptr_t)arg] = seconds(CLOCK_THREAD_CPUTIME_ID);
    return NULL;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 4;
    iterations = argc > 2 ? atol(argv[2]) : 100000000L;
    if (n < 1 || n > 256) return 2;
    pthread_t t[256];
    double t0 = seconds(CLOCK_MONOTONIC);
    for (intptr_t i = 0; i < n; i++) pthread_create(&t[i], NULL, burn, (void *)i);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    double most = 0;
    for (int i = 0; i < n; i++) most = thread_s[i] > most ? thread_s[i] : most;
    printf("total_s=%.6f\nthread_s=%.6f\n", seconds(CLOCK_MONOTONIC) - t0, most);
    return 0;
}
