/*
 * The clock page: one virtual clock per run (docs/design.md §3). Compiled into the shim and into
 * librevati_clock.so, which the coordinator loads with ctypes so both sides use real atomics.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "clock_page.h"

/* ---- the page lock, and a writer killed holding it ----------------------------------------
 * `lock` holds the writer's process id. A process killed inside a write (torchrun's SIGTERM, a
 * SIGKILL: any instruction) would leave the lock taken and `seq` odd, and every thread of the run
 * would spin forever; so a thread that has waited long for either checks whether the holder is
 * gone (no /proc entry, or a zombie) and, if so, ends its write and frees the lock. The fields it
 * was writing may be half-changed: the run goes on with them rather than hang. */
#define LOCK_SPINS_BEFORE_CHECK (1u << 12)
#define READ_SPINS_BEFORE_CHECK (1u << 20)

static uint32_t self_pid(void) { return (uint32_t)syscall(SYS_getpid); }

/* Raw syscalls only: the shim interposes open and read. */
static int holder_gone(uint32_t pid) {
    if (pid == 0) return 0;
    char path[40];
    snprintf(path, sizeof path, "/proc/%u/stat", pid);
    long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT;
    char buf[512];
    long n = syscall(SYS_read, fd, buf, sizeof buf - 1);
    syscall(SYS_close, fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    const char *state = strrchr(buf, ')'); /* "pid (comm) S ...": comm may hold spaces */
    return state && state[1] == ' ' && (state[2] == 'Z' || state[2] == 'X');
}

static __attribute__((noinline, cold)) void take_over_if_gone(struct revati_clock_page *p) {
    uint32_t holder = __atomic_load_n(&p->lock, __ATOMIC_ACQUIRE);
    if (!holder_gone(holder)) return;
    if (!__atomic_compare_exchange_n(&p->lock, &holder, self_pid(), 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return; /* someone else took it over first */
    uint32_t seq = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE);
    if (seq & 1u) __atomic_store_n(&p->seq, seq + 1u, __ATOMIC_RELEASE);
    __atomic_store_n(&p->lock, 0u, __ATOMIC_RELEASE);
}

static void page_lock(struct revati_clock_page *p) {
    uint32_t me = self_pid(), spins = 0, free_ = 0;
    while (!__atomic_compare_exchange_n(&p->lock, &free_, me, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
        free_ = 0;
        if (++spins > 64) syscall(SYS_sched_yield); /* not the shim's own sched_yield */
        if (spins % LOCK_SPINS_BEFORE_CHECK == 0) take_over_if_gone(p);
    }
}

static void page_unlock(struct revati_clock_page *p) { __atomic_store_n(&p->lock, 0u, __ATOMIC_RELEASE); }

/* A reader found `seq` odd: spin, and now and then see whether the writer is gone. */
static void read_wait(const struct revati_clock_page *p, uint32_t *spins) {
    if (++*spins % READ_SPINS_BEFORE_CHECK == 0) take_over_if_gone((struct revati_clock_page *)p);
}

static void write_begin(struct revati_clock_page *p) {
    __atomic_add_fetch(&p->seq, 1u, __ATOMIC_ACQ_REL);
}

static void write_end(struct revati_clock_page *p) { __atomic_add_fetch(&p->seq, 1u, __ATOMIC_RELEASE); }

static int64_t flowed(const struct revati_clock_page *p, int64_t now) {
    int64_t d = now - p->base_real;
    if (d < 0) d = 0;
    return p->dilation == 1.0 ? d : (int64_t)((double)d / p->dilation);
}

/* Virtual time without charge, from fields read under the seqlock. */
static int64_t raw_virtual(const struct revati_clock_page *p, int64_t now) {
    return p->frozen ? p->base_virtual : p->base_virtual + flowed(p, now);
}

void revati_page_init(struct revati_clock_page *p, double dilation, int64_t epoch_realtime_ns) {
    memset(p, 0, sizeof *p);
    p->magic = REVATI_PAGE_MAGIC;
    p->version = REVATI_PROTOCOL_VERSION;
    p->dilation = dilation > 0 ? dilation : 1.0;
    p->epoch_realtime_ns = epoch_realtime_ns;
    p->base_real = revati_real_monotonic_ns();
    p->frozen = 1;
}

int64_t revati_page_now(const struct revati_clock_page *p) {
    uint32_t s1, s2, spins = 0;
    int64_t v;
    do {
        s1 = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE);
        if (s1 & 1u) {
            read_wait(p, &spins);
            continue;
        }
        v = raw_virtual(p, revati_real_monotonic_ns());
        s2 = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE);
    } while ((s1 & 1u) || s1 != s2);
    return v + __atomic_load_n(&p->charge_ns, __ATOMIC_ACQUIRE);
}

void revati_page_snapshot(const struct revati_clock_page *p, struct revati_page_snapshot *out) {
    uint32_t s1, s2, spins = 0;
    do {
        s1 = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE);
        if (s1 & 1u) {
            read_wait(p, &spins);
            continue;
        }
        out->seq = s1;
        out->running = p->running;
        out->frozen = p->frozen;
        out->stalled = __atomic_load_n(&p->stalled, __ATOMIC_ACQUIRE);
        out->generation = p->generation;
        out->waits_announced = p->waits_announced;
        int64_t now = revati_real_monotonic_ns();
        out->now_ns = raw_virtual(p, now);
        out->flowed_ns = p->flowed_ns + (p->frozen ? 0 : flowed(p, now));
        out->flowed_real_ns = p->flowed_real_ns + (p->frozen ? 0 : now - p->base_real);
        out->dilation = p->dilation;
        out->wake_wait_ns = __atomic_load_n(&p->wake_wait_ns, __ATOMIC_ACQUIRE);
        s2 = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE);
    } while ((s1 & 1u) || s1 != s2);
    out->now_ns += __atomic_load_n(&p->charge_ns, __ATOMIC_ACQUIRE);
}

