/* Internal interface between the shim's C files (not an ABI: see shim.h for that). */
#ifndef REVATI_SHIM_INTERNAL_H
#define REVATI_SHIM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "clock_page.h"
#include "shim.h"

#define REVATI_EXPORT __attribute__((visibility("default")))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Host cost classes of intercepted calls (DESIGN §3, "Host cost of CUDA calls"). */
enum revati_cost_class { COST_LAUNCH, COST_COPY, COST_EVENT, COST_SYNC, COST_ALLOC, COST_OTHER, COST_N };

struct revati_device_props {
    char name[256];
    int64_t memory_bytes;
    int sm_count, sm_clock_mhz, mem_clock_mhz, bus_width_bits, cc_major, cc_minor;
    int64_t l2_bytes;
    int shared_mem_per_block, shared_mem_per_block_optin, shared_mem_per_sm;
    int regs_per_block, regs_per_sm, max_threads_per_block, max_threads_per_sm, warp_size;
    int max_blocks_per_sm;
    int power_watts, nvlink_links; /* board power limit; NVLink links per device (0: none) */
};

struct revati_config {
    int device_count;                   /* devices this process sees (CUDA_VISIBLE_DEVICES) */
    int node_device_count;              /* devices of the virtual node */
    int physical[REVATI_MAX_DEVICES];   /* a visible ordinal's device on the node */
    struct revati_device_props dev;
    int64_t backed_max;
    int64_t cost_ns[COST_N];
};

extern struct revati_config g_cfg;
extern struct revati_clock_page *g_page;
extern int g_active;     /* registered with a coordinator */
extern int g_detached;   /* lost the coordinator: real time, no records */

void revati_ensure_init(void);
/* The node's device behind a visible ordinal (CUDA_VISIBLE_DEVICES); itself when out of range. */
int revati_physical_device(int ordinal);
void revati_apply_visible_devices(void); /* after the config is read */
/* 16 bytes naming a node device, the same for cudaDeviceProp.uuid, cuDeviceGetUuid and NVML. */
void revati_device_uuid(int physical, unsigned char out[16]);

/* Virtual time now (ns since the run started); never goes back on one thread. */
int64_t revati_now(void);
/* Charge `cls` host cost to the clock; returns the virtual time after it. */
int64_t revati_charge(enum revati_cost_class cls, int64_t enter);

/* Ring: reserve a record (NULL when inactive or dropped), then commit it. */
struct revati_record *revati_ring_reserve(uint64_t *index);
void revati_ring_commit(struct revati_record *r, uint64_t index);
uint32_t revati_thread_index(void);
/* Append a complete record; returns its ring index or UINT64_MAX. */
uint64_t revati_emit(uint8_t type, uint8_t kind, uint16_t fn, int32_t result, int64_t enter,
                     int64_t exit, uint64_t a, uint64_t b, uint64_t c, uint64_t d);

/* Names file: returns the new id. */
uint32_t revati_register_kernel_name(const char *name);
uint32_t revati_register_unsupported_name(const char *name, const char *library);

/* A blocking call: the thread leaves `running` until the coordinator wakes it.
 * Returns 0 with the wake message in *out, or -1 when there is no coordinator (caller falls back). */
int revati_block(uint32_t msg_type, uint8_t sync_kind, uint16_t fn, int64_t a, int64_t b,
                 int64_t value, struct revati_msg *out);

struct pollfd;
/* A wait on fds with a virtual deadline (-1: none): 1 = an fd is ready, 0 = deadline, -1 = no run. */
int revati_block_io(uint16_t fn, int64_t deadline, struct pollfd *fds, unsigned long n);

/* Real libc functions (resolved with dlsym, bypassing the interposers). */
extern int (*real_clock_gettime)(clockid_t, struct timespec *);
extern int (*real_nanosleep)(const struct timespec *, struct timespec *);
extern int (*real_clock_nanosleep)(clockid_t, int, const struct timespec *, struct timespec *);
void revati_resolve_libc(void);

void revati_warn_once(const char *what);
/* Add to this process's share of `running` (no-op without a coordinator). */
void revati_adjust_running(int32_t delta);
void revati_waits_after_fork(void); /* proc_wait.c: only this thread exists in the child */
void revati_pause_begin(void);
void revati_pause_end(void);
#define REVATI_PAUSE_MIN_BYTES (64u << 10)
void revati_memory_init(void);
void revati_clock_virtual_to_timespec(int64_t v, clockid_t clk, struct timespec *ts);
int64_t revati_timespec_to_virtual(const struct timespec *ts, clockid_t clk);

#endif
