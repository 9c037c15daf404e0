/* OpenMP workers under revati record (build with -fopenmp). A parallel region of 2 threads
 * burns ~0.3 s of CPU on each (the clock flows: both count as running); then the main thread
 * sleeps 20 s while the idle worker waits at libgomp's barrier, in a futex call the shim cannot
 * see. Prints the virtual seconds each phase took and the team size. */
#include <omp.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double seconds(clockid_t clk) {
    struct timespec t;
    clock_gettime(clk, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void burn(double cpu_s) {
    double until = seconds(CLOCK_THREAD_CPUTIME_ID) + cpu_s;
    while (seconds(CLOCK_THREAD_CPUTIME_ID) < until) {
    }
}

int main(void) {
    int team = 0;
    double t0 = seconds(CLOCK_MONOTONIC);
#pragma omp parallel num_threads(2)
    {
        burn(0.3);
#pragma omp atomic
        team++;
    }
    double t1 = seconds(CLOCK_MONOTONIC);
    sleep(20);
    double t2 = seconds(CLOCK_MONOTONIC);
    printf("team=%d\n", team);
    printf("region_s=%.6f\n", t1 - t0);
    printf("sleep_s=%.6f\n", t2 - t1);
    return 0;
}
