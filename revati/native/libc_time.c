/*
 * libc's clocks, sleeps and timed waits in virtual time (docs/design.md §3).
 * Monotonic clocks read epoch_monotonic + V, realtime clocks epoch_realtime + V; CPU-time clocks
 * are not warped. Sleeps block on the coordinator; absolute-deadline waits on other threads are
 * converted back to real time so they never hang.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "shim_internal.h"

#define NS 1000000000LL

static int is_monotonic(clockid_t c) {
    return c == CLOCK_MONOTONIC || c == CLOCK_MONOTONIC_RAW || c == CLOCK_MONOTONIC_COARSE || c == CLOCK_BOOTTIME;
}
static int is_realtime(clockid_t c) { return c == CLOCK_REALTIME || c == CLOCK_REALTIME_COARSE || c == CLOCK_TAI; }
static int warped(clockid_t c) { return g_page && (is_monotonic(c) || is_realtime(c)); }

void revati_clock_virtual_to_timespec(int64_t v, clockid_t clk, struct timespec *ts) {
    int64_t t = v + (is_realtime(clk) ? g_page->epoch_realtime_ns : g_page->epoch_monotonic_ns);
    ts->tv_sec = t / NS;
    ts->tv_nsec = t % NS;
}

int64_t revati_timespec_to_virtual(const struct timespec *ts, clockid_t clk) {
    int64_t t = (int64_t)ts->tv_sec * NS + ts->tv_nsec;
    return t - (is_realtime(clk) ? g_page->epoch_realtime_ns : g_page->epoch_monotonic_ns);
}

REVATI_EXPORT int clock_gettime(clockid_t clk, struct timespec *ts) {
    if (!warped(clk) || !ts) return REAL(clock_gettime)(clk, ts);
    revati_clock_virtual_to_timespec(revati_now(), clk, ts);
    return 0;
}

REVATI_EXPORT int __clock_gettime(clockid_t clk, struct timespec *ts) { return clock_gettime(clk, ts); }

REVATI_EXPORT int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    (void)tz;
    if (!tv) return 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}

REVATI_EXPORT time_t time(time_t *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}

/* Sleep until virtual `deadline`. Returns 0, or EINTR with the virtual time left in *left. */
static int sleep_until(int64_t deadline, uint16_t fn, int64_t *left) {
    struct revati_msg m;
    int64_t now = revati_now();
    *left = 0;
    if (deadline <= now) return 0;
    if (revati_block(MSG_WAIT, SYNC_SLEEP, fn, 0, 0, deadline, &m) < 0) return -1;
    if (m.result == EINTR) {
        *left = deadline - m.v > 0 ? deadline - m.v : 0;
        return EINTR;
    }
    return 0;
}

static int64_t ts_ns(const struct timespec *ts) { return (int64_t)ts->tv_sec * NS + ts->tv_nsec; }
static void ns_ts(int64_t ns, struct timespec *ts) { ts->tv_sec = ns / NS; ts->tv_nsec = ns % NS; }

REVATI_EXPORT int nanosleep(const struct timespec *req, struct timespec *rem) {
    revati_ensure_init();
    if (!req || req->tv_nsec < 0 || req->tv_nsec >= NS) { errno = EINVAL; return -1; }
    if (!revati_recording()) return REAL(nanosleep)(req, rem);
    int64_t left;
    int rc = sleep_until(revati_now() + ts_ns(req), FN_nanosleep, &left);
    if (rc < 0) return REAL(nanosleep)(req, rem);
    if (rc == EINTR) {
        if (rem) ns_ts(left, rem);
        errno = EINTR;
        return -1;
    }
    return 0;
}

