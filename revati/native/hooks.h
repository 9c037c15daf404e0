/* The real functions behind the shim's interposers, resolved once into one table.
 *
 * Every interposer calls the next definition of its symbol through REAL(name). The table is
 * filled by revati_hooks_resolve(), from the shim's constructor or from the first interposed
 * call, whichever comes first (another library's constructor may call in before ours runs).
 * Nobody waits for anybody: callers that find it unfilled each fill it (the same values, stored
 * atomically), so a call made from inside dlsym, or from a thread holding the loader's lock,
 * cannot deadlock. Afterwards a lookup is one acquire load and one indirect call.
 *
 * To hook another function: add one X(...) line to REVATI_HOOKS below. A library layer that
 * dlopens its real library (libcuda, libnvidia-ml) keeps its own table in its own file. */
#ifndef REVATI_HOOKS_H
#define REVATI_HOOKS_H

#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

/* X(name, symbol version or NULL, return type, parameter types) */
#define REVATI_HOOKS(X)                                                                            \
    X(clock_gettime, NULL, int, (clockid_t, struct timespec *))                                    \
    X(nanosleep, NULL, int, (const struct timespec *, struct timespec *))                          \
    X(clock_nanosleep, NULL, int, (clockid_t, int, const struct timespec *, struct timespec *))    \
    X(fork, NULL, pid_t, (void))                                                                   \
    X(pthread_create, NULL, int, (pthread_t *, const pthread_attr_t *, void *(*)(void *), void *)) \
    X(pthread_join, NULL, int, (pthread_t, void **))                                               \
    X(poll, NULL, int, (struct pollfd *, nfds_t, int))                                             \
    X(ppoll, NULL, int, (struct pollfd *, nfds_t, const struct timespec *, const sigset_t *))      \
    X(select, NULL, int, (int, fd_set *, fd_set *, fd_set *, struct timeval *))                    \
    X(pselect, NULL, int,                                                                          \
      (int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *))              \
    X(epoll_wait, NULL, int, (int, struct epoll_event *, int, int))                                \
    X(epoll_pwait, NULL, int, (int, struct epoll_event *, int, int, const sigset_t *))             \
    X(pthread_cond_timedwait, "GLIBC_2.3.2", int,                                                  \
      (pthread_cond_t *, pthread_mutex_t *, const struct timespec *))                              \
    X(pthread_cond_clockwait, NULL, int,                                                           \
      (pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *))                   \
    X(pthread_cond_wait, "GLIBC_2.3.2", int, (pthread_cond_t *, pthread_mutex_t *))                \
    X(pthread_cond_signal, "GLIBC_2.3.2", int, (pthread_cond_t *))                                 \
    X(pthread_cond_broadcast, "GLIBC_2.3.2", int, (pthread_cond_t *))                              \
    X(pthread_mutex_timedlock, NULL, int, (pthread_mutex_t *, const struct timespec *))            \
    X(pthread_mutex_clocklock, NULL, int, (pthread_mutex_t *, clockid_t, const struct timespec *)) \
    X(sem_wait, NULL, int, (sem_t *))                                                              \
    X(sem_post, NULL, int, (sem_t *))                                                              \
    X(sem_timedwait, NULL, int, (sem_t *, const struct timespec *))                                \
    X(sem_clockwait, NULL, int, (sem_t *, clockid_t, const struct timespec *))                     \
    X(syscall, NULL, long, (long, ...))                                                            \
    X(waitpid, NULL, pid_t, (pid_t, int *, int))                                                   \
    X(wait, NULL, pid_t, (int *))                                                                  \
    X(wait4, NULL, pid_t, (pid_t, int *, int, struct rusage *))                                    \
    X(read, NULL, ssize_t, (int, void *, size_t))                                                  \
    X(recv, NULL, ssize_t, (int, void *, size_t, int))                                             \
    X(recvfrom, NULL, ssize_t, (int, void *, size_t, int, struct sockaddr *, socklen_t *))         \
    X(recvmsg, NULL, ssize_t, (int, struct msghdr *, int))                                         \
    X(accept, NULL, int, (int, struct sockaddr *, socklen_t *))                                    \
    X(accept4, NULL, int, (int, struct sockaddr *, socklen_t *, int))                              \
    X(sched_yield, NULL, int, (void))                                                         \
    X(dlopen, NULL, void *, (const char *, int))

#define REVATI_HOOK_FIELD(name, version, ret, params) ret(*name) params;
struct revati_hooks {
    REVATI_HOOKS(REVATI_HOOK_FIELD)
};
#undef REVATI_HOOK_FIELD

extern struct revati_hooks revati_hooks_table;
extern int revati_hooks_ready; /* 1 once the table is filled (acquire/release) */

/* Fill the table if it is not yet (safe from constructors and from several threads at once). */
void revati_hooks_resolve(void);
/* The next definition of `name` in a library loaded after the table was filled (or NULL). */
void *revati_hooks_late(const char *name);

static inline __attribute__((always_inline)) struct revati_hooks *revati_hooks(void) {
    if (__builtin_expect(!__atomic_load_n(&revati_hooks_ready, __ATOMIC_ACQUIRE), 0))
        revati_hooks_resolve();
    return &revati_hooks_table;
}

/* The real `name` (the next definition after the shim's), e.g. REAL(poll)(fds, n, 0). */
#define REAL(name) (__atomic_load_n(&revati_hooks()->name, __ATOMIC_RELAXED))

#endif
