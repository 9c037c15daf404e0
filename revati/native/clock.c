/*
 * Virtual time as the shim reads it: CLOCK_MONOTONIC from the TSC, the clock page's virtual
 * time, never going back on one thread, and the host cost of intercepted calls (the charge).
 * revati_now and revati_charge are on every launch: no lock, no syscall.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <time.h>

#include "core.h"

static __thread int64_t t_last_v;

static int64_t libc_monotonic_ns(void) {
    struct timespec ts;
    REAL(clock_gettime)(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#if defined(__x86_64__)
#include <x86intrin.h>
/* CLOCK_MONOTONIC from the TSC (invariant on the machines we run on): a libc clock read costs
 * ~90 ns on some VMs, rdtsc ~35 ns, and every launch reads the clock. Calibrated against
 * CLOCK_MONOTONIC over an ever longer baseline: re-anchored every ~50 ms of TSC time. */
struct tsc_cal {
    uint64_t tsc0, first_tsc, next_check;
    int64_t mono0, first_mono;
    double scale;
};
static struct tsc_cal *g_cal;
static int g_cal_busy;

static void tsc_recalibrate(void) {
    if (__atomic_exchange_n(&g_cal_busy, 1, __ATOMIC_ACQUIRE)) return;
    struct tsc_cal *old = __atomic_load_n(&g_cal, __ATOMIC_ACQUIRE), *c = malloc(sizeof *c);
    if (c) {
        int64_t mono = libc_monotonic_ns();
        uint64_t tsc = __rdtsc();
        if (!old) {
            struct timespec pause = {0, 200000};
            REAL(nanosleep)(&pause, NULL);
            int64_t mono2 = libc_monotonic_ns();
            uint64_t tsc2 = __rdtsc();
            *c = (struct tsc_cal){tsc2, tsc, 0, mono2, mono, (double)(mono2 - mono) / (double)(tsc2 - tsc)};
        } else {
            double scale = (double)(mono - old->first_mono) / (double)(tsc - old->first_tsc);
            *c = (struct tsc_cal){tsc, old->first_tsc, 0, mono, old->first_mono, scale};
        }
        c->next_check = c->tsc0 + (uint64_t)(50e6 / c->scale);
        __atomic_store_n(&g_cal, c, __ATOMIC_RELEASE); /* the old one leaks: readers may hold it */
    }
    __atomic_store_n(&g_cal_busy, 0, __ATOMIC_RELEASE);
}

static inline int64_t tsc_to_ns(const struct tsc_cal *c, uint64_t t) {
    return c->mono0 + (int64_t)((double)(int64_t)(t - c->tsc0) * c->scale);
}

static __attribute__((noinline, cold)) int64_t tsc_ns_recalibrated(uint64_t t) {
    tsc_recalibrate();
    struct tsc_cal *c = __atomic_load_n(&g_cal, __ATOMIC_ACQUIRE);
    return c ? tsc_to_ns(c, t) : libc_monotonic_ns();
}

/* On every launch: keep it small enough to inline (the recalibration is out of line). */
int64_t revati_real_monotonic_ns(void) {
    uint64_t t = __rdtsc();
    struct tsc_cal *c = __atomic_load_n(&g_cal, __ATOMIC_ACQUIRE);
    if (UNLIKELY(!c || t > c->next_check)) return tsc_ns_recalibrated(t);
    return tsc_to_ns(c, t);
}
#else
int64_t revati_real_monotonic_ns(void) { return libc_monotonic_ns(); }
#endif

int64_t revati_now(void) {
    struct revati_clock_page *page = __atomic_load_n(&g_page, __ATOMIC_ACQUIRE);
    if (UNLIKELY(!page)) return revati_real_monotonic_ns();
    int64_t v = revati_page_now(page);
    if (UNLIKELY(v < t_last_v)) return t_last_v;
    t_last_v = v;
    return v;
}

void revati_clock_not_before(int64_t v) {
    if (v > t_last_v) t_last_v = v;
}

int64_t revati_charge(enum revati_cost_class cls, int64_t enter) {
    int64_t cost = g_cfg.cost_ns[cls];
    if (cost <= 0 || !revati_recording()) return enter;
    revati_page_charge(g_page, cost);
    return revati_now();
}
