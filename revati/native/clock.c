/*
 * Virtual time as the shim reads it: CLOCK_MONOTONIC from the TSC, the clock page's virtual
 * time, never going back on one thread, and the host cost of intercepted calls (the charge).
 * revati_now and revati_charge are on every launch: no lock, no syscall.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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
    revati_check_coordinator(); /* every ~50 ms of clock reads: a lost engine is noticed */
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

/* Detached (the engine is gone): from now on this process keeps time by itself, real time from
 * the present virtual time, on a private copy of the clock page that nobody else changes (no
 * frozen clock, no lock left held by an engine that died inside it). Nothing adjusts `running`
 * after a detach. */
void revati_clock_detach(void) {
    struct revati_clock_page *old = __atomic_load_n(&g_page, __ATOMIC_ACQUIRE), *p;
    if (!old) return;
    p = mmap(NULL, sizeof *p, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    memcpy(p, old, sizeof *p); /* no seqlock: a writer may have died inside it */
    int64_t real = revati_real_monotonic_ns();
    int64_t flowed = old->frozen ? 0 : (int64_t)((double)(real - old->base_real) / p->dilation);
    int64_t v = old->base_virtual + (flowed > 0 ? flowed : 0);
    if (v + p->charge_ns < t_last_v) v = t_last_v - p->charge_ns;
    p->lock = 0;
    p->seq = 0;
    p->base_virtual = v;
    p->base_real = real;
    p->frozen = 0;
    p->running = 1 << 20;
    __atomic_store_n(&g_page, p, __ATOMIC_RELEASE); /* the old mapping stays: readers may hold it */
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
