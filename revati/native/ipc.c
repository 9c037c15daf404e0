/*
 * Legacy CUDA IPC between the processes of one run: cudaIpcGetMemHandle / OpenMemHandle /
 * CloseMemHandle and the event handles.
 *
 * Exporting a (backed) cudaMalloc allocation moves its bytes into a file in the run folder and
 * maps that file over the allocation, shared; the 64-byte handle names the file. Opening the
 * handle in another process maps the same file into that process's device address space: bytes
 * either side writes the other reads. The importer's mapping takes no device capacity (the
 * exporter's allocation holds it). A virtual (large) allocation has no bytes to share: the
 * importer gets a virtual range of its size; its handle still names it (no file behind the name). A handle cannot be opened by the process that made
 * it (cudaErrorInvalidContext, as on a GPU).
 *
 * An opened event handle is a new event of the importing process: recording and waiting on it
 * work, but the run's timeline does not order one process's work after another's through it.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memory.h"
#include "objects.h"

#define API REVATI_EXPORT cudaError_t
#define MEM_MAGIC 0x52564950u   /* "RVIP" */
#define EVENT_IPC_MAGIC 0x52564945u
#define EVENT_INTERPROCESS 0x04u

struct mem_handle {
    uint32_t magic;
    int32_t pid;
    int32_t device;
    uint32_t backed;
    uint64_t bytes, offset;
    char name[32];
};
/* Both handles travel by value: they must be exactly as large as CUDA's (64 bytes). */
_Static_assert(sizeof(struct mem_handle) == 64, "cudaIpcMemHandle_t is 64 bytes");

struct event_handle {
    uint32_t magic;
    int32_t pid;
    uint64_t event;
    unsigned int flags;
    uint8_t pad[44];
};
_Static_assert(sizeof(struct event_handle) == 64, "cudaIpcEventHandle_t is 64 bytes");

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int flags);

struct shared_range { /* exported (file set) or opened here */
    uint8_t *addr;
    char name[32];
    int opened;
    struct shared_range *next;
};
static struct shared_range *g_ranges;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t g_next_file;

static void file_path(char *out, size_t n, const char *name) {
    const char *dir = getenv("REVATI_RUN_DIR");
    snprintf(out, n, "%s/%s", dir && *dir ? dir : "/dev/shm", name);
}

static struct shared_range *range_locked(const void *addr, int opened) {
    for (struct shared_range *r = g_ranges; r; r = r->next)
        if (r->addr == addr && r->opened == opened) return r;
    return NULL;
}

/* Take the range at addr (exported: opened 0, or opened here: 1) off the list; NULL if none. */
static struct shared_range *take_range(const void *addr, int opened) {
    pthread_mutex_lock(&g_lock);
    struct shared_range *found = NULL;
    for (struct shared_range **link = &g_ranges; *link; link = &(*link)->next) {
        if ((*link)->addr == addr && (*link)->opened == opened) {
            found = *link;
            *link = found->next;
            break;
        }
    }
    pthread_mutex_unlock(&g_lock);
    return found;
}

/* Move the allocation's bytes into a new file mapped shared over it; the file's name in name. */
static int share_allocation(const struct revati_alloc *a, char *name) {
    char path[600];
    snprintf(name, 32, "ipc-%d-%u.mem", (int)getpid(), __atomic_fetch_add(&g_next_file, 1, __ATOMIC_ACQ_REL));
    file_path(path, sizeof path, name);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    size_t len = (a->bytes + 4095) & ~4095ULL;
    int ok = ftruncate(fd, (off_t)len) == 0 && pwrite(fd, a->addr, a->bytes, 0) == (ssize_t)a->bytes &&
             mmap(a->addr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == (void *)a->addr;
    close(fd);
    if (!ok) unlink(path);
    return ok ? 0 : -1;
}

/* A virtual allocation shares no bytes, but its handle still names it (no file behind the name),
 * so that exporter and importers agree on which allocation they map (revati_ipc_range_id). */
static int name_virtual(char *name) {
    snprintf(name, 32, "virt-%d-%u", (int)getpid(), __atomic_fetch_add(&g_next_file, 1, __ATOMIC_ACQ_REL));
    return 0;
}

static cudaError_t get_mem_handle(struct mem_handle *h, void *ptr) {
    struct revati_alloc a;
    if (!h || !revati_device_lookup(ptr, &a)) return cudaErrorInvalidValue;
    memset(h, 0, 64);
    *h = (struct mem_handle){MEM_MAGIC, (int32_t)getpid(), a.device, (uint32_t)a.backed, a.bytes,
                             (uint64_t)((uint8_t *)ptr - a.addr), {0}};
    pthread_mutex_lock(&g_lock);
    struct shared_range *r = range_locked(a.addr, 0);
    cudaError_t rc = cudaSuccess;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r || (a.backed ? share_allocation(&a, r->name) : name_virtual(r->name)) != 0) {
            free(r);
            r = NULL;
            rc = cudaErrorMemoryAllocation;
        } else {
            r->addr = a.addr;
            r->next = g_ranges;
            g_ranges = r;
        }
    }
    if (r) memcpy(h->name, r->name, sizeof h->name);
    pthread_mutex_unlock(&g_lock);
    return rc;
}

static void ipc_record(uint16_t fn, cudaError_t rc, int64_t enter, uint64_t a, uint64_t b, uint64_t c) {
    int64_t exit = revati_charge(COST_OTHER, enter);
    revati_emit(REC_API, 0, fn, rc, enter, exit, a, b, c, 0);
}