/* The process's share of `running` changes (under the page lock): close or open its interval
 * of holding a share. */
static void ring_adjust(struct revati_ring_header *r, int32_t delta, int32_t spin_delta, int64_t now) {
    if (spin_delta) __atomic_add_fetch(&r->proc_spinning, spin_delta, __ATOMIC_ACQ_REL);
    int32_t before = __atomic_fetch_add(&r->proc_running, delta, __ATOMIC_ACQ_REL);
    int32_t after = before + delta;
    if (before <= 0 && after > 0) __atomic_sub_fetch(&r->running_real_ns, now, __ATOMIC_ACQ_REL);
    if (before > 0 && after <= 0) __atomic_add_fetch(&r->running_real_ns, now, __ATOMIC_ACQ_REL);
}

int64_t revati_ring_running_real(const struct revati_ring_header *r) {
    int64_t sum = __atomic_load_n(&r->running_real_ns, __ATOMIC_ACQUIRE);
    if (__atomic_load_n(&r->proc_running, __ATOMIC_ACQUIRE) > 0) sum += revati_real_monotonic_ns();
    return sum;
}

/* Change `running` by delta and `spinning` by spin_delta (and the process's shares); freeze at 0,
 * unfreeze leaving 0. A spin waiter's own wake (spin_delta > 0) does not count in `unfreezes`:
 * the other spinners watch it for someone who may have written what they wait for. Returns 1 if
 * this change unfroze the clock. */
static int adjust_locked(struct revati_clock_page *p, struct revati_ring_header *r, int32_t delta,
                          int32_t spin_delta, int32_t stall_delta, int announce) {
    int64_t now = revati_real_monotonic_ns();
    int32_t before = p->running;
    int32_t after = before + delta;
    int unfroze = 0;
    write_begin(p);
    if (before > 0 && after <= 0 && !p->frozen) {
        int64_t f = flowed(p, now);
        p->base_virtual += f;
        p->flowed_ns += f;
        p->flowed_real_ns += now - p->base_real;
        p->base_real = now;
        p->frozen = 1;
    } else if (before <= 0 && after > 0 && p->frozen) {
        p->base_real = now;
        p->frozen = 0;
        if (spin_delta <= 0) p->unfreezes++;
        unfroze = 1;
    }
    p->running = after;
    if (spin_delta) __atomic_add_fetch(&p->spinning, spin_delta, __ATOMIC_ACQ_REL);
    if (stall_delta) {
        __atomic_add_fetch(&p->stalled, stall_delta, __ATOMIC_ACQ_REL);
        if (r) __atomic_add_fetch(&r->proc_stalled, stall_delta, __ATOMIC_ACQ_REL);
    }
    if (announce) {
        p->waits_announced++;
        if (r) __atomic_add_fetch(&r->proc_waits_announced, 1, __ATOMIC_ACQ_REL);
    }
    write_end(p);
    if (r) ring_adjust(r, delta, spin_delta, now);
    return unfroze;
}

/* A thread blocks (announced: the coordinator counts WAITs); a spinner leaves `spinning` too. */
void revati_page_block_enter(struct revati_clock_page *p, struct revati_ring_header *r, int spinner) {
    page_lock(p);
    adjust_locked(p, r, -1, spinner ? -1 : 0, 0, 1);
    page_unlock(p);
}

void revati_page_adjust(struct revati_clock_page *p, struct revati_ring_header *r, int32_t delta) {
    page_lock(p);
    adjust_locked(p, r, delta, 0, 0, 0);
    page_unlock(p);
}

/* A thread holds off jumps while out of `running` (the shim's own work, a full ring): +1 leaves
 * `running` and enters `stalled`, -1 the reverse, with the process's shares, in one page write,
 * so the coordinator can take back what a process killed meanwhile held. */
