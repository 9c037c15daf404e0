/*
 * The driver's virtual-memory management (cuMemCreate / AddressReserve / Map / SetAccess /
 * export and import), the path of PyTorch's expandable segments and vLLM's sleep mode.
 * A handle holds capacity of its device (so an oversubscribed cuMemCreate fails with
 * CUDA_ERROR_OUT_OF_MEMORY); a mapping makes a piece of a reserved range an allocation of the
 * shim's memory model, backed by real bytes when the handle is small (docs/design.md §4). A handle
 * mapped at two addresses does not share its bytes between them.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "driver.h"
#include "memory.h"

#define HANDLE_MAGIC 0x564d4d48u /* "VMMH" */
#define GRANULARITY (2ULL << 20)
enum { HANDLE_TYPE_POSIX_FD = 1, HANDLE_TYPE_FABRIC = 8 };
enum { LOCATION_DEVICE = 1, ALLOCATION_PINNED = 1 };

struct vmm_handle {
    uint32_t magic;
    int device;
    uint64_t bytes;
    int refs;     /* the creator's reference plus one per mapping */
    int imported; /* another process holds its capacity */
    int handle_types;
};

/* What an exported handle carries to another process. */
struct vmm_export {
    uint32_t magic;
    int32_t device;
    uint64_t bytes;
};

struct vmm_mapping {
    uint8_t *addr;
    uint64_t bytes;
    struct vmm_handle *handle;
    struct vmm_mapping *next;
};

static pthread_mutex_t g_vmm_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vmm_mapping *g_mappings;

static struct vmm_handle *handle_of(CUmemGenericAllocationHandle h) {
    struct vmm_handle *v = (struct vmm_handle *)(uintptr_t)h;
    return v && v->magic == HANDLE_MAGIC ? v : NULL;
}

static void handle_put(struct vmm_handle *v) {
    if (__atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL) > 0) return;
    if (!v->imported) revati_capacity_take(v->device, -(int64_t)v->bytes);
    v->magic = 0;
    free(v);
}

static CUresult api_record(uint16_t fn, CUresult rc, uint64_t a, uint64_t b, uint64_t c) {
    int64_t enter = revati_now();
    int64_t exit = revati_charge(COST_ALLOC, enter);
    revati_emit(REC_API, 0, fn, rc, enter, exit, a, b, c, 0);
    return rc;
}

static struct vmm_handle *handle_new(int device, uint64_t bytes, int imported, int types) {
    struct vmm_handle *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    *v = (struct vmm_handle){HANDLE_MAGIC, device, bytes, 1, imported, types};
    return v;
}

