/* Operations on the clock page (shim.h). Writers hold the page lock only briefly. */
#ifndef REVATI_CLOCK_PAGE_H
#define REVATI_CLOCK_PAGE_H

#include "shim.h"

struct revati_page_snapshot {
    uint32_t seq;
    int32_t running;
    uint32_t frozen;
    int32_t stalled; /* threads holding off jumps (ring.c) */
    uint64_t generation;
    uint64_t waits_announced;
    int64_t now_ns;
    int64_t flowed_ns; /* virtual ns the clock has flowed (unfrozen) since the run started */
    int64_t flowed_real_ns; /* real ns it flowed */
    double dilation;
    int64_t wake_wait_ns;   /* woken threads' waits for a CPU before they ran (block.c) */
};

/* CLOCK_MONOTONIC in ns, never through the shim's own interposer. */
int64_t revati_real_monotonic_ns(void);

void revati_page_init(struct revati_clock_page *p, double dilation, int64_t epoch_realtime_ns);
int64_t revati_page_now(const struct revati_clock_page *p);
void revati_page_snapshot(const struct revati_clock_page *p, struct revati_page_snapshot *out);
void revati_page_block_enter(struct revati_clock_page *p, struct revati_ring_header *r, int spinner);
void revati_page_adjust(struct revati_clock_page *p, struct revati_ring_header *r, int32_t delta);
void revati_page_spinning(struct revati_clock_page *p, struct revati_ring_header *r, int32_t delta);
void revati_page_stall(struct revati_clock_page *p, struct revati_ring_header *r, int32_t delta);
void revati_page_unstall_dead(struct revati_clock_page *p, struct revati_ring_header *r);
int64_t revati_page_wake(struct revati_clock_page *p, struct revati_ring_header *r, int64_t not_before,
                         int64_t *resume_ns, int spinner);
int revati_page_try_jump(struct revati_clock_page *p, uint32_t expected_seq, int64_t target);
void revati_page_rebase(struct revati_clock_page *p, uint32_t expected_seq);
void revati_page_charge(struct revati_clock_page *p, int64_t ns);
void revati_page_set_dilation(struct revati_clock_page *p, double dilation);
/* Real ns the ring's process has held a share of `running` (kept the clock flowing). */
int64_t revati_ring_running_real(const struct revati_ring_header *r);
int64_t revati_page_mem_reserve(struct revati_clock_page *p, int device, int64_t bytes);

#endif