void revati_page_stall(struct revati_clock_page *p, struct revati_ring_header *r, int32_t delta) {
    page_lock(p);
    adjust_locked(p, r, -delta, 0, delta, 0);
    page_unlock(p);
}

/* The coordinator takes back a dead process's share of `stalled`. */
void revati_page_unstall_dead(struct revati_clock_page *p, struct revati_ring_header *r) {
    page_lock(p);
    int32_t share = __atomic_exchange_n(&r->proc_stalled, 0, __ATOMIC_ACQ_REL);
    write_begin(p);
    __atomic_sub_fetch(&p->stalled, share, __ATOMIC_ACQ_REL);
    write_end(p);
    page_unlock(p);
}

/* A running thread starts or stops spinning, or the coordinator takes back a dead process's
 * share (delta < 0 with r). */
void revati_page_spinning(struct revati_clock_page *p, struct revati_ring_header *r, int32_t delta) {
    __atomic_add_fetch(&p->spinning, delta, __ATOMIC_ACQ_REL);
    if (r) __atomic_add_fetch(&r->proc_spinning, delta, __ATOMIC_ACQ_REL);
}

/* The coordinator wakes a blocked thread: if virtual time has reached `not_before`, count the
 * thread as running again and store the time it resumes at in *resume_ns, read under the same
 * lock, so a woken thread's re-base cannot slip between the coordinator's look at the clock and
 * this wake (it would hand the thread a time the clock then takes back). Returns -1 if the time
 * has not come (the clock was re-based since the coordinator looked: ask again later); else the
 * page's sequence number right after, if this unfroze the clock (the woken thread is the only one
 * running), or 0; the thread passes it to revati_page_rebase so its wake-up latency is not
 * program time. A spin waiter (`spinner`) resumes counted in `spinning` as well. */
int64_t revati_page_wake(struct revati_clock_page *p, struct revati_ring_header *r, int64_t not_before,
                         int64_t *resume_ns, int spinner) {
    page_lock(p);
    int64_t now = raw_virtual(p, revati_real_monotonic_ns()) + __atomic_load_n(&p->charge_ns, __ATOMIC_ACQUIRE);
    if (now < not_before) {
        page_unlock(p);
        return -1;
    }
    int unfroze = adjust_locked(p, r, +1, spinner ? 1 : 0, 0, 0);
    uint32_t seq = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE);
    page_unlock(p);
    *resume_ns = now;
    return unfroze && seq ? (int64_t)seq : 0;
}

int revati_page_try_jump(struct revati_clock_page *p, uint32_t expected_seq, int64_t target) {
    int ok = 0;
    page_lock(p);
    if (p->seq == expected_seq && p->running <= 0 && p->frozen) {
        int64_t charge = __atomic_load_n(&p->charge_ns, __ATOMIC_ACQUIRE);
        if (target - charge > p->base_virtual) {
            write_begin(p);
            p->base_virtual = target - charge;
            p->generation++;
            write_end(p);
        }
        ok = 1;
    }
    page_unlock(p);
    return ok;
}

/* A new host time dilation from now on: the time flowed so far is kept at the old one (the clock
 * never moves back), the rest flows at the new. */
void revati_page_set_dilation(struct revati_clock_page *p, double dilation) {
    if (!(dilation > 0)) return;
    page_lock(p);
    if (dilation != p->dilation) {
        write_begin(p);
        if (!p->frozen) {
            int64_t now = revati_real_monotonic_ns();
            int64_t f = flowed(p, now);
            p->base_virtual += f;
            p->flowed_ns += f;
            p->flowed_real_ns += now - p->base_real;
            p->base_real = now;
        }
        p->dilation = dilation;
        write_end(p);
    }
    page_unlock(p);
}

void revati_page_charge(struct revati_clock_page *p, int64_t ns) {
    __atomic_add_fetch(&p->charge_ns, ns, __ATOMIC_ACQ_REL);
}

int64_t revati_page_mem_reserve(struct revati_clock_page *p, int device, int64_t bytes) {
    if (device < 0 || device >= REVATI_MAX_DEVICES) return -1;
    int64_t used = __atomic_add_fetch(&p->mem_used[device], bytes, __ATOMIC_ACQ_REL);
    if (bytes > 0 && used > p->mem_capacity[device]) {
        __atomic_sub_fetch(&p->mem_used[device], bytes, __ATOMIC_ACQ_REL);
        return -1;
    }
    return used;
}

/* A woken thread resumes: if nothing happened on the page since the coordinator counted it as
 * running again (seq unchanged), the wake-up latency is not the program's time: re-base. */
void revati_page_rebase(struct revati_clock_page *p, uint32_t expected_seq) {
    if (__atomic_load_n(&p->seq, __ATOMIC_ACQUIRE) != expected_seq) return;
    page_lock(p);
    if (p->seq == expected_seq && !p->frozen) {
        write_begin(p);
        p->base_real = revati_real_monotonic_ns();
        write_end(p);
    }
    page_unlock(p);
}
