/*
 * This process's records: the ring (multi-producer, the coordinator the one consumer), the
 * names file (kernel, thread and unsupported-call names), thread numbering, and `running`
 * while the shim waits for ring space or does its own work. The hot path
 * (revati_ring_reserve/commit, revati_thread_index) takes no lock and makes no syscall.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core.h"

struct revati_ring_header *g_ring;
static struct revati_record *g_records;
static int g_names_fd = -1;
static uint32_t g_next_thread = 1;
static uint32_t g_next_kernel = 1;
static uint32_t g_next_unsupported = 1;
static __thread uint32_t t_index;
/* A fork child's names below these ids are its parent's, written before the fork to the
 * parent's names file: the child's file says so in its `I` line. */
static struct { int pid; uint32_t serial, kernels, unsupported; } g_inherited;

/* ---- files --------------------------------------------------------------------------------- */

static void *map_new_file(const char *path, size_t size) {
    /* touched up front (MAP_POPULATE): no page faults on the launch path */
    int fd = open(path, O_RDWR | O_CLOEXEC | O_CREAT | O_EXCL, 0600);
    if (fd < 0) return NULL;
    if (ftruncate(fd, (off_t)size) < 0) {
        close(fd);
        return NULL;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

void revati_names_write(const char *line, size_t n) {
    if (g_names_fd < 0) return;
    ssize_t w = write(g_names_fd, line, n);
    (void)w;
}

static void write_process_line(void) {
    char buf[8192];
    int n = snprintf(buf, sizeof buf, "P\t%d\t", (int)getppid());
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t r = REAL(read)(fd, buf + n, sizeof buf - n - 2);
        close(fd);
        for (ssize_t i = 0; i < r; i++)
            if (buf[n + i] == 0) buf[n + i] = '\x1f';
        if (r > 0) n += (int)r;
    }
    buf[n++] = '\n';
    revati_names_write(buf, (size_t)n);
}

int revati_ring_open(int inherited) {
    char path[600];
    snprintf(path, sizeof path, "%s/ring-%d-%u.bin", g_run_dir, (int)getpid(), g_serial);
    size_t size = sizeof(struct revati_ring_header) + (size_t)RING_CAPACITY * sizeof(struct revati_record);
    struct revati_ring_header *ring = map_new_file(path, size);
    if (!ring) return -1;
    ring->capacity = RING_CAPACITY;
    ring->record_size = sizeof(struct revati_record);
    ring->pid = (int32_t)getpid();
    ring->parent_pid = (int32_t)getppid();
    ring->proc_running = inherited ? 1 : 0;
    ring->running_real_ns = inherited ? -revati_real_monotonic_ns() : 0;
    ring->version = REVATI_PROTOCOL_VERSION;
    __atomic_store_n(&ring->magic, REVATI_RING_MAGIC, __ATOMIC_RELEASE);
    g_records = (struct revati_record *)(ring + 1);
    g_ring = ring;
    snprintf(path, sizeof path, "%s/names-%d-%u.txt", g_run_dir, (int)getpid(), g_serial);
    g_names_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    write_process_line();
    if (g_inherited.pid) {
        char line[96];
        int n = snprintf(line, sizeof line, "I\t%d\t%u\t%u\t%u\n", g_inherited.pid, g_inherited.serial,
                         g_inherited.kernels, g_inherited.unsupported);
        revati_names_write(line, (size_t)n);
        g_inherited.pid = 0;
    }
    return 0;
}

void revati_ring_after_fork(void) {
    if (g_names_fd >= 0) close(g_names_fd);
    g_names_fd = -1;
    g_inherited.pid = (int)getppid();
    g_inherited.serial = g_serial;
    g_inherited.kernels = __atomic_load_n(&g_next_kernel, __ATOMIC_ACQUIRE);
    g_inherited.unsupported = __atomic_load_n(&g_next_unsupported, __ATOMIC_ACQUIRE);
    t_index = 0;
    g_next_thread = 1;
}

/* ---- `running` ----------------------------------------------------------------------------- */

void revati_adjust_running(int32_t delta) {
    if (revati_recording()) revati_page_adjust(g_page, g_ring, delta);
}

/* The shim's own work (moving emulated bytes) is not the program's: leave `running` while doing
 * it, and hold off jumps (`stalled`) so no deadline is passed meanwhile. */
void revati_pause_begin(void) {
    if (revati_recording()) revati_page_stall(g_page, g_ring, +1);
}

void revati_pause_end(void) {
    if (revati_recording()) revati_page_stall(g_page, g_ring, -1);
}

/* ---- ring ---------------------------------------------------------------------------------- */

static void ring_stall_wait(void) {
    /* The ring is full: leave `running` while we wait so the engine's pace never leaks into
     * virtual time; the coordinator does not jump while anyone is stalled. */
    revati_page_stall(g_page, g_ring, +1);
    struct timespec ts = {0, 200000};
    REAL(nanosleep)(&ts, NULL);
    revati_page_stall(g_page, g_ring, -1);
}

/* The ring is full: wait for the coordinator (outside `running`) until slot `head` is free.
 * Returns 0 when there is room, -1 after ~5 s without progress (the caller drops the record). */
static __attribute__((noinline, cold)) int ring_wait_room(struct revati_ring_header *h, uint64_t head) {
    for (int waits = 0; head - __atomic_load_n(&h->tail, __ATOMIC_ACQUIRE) >= RING_CAPACITY; waits++) {
        if (waits % 250 == 0) { /* now and every ~50 ms: has the engine gone? */
            revati_check_coordinator();
            if (!revati_recording()) return -1;
        }
        if (waits == 25000) { /* ~5 s without progress: drop rather than block forever */
            __atomic_add_fetch(&h->dropped, 1, __ATOMIC_RELAXED);
            return -1;
        }
        ring_stall_wait();
    }
    return 0;
}

/* On every launch: no lock, no syscall, one CAS (producers are this process's threads). */
struct revati_record *revati_ring_reserve(uint64_t *index) {
    if (UNLIKELY(!revati_recording())) return NULL;
    struct revati_ring_header *h = g_ring;
    uint64_t head = __atomic_load_n(&h->head, __ATOMIC_RELAXED);
    for (;;) {
        /* acquire: the coordinator has read the slot we may overwrite */
        if (UNLIKELY(head - __atomic_load_n(&h->tail, __ATOMIC_ACQUIRE) >= RING_CAPACITY)) {
            if (ring_wait_room(h, head) < 0) return NULL;
            head = __atomic_load_n(&h->head, __ATOMIC_RELAXED);
            continue;
        }
        if (LIKELY(__atomic_compare_exchange_n(&h->head, &head, head + 1, 1, __ATOMIC_ACQ_REL,
                                               __ATOMIC_RELAXED)))
            break;
    }
    *index = head;
    return &g_records[head & (RING_CAPACITY - 1)];
}

void revati_ring_commit(struct revati_record *r, uint64_t index) {
    __atomic_store_n(&r->commit, (uint32_t)(index + 1), __ATOMIC_RELEASE);
}

/* A thread's first record: number it, name it in the names file, announce it in the ring. */
static __attribute__((noinline, cold)) uint32_t thread_index_first(void) {
    t_index = __atomic_fetch_add(&g_next_thread, 1, __ATOMIC_ACQ_REL);
    char name[32] = "", line[96];
    pthread_getname_np(pthread_self(), name, sizeof name);
    int n = snprintf(line, sizeof line, "T\t%u\t%ld\t%s\n", t_index, (long)syscall(SYS_gettid), name);
    revati_names_write(line, (size_t)n);
    int64_t now = revati_now();
    revati_emit(REC_THREAD, 0, 0, 0, now, now, (uint64_t)syscall(SYS_gettid), 0, 0, 0);
    return t_index;
}

uint32_t revati_thread_index(void) {
    if (LIKELY(t_index)) return t_index;
    return thread_index_first();
}

uint64_t revati_emit(uint8_t type, uint8_t kind, uint16_t fn, int32_t result, int64_t enter,
                     int64_t exit, uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    uint64_t idx;
    uint32_t thread = revati_thread_index();
    struct revati_record *r = revati_ring_reserve(&idx);
    if (!r) return UINT64_MAX;
    r->type = type;
    r->kind = kind;
    r->fn = fn;
    r->thread = thread;
    r->result = result;
    r->enter_ns = enter;
    r->exit_ns = exit;
    r->p.u[0] = a;
    r->p.u[1] = b;
    r->p.u[2] = c;
    r->p.u[3] = d;
    revati_ring_commit(r, idx);
    return idx;
}

/* ---- names --------------------------------------------------------------------------------- */

uint32_t revati_register_kernel_name(const char *name) {
    uint32_t id = __atomic_fetch_add(&g_next_kernel, 1, __ATOMIC_ACQ_REL);
    size_t len = strlen(name);
    char *line = malloc(len + 32);
    if (!line) return id;
    int n = snprintf(line, len + 32, "K\t%u\t%s\n", id, name);
    revati_names_write(line, (size_t)n);
    free(line);
    return id;
}

uint32_t revati_register_unsupported_name(const char *name, const char *library) {
    uint32_t id = __atomic_fetch_add(&g_next_unsupported, 1, __ATOMIC_ACQ_REL);
    char line[512];
    int n = snprintf(line, sizeof line, "U\t%u\t%s\t%s\n", id, name, library);
    revati_names_write(line, (size_t)n);
    return id;
}

/* Record a call of an unemulated function of `library` and answer `code`, its library's "not
 * supported" (the generated stubs call this: 801 for the runtime and the driver, 3 for NVML,
 * 15 for cuBLAS/cuBLASLt). */
REVATI_EXPORT int revati_unsupported_in(const char *name, const char *library, int code) {
    revati_ensure_init();
    static __thread const char *last_name;
    static __thread uint32_t last_id;
    uint32_t id = last_name == name ? last_id : 0;
    if (!id) {
        id = revati_register_unsupported_name(name, library);
        last_name = name;
        last_id = id;
    }
    int64_t now = revati_now();
    revati_emit(REC_UNSUPPORTED, 0, 0, code, now, now, id, 0, 0, 0);
    return code;
}

/* The runtime's stubs: cudaErrorNotSupported. */
REVATI_EXPORT int revati_unsupported_call(const char *name) {
    return revati_unsupported_in(name, "libcudart.so.13", cudaErrorNotSupported);
}
