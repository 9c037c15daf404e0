/*
 * Spin loops: a thread that calls sched_yield again and again, with next to no work in
 * between, is waiting for another thread to change something in memory (vLLM's shared-memory
 * broadcast queue spins so for a second after each read). Counted as running, it keeps the
 * clock flowing at wall speed while it spins.
 *
 * A spinning thread counts in the page's `spinning` as well as in `running`. While a thread
 * that is not spinning runs, a spinner yields for real: the clock flows anyway and that thread
 * may write what it waits for. When every thread counted as running spins (one spinner alone, or
 * the readers of one queue in several processes, each spinning), nothing they wait for can
 * change before some other thread's deadline, so each waits on the coordinator instead (out of
 * `running` and `spinning`, a poll-kind wait with no fds) until a thread that is not a spin
 * waiter runs or has run since it blocked (checked every millisecond of real time and at each
 * PREPARE, which then vetoes the jump) or a short virtual deadline of its own: its quantum,
 * 50 µs at first, doubled each time it passes with nobody else running, up to 10 ms, back to
 * 50 µs once someone ran. A spin waiter woken at its quantum comes back into `spinning` with
 * its wake (the coordinator's), and its wake does not count as someone running, so the other
 * spinners sleep on. So time-based exits of the spin (a timeout, a busy-loop window) come in a
 * few jumps, and a jump to another thread's earlier deadline is never held back. A spinner
 * resumes up to a millisecond of real time after another thread started running (that thread's
 * run counts in virtual time), or, if that thread blocked again sooner, at the clock's time
 * then.
 */
#define _GNU_SOURCE
#include <sched.h>

#include "core.h"

#define SPIN_GAP_NS 20000LL   /* a yield this soon after the previous one returned: a spin */
#define SPIN_MIN_YIELDS 16    /* yields in a row before the thread counts as spinning */
#define QUANTUM_MIN_NS 50000LL
#define QUANTUM_MAX_NS 10000000LL

static __thread int64_t t_last_return_ns;
static __thread int t_in_a_row;
static __thread int64_t t_quantum_ns;
static __thread int t_spinning; /* counted in the page's `spinning` */

int revati_spin_marked(void) { return t_spinning; }

void revati_spin_end(void) {
    if (!t_spinning) return;
    t_spinning = 0;
    if (revati_recording()) revati_page_spinning(g_page, g_ring, -1);
}

void revati_spin_after_fork(void) { t_spinning = 0; }

static void spin_mark(void) {
    if (t_spinning) return;
    t_spinning = 1;
    revati_page_spinning(g_page, g_ring, +1);
}

/* Threads counted as running that do not spin (a spinner blocked or paused elsewhere for a
 * moment can make it negative). */
static int32_t working(void) {
    return __atomic_load_n(&g_page->running, __ATOMIC_ACQUIRE) -
           __atomic_load_n(&g_page->spinning, __ATOMIC_ACQUIRE);
}

/* Someone who is not a spin waiter runs, or ran since the spinner blocked (the clock unfroze
 * for it): what it waits for may have changed. Checked every millisecond of real time and at
 * each PREPARE, so a thread that ran for less than that and blocked again still ends the wait
 * (by a veto). */
static int someone_ran(void *unfreezes_before) {
    return working() > 0 ||
           __atomic_load_n(&g_page->unfreezes, __ATOMIC_ACQUIRE) != *(uint64_t *)unfreezes_before;
}

/* Wait out of `running` until a thread that is not spinning runs or the quantum passes. */
static void spin_wait(void) {
    if (t_quantum_ns < QUANTUM_MIN_NS) t_quantum_ns = QUANTUM_MIN_NS;
    int64_t deadline = revati_now() + t_quantum_ns;
    uint64_t unfreezes = __atomic_load_n(&g_page->unfreezes, __ATOMIC_ACQUIRE);
    if (revati_block_ready(FN_sched_yield, deadline, someone_ran, &unfreezes) < 0) {
        t_spinning = 0; /* no coordinator: the page no longer counts this thread */
        return;
    }
    /* woken at its deadline (the coordinator counted this thread as running before waking
     * it, so `someone_ran` may have fired too): nobody else ran */
    if (revati_now() >= deadline)
        t_quantum_ns = t_quantum_ns < QUANTUM_MAX_NS ? 2 * t_quantum_ns : QUANTUM_MAX_NS;
    else
        t_quantum_ns = QUANTUM_MIN_NS;
}

REVATI_EXPORT int sched_yield(void) {
    if (!revati_recording()) return REAL(sched_yield)();
    int64_t now = revati_real_monotonic_ns();
    t_in_a_row = now - t_last_return_ns < SPIN_GAP_NS ? t_in_a_row + 1 : 0;
    int rc = 0;
    if (t_in_a_row < SPIN_MIN_YIELDS) {
        revati_spin_end(); /* it did something else since its last yield */
        rc = REAL(sched_yield)();
    } else {
        spin_mark();
        if (working() <= 0)
            spin_wait();
        else
            rc = REAL(sched_yield)();
    }
    t_last_return_ns = revati_real_monotonic_ns();
    return rc;
}
