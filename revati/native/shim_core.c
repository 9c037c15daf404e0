/*
 * The shim's core: joining a run, the ring, the names file, blocking calls and the fallback.
 * The hot path (revati_ring_reserve/commit, revati_now) takes no lock and makes no syscall.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "shim_internal.h"

#define RING_CAPACITY (1u << 18)

struct revati_config g_cfg;
struct revati_clock_page *g_page;
int g_active;
int g_detached;

static struct revati_ring_header *g_ring;
static struct revati_record *g_records;
static int g_names_fd = -1;
static int g_reg_fd = -1;
static uint32_t g_serial;
static char g_run_dir[512];
static uint32_t g_next_thread = 1;
static uint32_t g_next_kernel = 1;
static uint32_t g_next_unsupported = 1;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_thread_key;

struct thread_start;
static pthread_mutex_t g_join_lock = PTHREAD_MUTEX_INITIALIZER;
static struct thread_start *g_started;
static __thread struct thread_start *t_start;
static __thread uint32_t t_index;
static __thread int t_conn = -1;
static __thread int64_t t_last_v;

int (*real_clock_gettime)(clockid_t, struct timespec *);
int (*real_nanosleep)(const struct timespec *, struct timespec *);
int (*real_clock_nanosleep)(clockid_t, int, const struct timespec *, struct timespec *);

void revati_resolve_libc(void) {
    if (real_clock_gettime) return;
    real_nanosleep = dlsym(RTLD_NEXT, "nanosleep");
    real_clock_nanosleep = dlsym(RTLD_NEXT, "clock_nanosleep");
    real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
}

static int64_t libc_monotonic_ns(void) {
    struct timespec ts;
    if (UNLIKELY(!real_clock_gettime)) revati_resolve_libc();
    real_clock_gettime(CLOCK_MONOTONIC, &ts);
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

static void tsc_recalibrate(uint64_t now_tsc) {
    if (__atomic_exchange_n(&g_cal_busy, 1, __ATOMIC_ACQUIRE)) return;
    struct tsc_cal *old = __atomic_load_n(&g_cal, __ATOMIC_ACQUIRE), *c = malloc(sizeof *c);
    if (c) {
        int64_t mono = libc_monotonic_ns();
        uint64_t tsc = __rdtsc();
        if (!old) {
            struct timespec pause = {0, 200000};
            if (!real_nanosleep) revati_resolve_libc();
            real_nanosleep(&pause, NULL);
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
    (void)now_tsc;
    __atomic_store_n(&g_cal_busy, 0, __ATOMIC_RELEASE);
}

static inline int64_t tsc_to_ns(const struct tsc_cal *c, uint64_t t) {
    return c->mono0 + (int64_t)((double)(int64_t)(t - c->tsc0) * c->scale);
}

static __attribute__((noinline, cold)) int64_t tsc_ns_recalibrated(uint64_t t) {
    tsc_recalibrate(t);
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

void revati_warn_once(const char *what) {
    static int warned;
    if (__atomic_exchange_n(&warned, 1, __ATOMIC_ACQ_REL)) return;
    fprintf(stderr, "revati: %s; the program continues in real time and is no longer traced\n", what);
}

/* ---- virtual time -------------------------------------------------------------------------- */

int64_t revati_now(void) {
    if (UNLIKELY(!g_page)) return revati_real_monotonic_ns();
    int64_t v = revati_page_now(g_page);
    if (UNLIKELY(v < t_last_v)) return t_last_v;
    t_last_v = v;
    return v;
}

int64_t revati_charge(enum revati_cost_class cls, int64_t enter) {
    int64_t cost = g_cfg.cost_ns[cls];
    if (!g_page || g_detached || cost <= 0) return enter;
    revati_page_charge(g_page, cost);
    return revati_now();
}

/* ---- config -------------------------------------------------------------------------------- */

