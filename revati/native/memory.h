/* Device and pinned-host memory of the shim (docs/design.md §4). */
#ifndef REVATI_MEMORY_H
#define REVATI_MEMORY_H

#include "cuda_types.h"
#include "shim_internal.h"

struct revati_alloc {
    uint8_t *addr;
    uint64_t bytes;
    int device, kind, backed, live;
    int uncounted; /* memory another process owns (an IPC import): no capacity of its own */
};

void *revati_device_alloc(size_t bytes, int device, int kind, int *backed);
/* A device allocation whose bytes, when backed, are the file `fd` from `offset` mapped shared
 * (fd < 0: private bytes, as revati_device_alloc). counted = 0: takes no device capacity. */
void *revati_device_alloc_shared(size_t bytes, int device, int fd, uint64_t offset, int counted,
                                 int *backed);
int revati_device_free(void *ptr, struct revati_alloc *out);
void revati_ipc_forget(const void *base); /* ipc.c: a freed allocation is no longer exported */
/* Hold (commit = 1) or give back (0) the capacity and bytes of the allocation at ptr; its address
 * stays. Given back, it reads zeros. -1: no such allocation, or no capacity left to hold it. */
int revati_device_commit(void *ptr, int commit);
int revati_device_lookup(const void *ptr, struct revati_alloc *out);
int revati_is_device_range(const void *ptr);
int64_t revati_memory_used(int device);
void revati_node_memory(int physical, int64_t *used, int64_t *capacity);
int revati_capacity_take(int device, int64_t bytes);
void *revati_address_reserve(size_t bytes, size_t align);
int revati_device_map(void *addr, uint64_t bytes, int device, int backed);
int revati_device_unmap(void *addr, struct revati_alloc *out);
int64_t revati_memory_capacity(int device);
/* Move bytes as docs/design.md §4 says; *kind gets the direction seen from the addresses. */
int revati_copy_bytes(void *dst, const void *src, size_t n, int *moved, int *kind);
int revati_set_bytes(void *dst, int value, size_t n, int *moved);
int revati_fill(void *dst, uint32_t value, unsigned int size, size_t bytes, int *moved);
void revati_host_track(void *ptr, size_t bytes, int registered);
int revati_host_untrack(void *ptr, size_t *bytes);
int revati_host_lookup(const void *ptr);

#endif
