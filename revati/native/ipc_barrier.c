/*
 * Kernels that are a barrier of the processes sharing IPC-mapped buffers (a layout ending in
 * `g<unit>`, kernel_args.c). vLLM's custom all-reduce is one: on a GPU each rank's kernel waits
 * for its peers' flags in their shared signal buffers. Here a launch is one REC_COLLECTIVE
 * all-reduce arrival, as an NCCL call's: its communicator is named by the shared allocation its
 * first kept pointer lies in (rank 0's signal buffer: the same shared file in every member,
 * ipc.c), its rank and bytes are the launch's, its group size the kernel's first integer
 * template argument. The k-th launch of a rank on that buffer meets the k-th of every other
 * rank (the coordinator counts, revati/engine/barriers.py); the launching thread then waits
 * (SYNC_BARRIER) until every member arrived. A process's first launch in a group is also its
 * init arrival (the member's device), so that a member's death fails the others' waits. A
 * launch whose pointer lies in no shared allocation stays a plain kernel. A launch captured into
 * a graph is a group barrier node (its pointer checked at capture): each launch of the graph
 * arrives and waits there, in node order, as an eager launch does (graph.c).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_args.h"
#include "objects.h"

#define GROUPS_MAX 64

int revati_ipc_range_id(const void *ptr, uint64_t *id);

static uint64_t g_joined[GROUPS_MAX];
static int g_njoined;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

/* Whether this process arrives in `group` for the first time (then it is remembered). */
static int first_arrival(uint64_t group) {
    pthread_mutex_lock(&g_lock);
    int first = 1;
    for (int i = 0; i < g_njoined && first; i++) first = g_joined[i] != group;
    if (first && g_njoined < GROUPS_MAX) g_joined[g_njoined++] = group;
    pthread_mutex_unlock(&g_lock);
    return first;
}

/* The first integer template argument of a mangled kernel name (`Li<n>E`), or 0. */
int revati_group_size_of(const char *mangled_name) {
    const char *p = mangled_name ? strstr(mangled_name, "Li") : NULL;
    if (!p) return 0;
    char *end;
    long n = strtol(p + 2, &end, 10);
    return *end == 'E' && n > 0 && n < 0xffff ? (int)n : 0;
}

/* The group, rank and message bytes of a group barrier's kept argument bytes (pointer into the
 * group's shared buffer, int32 rank, int32 size in `unit` bytes); 0 if they name no group. */
static int group_of(const struct revati_args_record *kept, unsigned unit, int nranks, uint64_t *group,
                    int32_t *rank, uint64_t *bytes) {
    uint64_t ptr;
    int32_t units;
    memcpy(&ptr, kept->bytes, sizeof ptr);
    memcpy(rank, kept->bytes + 8, sizeof *rank);
    memcpy(&units, kept->bytes + 12, sizeof units);
    *bytes = (uint64_t)units * unit;
    return *rank >= 0 && *rank < nranks && units > 0 && revati_ipc_range_id((void *)(uintptr_t)ptr, group) == 0;
}

int revati_ipc_barrier_node(const struct revati_args_record *kept, unsigned unit, int nranks) {
    uint64_t group, bytes;
    int32_t rank;
    return unit && nranks > 0 && group_of(kept, unit, nranks, &group, &rank, &bytes);
}

int revati_ipc_barrier_arrive(const struct revati_args_record *kept, unsigned unit, int nranks, int64_t stream_ref,
                              uint16_t fn, int charge) {
    uint64_t group, bytes;
    int32_t rank;
    if (!group_of(kept, unit, nranks, &group, &rank, &bytes)) return 0;
    int arrivals = 1;
    if (first_arrival(group)) {
        int64_t now = revati_now();
        revati_emit(REC_COLLECTIVE, COLL_INIT, fn, 0, now, now, group, (uint64_t)revati_current_device(), 0,
                    REVATI_COLL_PACK(rank, nranks, -1, 0, 0));
        arrivals = 2;
    }
    int64_t enter = revati_now();
    int64_t exit = charge ? revati_charge(COST_LAUNCH, enter) : enter;
    revati_emit(REC_COLLECTIVE, COLL_ALLREDUCE, fn, 0, enter, exit, group, bytes, (uint64_t)stream_ref,
                REVATI_COLL_PACK(rank, nranks, -1, 0, 0));
    struct revati_msg out;
    revati_block(MSG_WAIT, SYNC_BARRIER, fn, arrivals, 0, 0, &out);
    return 1;
}

int revati_ipc_barrier_launch(const struct revati_args_layout *l, void *const *args, int nranks,
                              int64_t stream_ref, uint16_t fn) {
    struct revati_args_record kept;
    revati_args_fill(l, args, 0, &kept);
    return revati_ipc_barrier_arrive(&kept, revati_args_group_unit(l), nranks, stream_ref, fn, 1);
}