REVATI_EXPORT int clock_nanosleep(clockid_t clk, int flags, const struct timespec *req, struct timespec *rem) {
    revati_ensure_init();
    if (!warped(clk) || !revati_recording() || !req) return REAL(clock_nanosleep)(clk, flags, req, rem);
    int64_t deadline = flags & TIMER_ABSTIME ? revati_timespec_to_virtual(req, clk) : revati_now() + ts_ns(req);
    int64_t left;
    int rc = sleep_until(deadline, FN_clock_nanosleep, &left);
    if (rc < 0) {
        struct timespec rel;
        int64_t d = deadline - revati_now();
        ns_ts(d > 0 ? d : 0, &rel);
        return REAL(clock_nanosleep)(CLOCK_MONOTONIC, 0, &rel, rem);
    }
    if (rc == EINTR && rem && !(flags & TIMER_ABSTIME)) ns_ts(left, rem);
    return rc;
}

REVATI_EXPORT int usleep(useconds_t us) {
    struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
    return nanosleep(&ts, NULL);
}

REVATI_EXPORT unsigned int sleep(unsigned int s) {
    struct timespec ts = {s, 0}, rem = {0, 0};
    if (nanosleep(&ts, &rem) < 0) return (unsigned int)rem.tv_sec + (rem.tv_nsec > 0);
    return 0;
}

/* ---- absolute deadlines of waits on other threads: back to real time ----------------------- */

static void to_real(const struct timespec *virt, clockid_t clk, struct timespec *real) {
    struct timespec now;
    REAL(clock_gettime)(clk, &now);
    int64_t left = revati_timespec_to_virtual(virt, clk) - revati_now();
    if (left < 0) left = 0;
    double dil = g_page->dilation > 0 ? g_page->dilation : 1.0;
    ns_ts(ts_ns(&now) + (int64_t)((double)left * dil), real);
}

REVATI_EXPORT int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *abs) {
    if (!g_page || !abs) return REAL(pthread_cond_timedwait)(c, m, abs);
    struct timespec r;
    to_real(abs, CLOCK_REALTIME, &r);
    return REAL(pthread_cond_timedwait)(c, m, &r);
}

REVATI_EXPORT int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clk, const struct timespec *abs) {
    if (!warped(clk) || !abs) return REAL(pthread_cond_clockwait)(c, m, clk, abs);
    struct timespec r;
    to_real(abs, clk, &r);
    return REAL(pthread_cond_clockwait)(c, m, clk, &r);
}

static int valid_timespec(const struct timespec *ts) { return ts->tv_nsec >= 0 && ts->tv_nsec < NS; }

REVATI_EXPORT int sem_timedwait(sem_t *s, const struct timespec *abs) {
    if (!g_page || !abs) return REAL(sem_timedwait)(s, abs);
    if (valid_timespec(abs)) {
        int rc = revati_sem_wait_until(s, revati_timespec_to_virtual(abs, CLOCK_REALTIME), FN_sem_timedwait);
        if (rc != -2) return rc;
    }
    struct timespec r;
    to_real(abs, CLOCK_REALTIME, &r);
    return REAL(sem_timedwait)(s, &r);
}

REVATI_EXPORT int sem_clockwait(sem_t *s, clockid_t clk, const struct timespec *abs) {
    if (!warped(clk) || !abs) return REAL(sem_clockwait)(s, clk, abs);
    if (valid_timespec(abs)) {
        int rc = revati_sem_wait_until(s, revati_timespec_to_virtual(abs, clk), FN_sem_clockwait);
        if (rc != -2) return rc;
    }
    struct timespec r;
    to_real(abs, clk, &r);
    return REAL(sem_clockwait)(s, clk, &r);
}

REVATI_EXPORT int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abs) {
    if (!g_page || !abs) return REAL(pthread_mutex_timedlock)(m, abs);
    struct timespec r;
    to_real(abs, CLOCK_REALTIME, &r);
    return REAL(pthread_mutex_timedlock)(m, &r);
}

REVATI_EXPORT int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clk, const struct timespec *abs) {
    if (!warped(clk) || !abs) return REAL(pthread_mutex_clocklock)(m, clk, abs);
    struct timespec r;
    to_real(abs, clk, &r);
    return REAL(pthread_mutex_clocklock)(m, clk, &r);
}