static void config_defaults(void) {
    struct revati_device_props *d = &g_cfg.dev;
    g_cfg.device_count = 1;
    g_cfg.backed_max = 4 << 20;
    snprintf(d->name, sizeof d->name, "NVIDIA H100 80GB HBM3");
    d->memory_bytes = 85520809984LL;
    d->sm_count = 132; d->sm_clock_mhz = 1980; d->mem_clock_mhz = 2619; d->bus_width_bits = 5120;
    d->cc_major = 9; d->cc_minor = 0; d->l2_bytes = 52428800;
    d->shared_mem_per_block = 49152; d->shared_mem_per_block_optin = 232448;
    d->shared_mem_per_sm = 233472; d->regs_per_block = 65536; d->regs_per_sm = 65536;
    d->max_threads_per_block = 1024; d->max_threads_per_sm = 2048; d->warp_size = 32;
    d->max_blocks_per_sm = 32;
    d->power_watts = 700; d->nvlink_links = 18;
}

static void config_set(const char *k, const char *v) {
    struct revati_device_props *d = &g_cfg.dev;
    long long n = atoll(v);
#define INT_KEY(key, field) else if (!strcmp(k, key)) field = n
    if (!strcmp(k, "name")) snprintf(d->name, sizeof d->name, "%s", v);
    INT_KEY("device_count", g_cfg.device_count);
    INT_KEY("backed_max", g_cfg.backed_max);
    INT_KEY("memory_bytes", d->memory_bytes);
    INT_KEY("sm_count", d->sm_count);
    INT_KEY("sm_clock_mhz", d->sm_clock_mhz);
    INT_KEY("mem_clock_mhz", d->mem_clock_mhz);
    INT_KEY("memory_bus_width_bits", d->bus_width_bits);
    INT_KEY("cc_major", d->cc_major);
    INT_KEY("cc_minor", d->cc_minor);
    INT_KEY("l2_bytes", d->l2_bytes);
    INT_KEY("shared_mem_per_block", d->shared_mem_per_block);
    INT_KEY("shared_mem_per_block_optin", d->shared_mem_per_block_optin);
    INT_KEY("shared_mem_per_sm", d->shared_mem_per_sm);
    INT_KEY("regs_per_block", d->regs_per_block);
    INT_KEY("regs_per_sm", d->regs_per_sm);
    INT_KEY("max_threads_per_block", d->max_threads_per_block);
    INT_KEY("max_threads_per_sm", d->max_threads_per_sm);
    INT_KEY("warp_size", d->warp_size);
    INT_KEY("max_blocks_per_sm", d->max_blocks_per_sm);
    INT_KEY("power_watts", d->power_watts);
    INT_KEY("nvlink_links", d->nvlink_links);
    INT_KEY("cost_launch_ns", g_cfg.cost_ns[COST_LAUNCH]);
    INT_KEY("cost_copy_ns", g_cfg.cost_ns[COST_COPY]);
    INT_KEY("cost_event_ns", g_cfg.cost_ns[COST_EVENT]);
    INT_KEY("cost_sync_ns", g_cfg.cost_ns[COST_SYNC]);
    INT_KEY("cost_alloc_ns", g_cfg.cost_ns[COST_ALLOC]);
    INT_KEY("cost_other_ns", g_cfg.cost_ns[COST_OTHER]);
#undef INT_KEY
}

static void config_load(void) {
    char path[600], line[512];
    snprintf(path, sizeof path, "%s/config.txt", g_run_dir);
    FILE *f = fopen(path, "re");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        char *eq = strchr(line, '=');
        if (!eq) continue;
        *eq = 0;
        line[strcspn(line, "\0")] = 0;
        eq[1 + strcspn(eq + 1, "\n")] = 0;
        config_set(line, eq + 1);
    }
    fclose(f);
}

/* ---- joining the run ----------------------------------------------------------------------- */

static int connect_coordinator(void) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s/coordinator.sock", g_run_dir);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void *map_file(const char *path, size_t size, int create) {
    /* a new ring is touched up front (MAP_POPULATE): no page faults on the launch path */
    int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0), 0600);
    if (fd < 0) return NULL;
    if (create && ftruncate(fd, (off_t)size) < 0) {
        close(fd);
        return NULL;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | (create ? MAP_POPULATE : 0), fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

static void names_write(const char *line, size_t n) {
    if (g_names_fd < 0) return;
    ssize_t w = write(g_names_fd, line, n);
    (void)w;
}

static void write_process_line(void) {
    char buf[8192];
    int n = snprintf(buf, sizeof buf, "P\t%d\t", (int)getppid());
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t r = read(fd, buf + n, sizeof buf - n - 2);
        close(fd);
        for (ssize_t i = 0; i < r; i++)
            if (buf[n + i] == 0) buf[n + i] = '\x1f';
        if (r > 0) n += (int)r;
    }
    buf[n++] = '\n';
    names_write(buf, (size_t)n);
}