DRV cuMemCreate(CUmemGenericAllocationHandle *out, size_t bytes, const struct CUmemAllocationProp *prop,
                unsigned long long flags) {
    (void)flags;
    revati_ensure_init();
    if (!out || !prop || !bytes || bytes % GRANULARITY) return CUDA_ERROR_INVALID_VALUE;
    int device = prop->location.id;
    if (prop->location.type != LOCATION_DEVICE || device < 0 || device >= g_cfg.device_count)
        return CUDA_ERROR_INVALID_DEVICE;
    if (!revati_capacity_take(device, (int64_t)bytes)) return api_record(FN_cuMemCreate, CUDA_ERROR_OUT_OF_MEMORY, 0, bytes, (uint64_t)device);
    struct vmm_handle *v = handle_new(device, bytes, 0, prop->requestedHandleTypes);
    if (!v) {
        revati_capacity_take(device, -(int64_t)bytes);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *out = (CUmemGenericAllocationHandle)(uintptr_t)v;
    return api_record(FN_cuMemCreate, CUDA_SUCCESS, *out, bytes, (uint64_t)device);
}

DRV cuMemRelease(CUmemGenericAllocationHandle h) {
    struct vmm_handle *v = handle_of(h);
    if (!v) return CUDA_ERROR_INVALID_VALUE;
    handle_put(v);
    return api_record(FN_cuMemRelease, CUDA_SUCCESS, h, 0, 0);
}

DRV cuMemAddressReserve(CUdeviceptr *ptr, size_t bytes, size_t align, CUdeviceptr hint, unsigned long long flags) {
    (void)hint; (void)flags;
    revati_ensure_init();
    if (!ptr || !bytes) return CUDA_ERROR_INVALID_VALUE;
    void *p = revati_address_reserve(bytes, align > GRANULARITY ? align : GRANULARITY);
    *ptr = (CUdeviceptr)(uintptr_t)p;
    return p ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

DRV cuMemAddressFree(CUdeviceptr ptr, size_t bytes) {
    (void)bytes;
    return revati_is_device_range((void *)(uintptr_t)ptr) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

DRV cuMemMap(CUdeviceptr ptr, size_t bytes, size_t offset, CUmemGenericAllocationHandle h, unsigned long long flags) {
    (void)flags;
    struct vmm_handle *v = handle_of(h);
    uint8_t *addr = (uint8_t *)(uintptr_t)ptr;
    if (!v || !bytes || offset + bytes > v->bytes) return CUDA_ERROR_INVALID_VALUE;
    struct vmm_mapping *m = calloc(1, sizeof *m);
    if (!m) return CUDA_ERROR_OUT_OF_MEMORY;
    int backed = (int64_t)v->bytes <= g_cfg.backed_max;
    if (revati_device_map(addr, bytes, v->device, backed) != 0) {
        free(m);
        return CUDA_ERROR_INVALID_VALUE;
    }
    __atomic_add_fetch(&v->refs, 1, __ATOMIC_ACQ_REL);
    *m = (struct vmm_mapping){addr, bytes, v, NULL};
    pthread_mutex_lock(&g_vmm_lock);
    m->next = g_mappings;
    g_mappings = m;
    pthread_mutex_unlock(&g_vmm_lock);
    int64_t enter = revati_now();
    int64_t exit = revati_charge(COST_ALLOC, enter);
    revati_emit(REC_ALLOC, (uint8_t)(ALLOC_DEVICE | (backed ? REC_F_BACKED : 0)), FN_cuMemMap, 0, enter, exit, ptr,
                bytes, (uint64_t)revati_physical_device(v->device), 0);
    return CUDA_SUCCESS;
}

/* The mapping that starts at addr, taken off the list (NULL if none). */
static struct vmm_mapping *take_mapping(const uint8_t *addr) {
    pthread_mutex_lock(&g_vmm_lock);
    struct vmm_mapping *found = NULL;
    for (struct vmm_mapping **pp = &g_mappings; *pp; pp = &(*pp)->next) {
        if ((*pp)->addr == addr) {
            found = *pp;
            *pp = found->next;
            break;
        }
    }
    pthread_mutex_unlock(&g_vmm_lock);
    return found;
}

DRV cuMemUnmap(CUdeviceptr ptr, size_t bytes) {
    uint8_t *addr = (uint8_t *)(uintptr_t)ptr, *end = addr + bytes;
    int unmapped = 0;
    while (addr < end) { /* a range may cover several mappings, back to back */
        struct vmm_mapping *m = take_mapping(addr);
        if (!m) break;
        struct revati_alloc a;
        revati_device_unmap(m->addr, &a);
        int64_t now = revati_now();
        revati_emit(REC_FREE, 0, FN_cuMemUnmap, 0, now, now, (uint64_t)(uintptr_t)m->addr, 0, 0, 0);
        addr += m->bytes;
        handle_put(m->handle);
        free(m);
        unmapped++;
    }
    return unmapped ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

DRV cuMemSetAccess(CUdeviceptr ptr, size_t bytes, const struct CUmemAccessDesc *desc, size_t count) {
    (void)bytes;
    if (!desc || !count) return CUDA_ERROR_INVALID_VALUE;
    struct revati_alloc a;
    return revati_device_lookup((void *)(uintptr_t)ptr, &a) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

DRV cuMemGetAccess(unsigned long long *flags, const struct CUmemLocation *loc, CUdeviceptr ptr) {
    (void)loc;
    struct revati_alloc a;
    if (!flags) return CUDA_ERROR_INVALID_VALUE;
    *flags = revati_device_lookup((void *)(uintptr_t)ptr, &a) ? 3 : 0; /* read-write */
    return CUDA_SUCCESS;
}

DRV cuMemGetAllocationGranularity(size_t *granularity, const struct CUmemAllocationProp *prop, int option) {
    (void)option;
    if (!granularity || !prop) return CUDA_ERROR_INVALID_VALUE;
    *granularity = GRANULARITY;
    return CUDA_SUCCESS;
}

DRV cuMemGetAllocationPropertiesFromHandle(struct CUmemAllocationProp *prop, CUmemGenericAllocationHandle h) {
    struct vmm_handle *v = handle_of(h);
    if (!prop || !v) return CUDA_ERROR_INVALID_VALUE;
    memset(prop, 0, sizeof *prop);
    prop->type = ALLOCATION_PINNED;
    prop->requestedHandleTypes = v->handle_types;
    prop->location.type = LOCATION_DEVICE;
    prop->location.id = v->device;
    return CUDA_SUCCESS;
}

DRV cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *out, void *addr) {
    if (!out) return CUDA_ERROR_INVALID_VALUE;
    const uint8_t *p = addr;
    CUresult rc = CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_vmm_lock);
    for (struct vmm_mapping *m = g_mappings; m; m = m->next) {
        if (p >= m->addr && p < m->addr + m->bytes) {
            __atomic_add_fetch(&m->handle->refs, 1, __ATOMIC_ACQ_REL);
            *out = (CUmemGenericAllocationHandle)(uintptr_t)m->handle;
            rc = CUDA_SUCCESS;
            break;
        }
    }
    pthread_mutex_unlock(&g_vmm_lock);
    return rc;
}

/* ---- sharing a handle with another process ------------------------------------------------- */

DRV cuMemExportToShareableHandle(void *out, CUmemGenericAllocationHandle h, int type, unsigned long long flags) {
    (void)flags;
    struct vmm_handle *v = handle_of(h);
    if (!out || !v) return CUDA_ERROR_INVALID_VALUE;
    struct vmm_export e = {HANDLE_MAGIC, v->device, v->bytes};
    if (type == HANDLE_TYPE_FABRIC) { /* a 64-byte opaque handle */
        memset(out, 0, 64);
        memcpy(out, &e, sizeof e);
        return CUDA_SUCCESS;
    }
    if (type != HANDLE_TYPE_POSIX_FD) return CUDA_ERROR_NOT_SUPPORTED;
    int fd = memfd_create("revati-vmm-handle", MFD_CLOEXEC);
    if (fd < 0) return CUDA_ERROR_OUT_OF_MEMORY;
    if (pwrite(fd, &e, sizeof e, 0) != (ssize_t)sizeof e) {
        close(fd);
        return CUDA_ERROR_UNKNOWN;
    }
    *(int *)out = fd;
    return CUDA_SUCCESS;
}

DRV cuMemImportFromShareableHandle(CUmemGenericAllocationHandle *out, void *os_handle, int type) {
    struct vmm_export e = {0};
    if (!out) return CUDA_ERROR_INVALID_VALUE;
    if (type == HANDLE_TYPE_FABRIC) {
        if (!os_handle) return CUDA_ERROR_INVALID_VALUE;
        memcpy(&e, os_handle, sizeof e);
    } else if (type == HANDLE_TYPE_POSIX_FD) {
        int fd = (int)(intptr_t)os_handle;
        if (pread(fd, &e, sizeof e, 0) != (ssize_t)sizeof e) return CUDA_ERROR_INVALID_VALUE;
    } else {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (e.magic != HANDLE_MAGIC || e.device < 0 || e.device >= REVATI_MAX_DEVICES) return CUDA_ERROR_INVALID_VALUE;
    struct vmm_handle *v = handle_new(e.device, e.bytes, 1, type);
    if (!v) return CUDA_ERROR_OUT_OF_MEMORY;
    *out = (CUmemGenericAllocationHandle)(uintptr_t)v;
    return CUDA_SUCCESS;
}