API cudaIpcGetMemHandle(struct mem_handle *h, void *ptr) {
    revati_ensure_init();
    int64_t enter = revati_now();
    cudaError_t rc = get_mem_handle(h, ptr);
    ipc_record(FN_cudaIpcGetMemHandle, rc, enter, (uint64_t)(uintptr_t)ptr, rc ? 0 : h->bytes, (uint64_t)getpid());
    return revati_ret(rc);
}

static cudaError_t open_mem_handle(void **out, const struct mem_handle *h) {
    if (!out || !h || h->magic != MEM_MAGIC || h->device < 0 || h->device >= REVATI_MAX_DEVICES) return cudaErrorInvalidValue;
    if (h->pid == (int32_t)getpid()) return cudaErrorInvalidContext;
    char path[600], name[32];
    memcpy(name, h->name, sizeof name);
    name[sizeof name - 1] = 0;
    file_path(path, sizeof path, name);
    int fd = h->backed ? open(path, O_RDWR | O_CLOEXEC) : -1;
    if (h->backed && fd < 0) return cudaErrorInvalidValue; /* the exporter is gone, or another run's */
    int backed;
    uint8_t *base = revati_device_alloc_shared(h->bytes, h->device, fd, 0, 0, &backed);
    if (fd >= 0) close(fd);
    struct shared_range *r = base ? calloc(1, sizeof *r) : NULL;
    if (!r) {
        struct revati_alloc a;
        if (base) revati_device_free(base, &a);
        return cudaErrorMemoryAllocation;
    }
    r->addr = base;
    r->opened = 1;
    memcpy(r->name, name, sizeof name);
    pthread_mutex_lock(&g_lock);
    r->next = g_ranges;
    g_ranges = r;
    pthread_mutex_unlock(&g_lock);
    *out = base + h->offset;
    return cudaSuccess;
}

API cudaIpcOpenMemHandle(void **out, struct mem_handle h, unsigned int flags) {
    (void)flags; /* lazy peer access: every device reaches every other here */
    revati_ensure_init();
    int64_t enter = revati_now();
    cudaError_t rc = open_mem_handle(out, &h);
    ipc_record(FN_cudaIpcOpenMemHandle, rc, enter, rc ? 0 : (uint64_t)(uintptr_t)*out, h.bytes, (uint64_t)h.pid);
    return revati_ret(rc);
}

API cudaIpcCloseMemHandle(void *ptr) {
    revati_ensure_init();
    struct revati_alloc a;
    if (!revati_device_lookup(ptr, &a)) return revati_ret(cudaErrorInvalidValue);
    struct shared_range *found = take_range(a.addr, 1);
    if (!found) return revati_ret(cudaErrorInvalidValue);
    free(found);
    revati_device_free(a.addr, &a);
    int64_t now = revati_now();
    ipc_record(FN_cudaIpcCloseMemHandle, 0, now, (uint64_t)(uintptr_t)ptr, 0, 0);
    return cudaSuccess;
}

/* An allocation freed here stops being shared: its exported name is forgotten and the file
 * holding its bytes unlinked from the run folder (peers that opened it keep their mapping until
 * they close it, as on a GPU). Called by every free. */
void revati_ipc_forget(const void *base) {
    struct shared_range *found = take_range(base, 0);
    if (!found) return;
    if (strncmp(found->name, "ipc-", 4) == 0) {
        char path[600];
        file_path(path, sizeof path, found->name);
        unlink(path);
    }
    free(found);
}

/* ---- events ---------------------------------------------------------------------------------- */

API cudaIpcGetEventHandle(struct event_handle *h, cudaEvent_t e) {
    const struct revati_event *ev = e;
    if (!h || !ev || ev->magic != EVENT_MAGIC) return revati_ret(cudaErrorInvalidResourceHandle);
    if (!(ev->flags & EVENT_INTERPROCESS)) return revati_ret(cudaErrorInvalidResourceHandle);
    memset(h, 0, 64);
    *h = (struct event_handle){EVENT_IPC_MAGIC, (int32_t)getpid(), (uint64_t)(uintptr_t)e, ev->flags, {0}};
    return cudaSuccess;
}

API cudaIpcOpenEventHandle(cudaEvent_t *out, struct event_handle h) {
    if (!out || h.magic != EVENT_IPC_MAGIC) return revati_ret(cudaErrorInvalidValue);
    if (h.pid == (int32_t)getpid()) return revati_ret(cudaErrorInvalidContext);
    return cudaEventCreateWithFlags(out, h.flags);
}

/* The id of the IPC-shared allocation that holds `ptr` (exported here or opened from a peer):
 * a hash of its shared file's name, the same in every process that maps it. 0 and *id, or -1
 * when ptr lies in no shared allocation of this process. */
int revati_ipc_range_id(const void *ptr, uint64_t *id) {
    struct revati_alloc a;
    if (!revati_device_lookup(ptr, &a)) return -1;
    int found = -1;
    pthread_mutex_lock(&g_lock);
    for (struct shared_range *r = g_ranges; r; r = r->next) {
        if (r->addr != a.addr) continue;
        uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
        for (const char *c = r->name; *c && c < r->name + sizeof r->name; c++) h = (h ^ (uint8_t)*c) * 0x100000001b3ULL;
        *id = h | 1ULL << 63; /* apart from the NCCL communicators' ids (pid << 32 | ...) */
        found = 0;
        break;
    }
    pthread_mutex_unlock(&g_lock);
    return found;
}