/* Create this process's ring and names file and register; `inherited`: our main thread is
 * already counted in page->running (a fork child, or an exec of a participant). */
static int join_run(int inherited) {
    char path[600];
    g_serial = (uint32_t)revati_real_monotonic_ns();
    snprintf(path, sizeof path, "%s/ring-%d-%u.bin", g_run_dir, (int)getpid(), g_serial);
    size_t size = sizeof(struct revati_ring_header) + (size_t)RING_CAPACITY * sizeof(struct revati_record);
    void *ring = map_file(path, size, 1);
    if (!ring) return -1;
    g_ring = ring;
    g_records = (struct revati_record *)(g_ring + 1);
    g_ring->capacity = RING_CAPACITY;
    g_ring->record_size = sizeof(struct revati_record);
    g_ring->pid = (int32_t)getpid();
    g_ring->parent_pid = (int32_t)getppid();
    g_ring->proc_running = inherited ? 1 : 0;
    g_ring->version = REVATI_PROTOCOL_VERSION;
    __atomic_store_n(&g_ring->magic, REVATI_RING_MAGIC, __ATOMIC_RELEASE);
    snprintf(path, sizeof path, "%s/names-%d-%u.txt", g_run_dir, (int)getpid(), g_serial);
    g_names_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    write_process_line();
    if (!inherited) revati_page_adjust(g_page, g_ring, +1);
    g_reg_fd = connect_coordinator();
    if (g_reg_fd < 0) return -1;
    struct revati_msg m = {.type = MSG_REGISTER, .pid = (int32_t)getpid(), .serial = g_serial,
                           .a = inherited ? REG_INHERITED : 0};
    if (send(g_reg_fd, &m, sizeof m, MSG_NOSIGNAL) != sizeof m) return -1;
    if (recv(g_reg_fd, &m, sizeof m, 0) != sizeof m || m.type != MSG_ANSWER) return -1;
    char pidbuf[32];
    snprintf(pidbuf, sizeof pidbuf, "%d", (int)getpid());
    setenv("REVATI_COUNTED_PID", pidbuf, 1);
    return 0;
}

static void thread_ends(void);

static void thread_exit(void *arg) {
    if (t_conn >= 0) close(t_conn);
    t_conn = -1;
    /* value 2: a thread started by our pthread_create, counted as running until it ends */
    if (arg == (void *)2) thread_ends();
}

static void init_once(void) {
    revati_resolve_libc();
    config_defaults();
    pthread_key_create(&g_thread_key, thread_exit);
    revati_memory_init();
    const char *dir = getenv("REVATI_RUN_DIR");
    if (!dir || !*dir) {
        revati_apply_visible_devices();
        return;
    }
    snprintf(g_run_dir, sizeof g_run_dir, "%s", dir);
    config_load();
    revati_apply_visible_devices();
    char path[600];
    snprintf(path, sizeof path, "%s/clock.page", g_run_dir);
    g_page = map_file(path, sizeof(struct revati_clock_page), 0);
    if (!g_page || g_page->magic != REVATI_PAGE_MAGIC || g_page->version != REVATI_PROTOCOL_VERSION) {
        g_page = NULL;
        revati_warn_once("cannot open the run's clock page (protocol mismatch?)");
        return;
    }
    const char *counted = getenv("REVATI_COUNTED_PID");
    int inherited = counted && atoi(counted) == (int)getpid();
    if (join_run(inherited) < 0) {
        revati_warn_once("cannot register with the revati coordinator");
        g_detached = 1;
        return;
    }
    g_active = 1;
}

void revati_ensure_init(void) { pthread_once(&g_once, init_once); }

__attribute__((constructor(101))) static void shim_constructor(void) { revati_ensure_init(); }

/* ---- fork: the child is counted by its parent, then joins with its own ring ---------------- */

