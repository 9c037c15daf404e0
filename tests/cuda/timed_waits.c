/* Timed waits on condition variables and a semaphore of this process, under revati record:
 * a waiter loops on 1-second timed waits (a realtime condition, then a CLOCK_MONOTONIC one)
 * while the main thread sleeps 10 virtual seconds, then signals; a semaphore is posted 5 ms
 * after the waiter starts a 100-second timed wait. Prints what each wait saw. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t plain = PTHREAD_COND_INITIALIZER, mono;
static sem_t sem;
static int round_done;

static double seconds(clockid_t clk) {
    struct timespec t;
    clock_gettime(clk, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static int wait_round(pthread_cond_t *c, clockid_t clk, int round) {
    int timeouts = 0;
    pthread_mutex_lock(&lock);
    while (round_done < round) {
        struct timespec t;
        clock_gettime(clk, &t);
        t.tv_sec += 1;
        if (pthread_cond_timedwait(c, &lock, &t) == ETIMEDOUT) timeouts++;
    }
    pthread_mutex_unlock(&lock);
    return timeouts;
}

static void *waiter(void *arg) {
    (void)arg;
    int a = wait_round(&plain, CLOCK_REALTIME, 1);
    int b = wait_round(&mono, CLOCK_MONOTONIC, 2);
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += 100;
    double t0 = seconds(CLOCK_MONOTONIC);
    int r = sem_timedwait(&sem, &t);
    printf("realtime_timeouts=%d\nmonotonic_timeouts=%d\nsem=%d\nsem_s=%.6f\n", a, b, r,
           seconds(CLOCK_MONOTONIC) - t0);
    return NULL;
}

static void finish_round(pthread_cond_t *c, int round) {
    sleep(10);
    pthread_mutex_lock(&lock);
    round_done = round;
    pthread_cond_signal(c);
    pthread_mutex_unlock(&lock);
}

int main(void) {
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&mono, &attr);
    sem_init(&sem, 0, 0);
    double t0 = seconds(CLOCK_MONOTONIC);
    pthread_t th;
    pthread_create(&th, NULL, waiter, NULL);
    finish_round(&plain, 1);
    finish_round(&mono, 2);
    usleep(5000);
    sem_post(&sem);
    pthread_join(th, NULL);
    printf("total_s=%.6f\n", seconds(CLOCK_MONOTONIC) - t0);
    return 0;
}
