/* Between the shim's core files (run, ring, threads, blocking waits, clock): not for the
 * library layers, which use shim_internal.h. */
#ifndef REVATI_CORE_H
#define REVATI_CORE_H

#include "shim_internal.h"

#define RING_CAPACITY (1u << 18)

/* run.c: the run directory and this process's registration */
extern char g_run_dir[512];
extern uint32_t g_serial;
int revati_connect_coordinator(void); /* a new connection to coordinator.sock, or -1 */

/* config.c */
void revati_config_defaults(void);
void revati_config_load(const char *run_dir);

/* clock.c: after a wake, never read a virtual time before the one the coordinator sent */
void revati_clock_not_before(int64_t v);

/* ring.c: this process's ring and names file */
extern struct revati_ring_header *g_ring;
int revati_ring_open(int inherited);  /* create ring and names file; 0 or -1 */
void revati_ring_after_fork(void);    /* in a fork child, before it opens its own */
void revati_names_write(const char *line, size_t n);

/* threads.c */
void revati_threads_init(void);
void revati_threads_after_fork(void);
void revati_thread_watch_exit(void); /* run thread-exit cleanup (closing t_conn) for this thread */

/* block.c */
void revati_block_thread_exit(void); /* close this thread's coordinator connection */
void revati_block_after_fork(void);

#endif
