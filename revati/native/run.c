/*
 * Joining a run: the shim's init (once per process, from its constructor or the first call),
 * mapping the clock page, registering with the coordinator, and fork (and vfork), whose child
 * joins with a ring of its own. Without REVATI_RUN_DIR, or when anything fails, the program runs in real time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core.h"

struct revati_clock_page *g_page;
_Atomic int g_active;
_Atomic int g_detached;
char g_run_dir[512];
uint32_t g_serial;

static int g_reg_fd = -1;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

void revati_warn_once(const char *what) {
    static int warned;
    if (__atomic_exchange_n(&warned, 1, __ATOMIC_ACQ_REL)) return;
    char line[256]; /* one write(2): no stdio lock, so also safe inside a clock read in a handler */
    int n = snprintf(line, sizeof line,
                     "revati: %s; the program continues in real time and is no longer traced\n", what);
    if (n > (int)sizeof line - 1) n = (int)sizeof line - 1;
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void revati_detach(const char *why) {
    if (__atomic_exchange_n(&g_detached, 1, __ATOMIC_ACQ_REL)) return;
    revati_clock_detach();
    revati_warn_once(why);
}

/* The engine has gone if its end of our registration connection hung up (kill -9 included).
 * Called from the clock's ~50 ms recalibration tick and while a ring is full. */
void revati_check_coordinator(void) {
    if (!revati_recording() || g_reg_fd < 0) return;
    int saved = errno;
    char c;
    ssize_t r = REAL(recv)(g_reg_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    int gone = r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    errno = saved;
    if (gone) revati_detach("lost the revati coordinator");
}

int revati_connect_coordinator(void) {
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

static struct revati_clock_page *map_page(const char *path) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return NULL;
    void *p = mmap(NULL, sizeof(struct revati_clock_page), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

/* Create this process's ring and names file and register; `inherited`: our main thread is
 * already counted in page->running (a fork child, or an exec of a participant). */
static int join_run(int inherited, uint32_t flags) {
    g_serial = (uint32_t)revati_real_monotonic_ns();
    if (revati_ring_open(inherited) < 0) return -1;
    if (!inherited) revati_page_adjust(g_page, g_ring, +1);
    g_reg_fd = revati_connect_coordinator();
    if (g_reg_fd < 0) return -1;
    struct revati_msg m = {.type = MSG_REGISTER, .pid = (int32_t)getpid(), .serial = g_serial,
                           .a = (inherited ? REG_INHERITED : 0) | flags};
    if (send(g_reg_fd, &m, sizeof m, MSG_NOSIGNAL) != sizeof m) return -1;
    if (REAL(recv)(g_reg_fd, &m, sizeof m, 0) != sizeof m || m.type != MSG_ANSWER) return -1;
    char pidbuf[32];
    snprintf(pidbuf, sizeof pidbuf, "%d", (int)getpid());
    setenv("REVATI_COUNTED_PID", pidbuf, 1);
    return 0;
}

static void init_once(void) {
    revati_hooks_resolve();
    revati_config_defaults();
    revati_threads_init();
    revati_memory_init();
    const char *dir = getenv("REVATI_RUN_DIR");
    if (!dir || !*dir) {
        revati_apply_visible_devices();
        return;
    }
    snprintf(g_run_dir, sizeof g_run_dir, "%s", dir);
    revati_config_load(g_run_dir);
    revati_apply_visible_devices();
    char path[600];
    snprintf(path, sizeof path, "%s/clock.page", g_run_dir);
    struct revati_clock_page *page = map_page(path);
    if (!page || page->magic != REVATI_PAGE_MAGIC || page->version != REVATI_PROTOCOL_VERSION) {
        revati_warn_once("cannot open the run's clock page (protocol mismatch?)");
        return;
    }
    __atomic_store_n(&g_page, page, __ATOMIC_RELEASE);
    const char *counted = getenv("REVATI_COUNTED_PID");
    int inherited = counted && atoi(counted) == (int)getpid();
    if (join_run(inherited, 0) < 0) {
        revati_detach("cannot register with the revati coordinator");
        return;
    }
    __atomic_store_n(&g_active, 1, __ATOMIC_RELEASE);
}

void revati_ensure_init(void) { pthread_once(&g_once, init_once); }

__attribute__((constructor(101))) static void shim_constructor(void) { revati_ensure_init(); }

/* ---- fork: the child is counted by its parent, then joins with its own ring ---------------- */

/* fork, the child registering with `flags` (REG_BEFORE_EXEC for a vfork). */
static pid_t fork_joining(uint32_t flags) {
    revati_ensure_init();
    int counted = revati_recording();
    if (counted) revati_page_adjust(g_page, NULL, +1);
    pid_t pid = REAL(fork)();
    if (pid < 0 && counted) revati_page_adjust(g_page, NULL, -1);
    if (pid == 0 && counted) { /* only this thread exists in the child */
        __atomic_store_n(&g_active, 0, __ATOMIC_RELEASE);
        revati_threads_after_fork();
        revati_waits_after_fork();
        revati_block_after_fork();
        revati_ring_after_fork();
        if (g_reg_fd >= 0) close(g_reg_fd);
        g_reg_fd = -1;
        if (join_run(1, flags) < 0)
            revati_detach("a forked child cannot register with the revati coordinator");
        else
            __atomic_store_n(&g_active, 1, __ATOMIC_RELEASE);
    }
    return pid;
}

/* vfork is fork here. A vfork child is not counted (only fork's bookkeeping counts a child before
 * it exists), so from its exec until the shim in its new image joins, neither it nor its
 * suspended-then-released parent need be running: a parent that then waits with a timeout (a
 * poll for the child's first message) lets the clock jump through the child's whole start-up.
 * Python starts every subprocess and multiprocessing "spawn" child this way. fork gives the
 * child what vfork promises (it may only exec or _exit) at the cost of copying page tables; a
 * wrapper cannot return into a vfork child anyway (it would return on the parent's stack). */
REVATI_EXPORT pid_t fork(void) { return fork_joining(0); }

/* The child registers as a copy of its parent until it execs: the trace describes the image it
 * execs (a participant of its own), or nothing when that image is not one (a static binary). */
REVATI_EXPORT pid_t vfork(void) { return fork_joining(REG_BEFORE_EXEC); }
