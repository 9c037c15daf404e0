/*
 * Memory pools shared between the processes of one run (POSIX file-descriptor handles).
 *
 * An export-capable pool keeps its blocks' bytes in a memfd: the page at offset 0 says whose
 * pool it is, each block has its own range after it. cudaMemPoolExportToShareableHandle gives
 * the program a new descriptor of that file (it passes it on, e.g. over a Unix socket);
 * cudaMemPoolImportFromShareableHandle makes an imported pool of it. An exported pointer is
 * 64 bytes naming the block's range; importing maps that range into the importer's device
 * address space, shared: bytes one process writes the other reads. Imported memory takes no
 * capacity of its own (the exporter's block holds it). Large (virtual) blocks have no bytes, in
 * the importer as in the exporter (docs/design.md §4).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memory.h"
#include "mempool.h"

#define API REVATI_EXPORT cudaError_t
#define FILE_MAGIC 0x52564d50u   /* "RVMP" */
#define EXPORT_MAGIC 0x52564550u /* "RVEP" */
#define HEADER_BYTES 4096ULL
enum { HANDLE_POSIX_FD = 1 };

/* The first page of a pool's file. */
struct pool_file_header {
    uint32_t magic;
    uint32_t pool_id;
    int32_t pid;
    int32_t device;
};

/* cudaMemPoolPtrExportData: 64 opaque bytes. */
struct export_data {
    uint32_t magic;
    uint32_t pool_id;
    int32_t pid;
    int32_t device;
    uint64_t offset, size, exporter_addr;
    uint8_t pad[64 - 40];
};
_Static_assert(sizeof(struct export_data) == 64, "cudaMemPoolPtrExportData is 64 bytes");

struct imported_ptr {
    void *addr;
    struct revati_mempool *pool;
    struct imported_ptr *next;
};
static struct imported_ptr *g_imported; /* under g_pool_lock */


int pool_file_open(struct revati_mempool *p) {
    p->fd = memfd_create("revati-mempool", MFD_CLOEXEC);
    if (p->fd < 0) return -1;
    struct pool_file_header h = {FILE_MAGIC, p->id, (int32_t)getpid(), p->device};
    if (ftruncate(p->fd, (off_t)HEADER_BYTES) != 0 || pwrite(p->fd, &h, sizeof h, 0) != (ssize_t)sizeof h) {
        pool_file_close(p);
        return -1;
    }
    p->file_size = HEADER_BYTES;
    return 0;
}

int pool_file_grow(struct revati_mempool *p, uint64_t size, uint64_t *offset) {
    uint64_t len = (size + 4095) & ~4095ULL;
    if (p->fd < 0 || ftruncate(p->fd, (off_t)(p->file_size + len)) != 0) return -1;
    *offset = p->file_size;
    p->file_size += len;
    return 0;
}

void pool_file_release(struct revati_mempool *p, const struct pool_block *b) {
    if (b->file_offset) /* the bytes go, the range stays (offsets are never reused) */
        fallocate(p->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)b->file_offset,
                  (off_t)((b->size + 4095) & ~4095ULL));
}

void pool_file_close(struct revati_mempool *p) {
    if (p->fd >= 0) close(p->fd);
    p->fd = -1;
}

/* ---- exporting ----------------------------------------------------------------------------- */

static cudaError_t export_handle(void *out, void *handle, int type) {
    if (!out) return cudaErrorInvalidValue;
    int64_t enter = revati_now();
    pthread_mutex_lock(&g_pool_lock);
    struct revati_mempool *p = pool_of(handle);
    cudaError_t rc = !p || p->imported ? cudaErrorInvalidValue : cudaSuccess;
    if (!rc && (type != HANDLE_POSIX_FD || !(p->handle_types & HANDLE_POSIX_FD) || p->fd < 0)) rc = cudaErrorInvalidValue;
    int fd = rc ? -1 : dup(p->fd);
    if (!rc && fd < 0) rc = cudaErrorMemoryAllocation;
    uint32_t id = pool_id(p);
    pthread_mutex_unlock(&g_pool_lock);
    if (!rc) *(int *)out = fd;
    pool_api_record(FN_cudaMemPoolExportToShareableHandle, rc, enter, id, (uint64_t)(int64_t)fd, (uint64_t)type, 0);
    return rc;
}
API cudaMemPoolExportToShareableHandle(void *out, void *pool, int type, unsigned int flags) {
    return revati_ret(flags ? cudaErrorInvalidValue : export_handle(out, pool, type));
}