REVATI_EXPORT pid_t fork(void) {
    static pid_t (*real_fork)(void);
    if (!real_fork) real_fork = dlsym(RTLD_NEXT, "fork");
    revati_ensure_init();
    int counted = g_active && !g_detached;
    if (counted) revati_page_adjust(g_page, NULL, +1);
    pid_t pid = real_fork();
    if (pid < 0 && counted) revati_page_adjust(g_page, NULL, -1);
    if (pid == 0 && counted) {
        pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
        g_join_lock = fresh;  /* only this thread exists in the child */
        g_started = NULL;
        revati_waits_after_fork();
        t_start = NULL;
        t_conn = -1;
        t_index = 0;
        g_next_thread = 1;
        if (g_reg_fd >= 0) close(g_reg_fd);
        if (g_names_fd >= 0) close(g_names_fd);
        g_reg_fd = g_names_fd = -1;
        g_active = 0;
        struct revati_ring_header *old = g_ring;
        if (join_run(1) < 0) {
            revati_warn_once("a forked child cannot register with the revati coordinator");
            g_detached = 1;
        } else {
            g_active = 1;
        }
        (void)old;
    }
    return pid;
}

/* ---- threads: every participant thread counts as running ----------------------------------- */

/* A thread started by our pthread_create. When a joiner waits for it in pthread_join, the joiner
 * leaves `running`; the ending thread hands its own share over to the joiner instead of
 * dropping it, so `running` never touches 0 between the end of one and the wake of the other. */
struct thread_start {
    void *(*fn)(void *);
    void *arg;
    pthread_t handle;
    int joining, exited, handed;
    struct thread_start *next;
};


static void thread_ends(void) {
    struct thread_start *s = t_start;
    if (!g_active || g_detached) return;
    pthread_mutex_lock(&g_join_lock);
    if (s && s->joining) {
        s->handed = 1;
    } else {
        if (s) s->exited = 1;
        revati_page_adjust(g_page, g_ring, -1);
    }
    pthread_mutex_unlock(&g_join_lock);
}

static void *thread_trampoline(void *p) {
    struct thread_start *s = p;
    t_start = s;
    pthread_setspecific(g_thread_key, (void *)2);
    return s->fn(s->arg);
}