static cudaError_t export_pointer(struct export_data *data, void *ptr) {
    if (!data) return cudaErrorInvalidValue;
    int64_t enter = revati_now();
    pthread_mutex_lock(&g_pool_lock);
    struct pool_block *b = NULL;
    struct revati_mempool *found = pool_owning(ptr, &b);
    cudaError_t rc = found && found->fd >= 0 && b->in_use ? cudaSuccess : cudaErrorInvalidValue;
    if (!rc) {
        memset(data, 0, sizeof *data);
        *data = (struct export_data){EXPORT_MAGIC, found->id, (int32_t)getpid(), found->device,
                                     b->file_offset, b->size, (uint64_t)(uintptr_t)ptr, {0}};
    }
    pthread_mutex_unlock(&g_pool_lock);
    pool_api_record(FN_cudaMemPoolExportPointer, rc, enter, pool_id(found), (uint64_t)(uintptr_t)ptr,
               b ? b->size : 0, 0);
    return rc;
}
API cudaMemPoolExportPointer(struct export_data *data, void *ptr) { return revati_ret(export_pointer(data, ptr)); }

/* ---- importing ----------------------------------------------------------------------------- */

static cudaError_t import_handle(void **out, int fd, int type) {
    revati_ensure_init();
    if (!out || type != HANDLE_POSIX_FD) return cudaErrorInvalidValue;
    struct pool_file_header h;
    if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h || h.magic != FILE_MAGIC) return cudaErrorInvalidValue;
    if (h.device < 0 || h.device >= REVATI_MAX_DEVICES) return cudaErrorInvalidValue;
    int64_t enter = revati_now();
    int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    pthread_mutex_lock(&g_pool_lock);
    struct revati_mempool *p = own >= 0 ? pool_new_locked(h.device, HANDLE_POSIX_FD, 0) : NULL;
    if (p) p->imported = 1, p->fd = own;
    else if (own >= 0) close(own);
    pthread_mutex_unlock(&g_pool_lock);
    *out = p;
    cudaError_t rc = p ? cudaSuccess : cudaErrorMemoryAllocation;
    pool_api_record(FN_cudaMemPoolImportFromShareableHandle, rc, enter, pool_id(p), h.pool_id, (uint64_t)h.pid, 0);
    return rc;
}
API cudaMemPoolImportFromShareableHandle(void **out, void *handle, int type, unsigned int flags) {
    return revati_ret(flags ? cudaErrorInvalidValue : import_handle(out, (int)(intptr_t)handle, type));
}

static int same_file(const struct revati_mempool *p, const struct export_data *d) {
    struct pool_file_header h;
    return pread(p->fd, &h, sizeof h, 0) == (ssize_t)sizeof h && h.pool_id == d->pool_id && h.pid == d->pid;
}

static cudaError_t import_pointer(void **out, void *handle, const struct export_data *d) {
    if (!out || !d || d->magic != EXPORT_MAGIC) return cudaErrorInvalidValue;
    int64_t enter = revati_now();
    pthread_mutex_lock(&g_pool_lock);
    struct revati_mempool *p = pool_of(handle);
    cudaError_t rc = p && p->imported && same_file(p, d) ? cudaSuccess : cudaErrorInvalidValue;
    struct imported_ptr *ip = rc ? NULL : malloc(sizeof *ip);
    void *addr = NULL;
    int backed = 0;
    if (ip) addr = revati_device_alloc_shared(d->size, p->device, p->fd, d->offset, 0, &backed);
    if (!rc && !addr) rc = cudaErrorMemoryAllocation, free(ip);
    if (addr) {
        *ip = (struct imported_ptr){addr, p, g_imported};
        g_imported = ip;
    }
    pthread_mutex_unlock(&g_pool_lock);
    *out = addr;
    pool_api_record(FN_cudaMemPoolImportPointer, rc, enter, pool_id(p), (uint64_t)(uintptr_t)addr, d->size,
               d->exporter_addr);
    return rc;
}
API cudaMemPoolImportPointer(void **out, void *pool, struct export_data *data) { return revati_ret(import_pointer(out, pool, data)); }

int revati_mempool_free_imported(void *ptr) {
    pthread_mutex_lock(&g_pool_lock);
    struct imported_ptr *found = NULL;
    for (struct imported_ptr **link = &g_imported; *link; link = &(*link)->next) {
        if ((*link)->addr == ptr) {
            found = *link;
            *link = found->next;
            break;
        }
    }
    pthread_mutex_unlock(&g_pool_lock);
    if (!found) return 0;
    struct revati_alloc a;
    revati_device_free(ptr, &a);
    free(found);
    return 1;
}