REVATI_EXPORT int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg) {
    static int (*real_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    if (!real_create) real_create = dlsym(RTLD_NEXT, "pthread_create");
    revati_ensure_init();
    if (!g_active || g_detached) return real_create(t, attr, fn, arg);
    struct thread_start *s = calloc(1, sizeof *s);
    if (!s) return real_create(t, attr, fn, arg);
    s->fn = fn;
    s->arg = arg;
    revati_page_adjust(g_page, g_ring, +1);
    pthread_mutex_lock(&g_join_lock);
    int rc = real_create(&s->handle, attr, thread_trampoline, s);
    if (rc == 0) {
        *t = s->handle;
        s->next = g_started;
        g_started = s;
    }
    pthread_mutex_unlock(&g_join_lock);
    if (rc != 0) {
        revati_page_adjust(g_page, g_ring, -1);
        free(s);
    }
    return rc;
}

static struct thread_start *take_started(pthread_t t) {
    for (struct thread_start **pp = &g_started; *pp; pp = &(*pp)->next) {
        if (pthread_equal((*pp)->handle, t)) {
            struct thread_start *s = *pp;
            *pp = s->next;
            return s;
        }
    }
    return NULL;
}

REVATI_EXPORT int pthread_join(pthread_t t, void **ret) {
    static int (*real_join)(pthread_t, void **);
    if (!real_join) real_join = dlsym(RTLD_NEXT, "pthread_join");
    if (!g_active || g_detached) return real_join(t, ret);
    pthread_mutex_lock(&g_join_lock);
    struct thread_start *s = take_started(t);
    int waits = s && !s->exited;
    if (waits) {
        s->joining = 1;
        revati_page_adjust(g_page, g_ring, -1);
    }
    pthread_mutex_unlock(&g_join_lock);
    int rc = real_join(t, ret);
    if (waits) {
        pthread_mutex_lock(&g_join_lock);
        if (!s->handed) revati_page_adjust(g_page, g_ring, +1); /* it never ran our exit path */
        pthread_mutex_unlock(&g_join_lock);
    }
    free(s);
    return rc;
}

/* ---- ring ---------------------------------------------------------------------------------- */

/* The shim's own work (moving emulated bytes) is not the program's: leave `running` while doing
 * it, and hold off jumps (`stalled`) so no deadline is passed meanwhile. */
void revati_pause_begin(void) {
    if (!g_active || g_detached) return;
    __atomic_add_fetch(&g_page->stalled, 1, __ATOMIC_ACQ_REL);
    revati_page_adjust(g_page, g_ring, -1);
}

void revati_pause_end(void) {
    if (!g_active || g_detached) return;
    revati_page_adjust(g_page, g_ring, +1);
    __atomic_sub_fetch(&g_page->stalled, 1, __ATOMIC_ACQ_REL);
}

static void ring_stall_wait(void) {
    /* The ring is full: leave `running` while we wait so the engine's pace never leaks into
     * virtual time; the coordinator does not jump while anyone is stalled. */
    __atomic_add_fetch(&g_page->stalled, 1, __ATOMIC_ACQ_REL);
    revati_page_adjust(g_page, g_ring, -1);
    struct timespec ts = {0, 200000};
    real_nanosleep(&ts, NULL);
    revati_page_adjust(g_page, g_ring, +1);
    __atomic_sub_fetch(&g_page->stalled, 1, __ATOMIC_ACQ_REL);
}

/* The ring is full: wait for the coordinator (outside `running`) until slot `head` is free.
 * Returns 0 when there is room, -1 after ~5 s without progress (the caller drops the record). */
static __attribute__((noinline, cold)) int ring_wait_room(struct revati_ring_header *h, uint64_t head) {
    for (int waits = 0; head - __atomic_load_n(&h->tail, __ATOMIC_ACQUIRE) >= RING_CAPACITY; waits++) {
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
    if (UNLIKELY(!g_active || g_detached)) return NULL;
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
    names_write(line, (size_t)n);
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
    names_write(line, (size_t)n);
    free(line);
    return id;
}

uint32_t revati_register_unsupported_name(const char *name, const char *library) {
    uint32_t id = __atomic_fetch_add(&g_next_unsupported, 1, __ATOMIC_ACQ_REL);
    char line[512];
    int n = snprintf(line, sizeof line, "U\t%u\t%s\t%s\n", id, name, library);
    names_write(line, (size_t)n);
    return id;
}

/* Record a call of an unemulated function of `library` and answer `code` (its library's
 * "not supported"): the generated stubs call this. */
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

REVATI_EXPORT int revati_unsupported_call(const char *name) {
    return revati_unsupported_in(name, "libcudart.so.13", 801);
}

/* ---- blocking calls ------------------------------------------------------------------------ */

int revati_thread_conn(void);

static void detach(const char *why) {
    if (g_detached) return;
    g_detached = 1;
    revati_warn_once(why);
}

int revati_thread_conn(void);
static int thread_conn(void) { return revati_thread_conn(); }

int revati_thread_conn(void) {
    if (t_conn >= 0) return t_conn;
    t_conn = connect_coordinator();
    if (t_conn >= 0 && !pthread_getspecific(g_thread_key)) pthread_setspecific(g_thread_key, (void *)1);
    return t_conn;
}

int revati_block(uint32_t msg_type, uint8_t sync_kind, uint16_t fn, int64_t a, int64_t b,
                 int64_t value, struct revati_msg *out) {
    revati_ensure_init();
    if (!g_active || g_detached) return -1;
    int64_t enter = revati_now();
    uint64_t idx = revati_emit(REC_SYNC, sync_kind, fn, 0, enter, enter, (uint64_t)a, (uint64_t)b,
                               (uint64_t)value, msg_type);
    /* Leave `running` before opening this thread's connection (the first time): connecting
     * wakes the coordinator, which may take the CPU from us, and that must not be program time
     * (it made the first sync of a run resume late). The coordinator does not jump while this
     * announced wait has not arrived. */
    revati_page_block_enter(g_page, g_ring);
    int fd = thread_conn();
    if (fd < 0) goto lost;
    struct revati_msg m = {.type = msg_type, .pid = (int32_t)getpid(), .serial = g_serial,
                           .thread = revati_thread_index(), .ring = idx, .v = enter,
                           .value = value, .a = a, .b = b, .result = sync_kind, .pad = fn};
    if (send(fd, &m, sizeof m, MSG_NOSIGNAL) != sizeof m) goto lost;
    int left_sent = 0;
    for (;;) {
        ssize_t n = recv(fd, out, sizeof *out, 0);
        if (n == sizeof *out && (out->type == MSG_WAKE || out->type == MSG_ANSWER)) break;
        if (n < 0 && errno == EINTR) {
            /* A signal interrupts a sleep: ask to be woken now (the answer says EINTR). */
            if (msg_type == MSG_WAIT && sync_kind == SYNC_SLEEP && !left_sent) {
                struct revati_msg l = m;
                l.type = MSG_LEFT;
                if (send(fd, &l, sizeof l, MSG_NOSIGNAL) != sizeof l) goto lost;
                left_sent = 1;
            }
            continue;
        }
        goto lost;
    }
    /* The coordinator counted us as running again before it answered (a = page seq then). */
    if (out->a) revati_page_rebase(g_page, (uint32_t)out->a);
    if (out->v > t_last_v) t_last_v = out->v;
    return 0;
lost:
    revati_page_adjust(g_page, g_ring, +1);
    detach("lost the revati coordinator");
    return -1;
}

/* A wait on file descriptors (poll/select/epoll) with a virtual deadline (-1: none). The thread
 * leaves `running`, announces the wait, and polls its fds together with its coordinator
 * connection. It leaves early (MSG_LEFT) when an fd becomes ready, and answers the
 * coordinator's PREPARE(T) of a two-phase jump with a VETO if an fd is ready, else ACCEPT.
 * Returns 1 if it left because an fd was ready, 0 at the deadline, -1 without a coordinator. */
int revati_block_io(uint16_t fn, int64_t deadline, struct pollfd *fds, nfds_t n) {
    static int (*real_poll)(struct pollfd *, nfds_t, int);
    if (!real_poll) real_poll = dlsym(RTLD_NEXT, "poll");
    revati_ensure_init();
    if (!g_active || g_detached) return -1;
    int64_t enter = revati_now();
    uint64_t idx = revati_emit(REC_SYNC, SYNC_POLL, fn, 0, enter, enter, n, 0, (uint64_t)deadline, MSG_WAIT);
    struct pollfd *all = calloc(n + 1, sizeof *all);
    revati_page_block_enter(g_page, g_ring); /* before connecting: see revati_block */
    int fd = revati_thread_conn();
    if (fd < 0 || !all) goto lost;
    if (n) memcpy(all, fds, n * sizeof *fds);
    all[n] = (struct pollfd){.fd = fd, .events = POLLIN};
    struct revati_msg m = {.type = MSG_WAIT, .pid = (int32_t)getpid(), .serial = g_serial,
                           .thread = revati_thread_index(), .ring = idx, .v = enter, .value = deadline,
                           .a = (int64_t)n, .result = SYNC_POLL, .pad = fn};
    int left = 0, interrupted = 0;
    if (send(fd, &m, sizeof m, MSG_NOSIGNAL) != sizeof m) goto lost;
    for (;;) {
        int r = left ? real_poll(&all[n], 1, -1) : real_poll(all, n + 1, -1);
        int user_ready = 0;
        if (r < 0) {
            if (errno != EINTR) goto lost;
            interrupted = user_ready = 1;
        } else if (!left) {
            for (nfds_t i = 0; i < n; i++) user_ready |= all[i].revents != 0;
        }
        if (user_ready && !left) {
            struct revati_msg l = m;
            l.type = MSG_LEFT;
            if (send(fd, &l, sizeof l, MSG_NOSIGNAL) != sizeof l) goto lost;
            left = 1;
        }
        if (r <= 0 || !(all[n].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        struct revati_msg in;
        if (recv(fd, &in, sizeof in, 0) != sizeof in) goto lost;
        if (in.type == MSG_WAKE || in.type == MSG_ANSWER) {
            if (in.a) revati_page_rebase(g_page, (uint32_t)in.a);
            if (in.v > t_last_v) t_last_v = in.v;
            break;
        }
        if (in.type == MSG_PREPARE) {
            int ready = left || real_poll(fds, n, 0) > 0;
            struct revati_msg reply = m;
            reply.type = ready ? MSG_VETO : MSG_ACCEPT;
            if (send(fd, &reply, sizeof reply, MSG_NOSIGNAL) != sizeof reply) goto lost;
            left = left || ready;
        }
    }
    free(all);
    return interrupted ? 2 : left;
lost:
    free(all);
    revati_page_adjust(g_page, g_ring, +1);
    detach("lost the revati coordinator");
    return -1;
}

void revati_adjust_running(int32_t delta) {
    if (g_active && !g_detached) revati_page_adjust(g_page, g_ring, delta);
}
