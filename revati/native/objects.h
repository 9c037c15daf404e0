/* Streams, events and graphs as the shim hands them to the program. */
#ifndef REVATI_OBJECTS_H
#define REVATI_OBJECTS_H

#include "cuda_types.h"
#include "shim_internal.h"

#define STREAM_MAGIC 0x5354524du
#define EVENT_MAGIC 0x4556544du
#define GRAPH_MAGIC 0x47524150u
#define EXEC_MAGIC 0x47455845u

struct graph_node {
    uint8_t type; /* REC_LAUNCH, REC_COPY, REC_MEMSET */
    uint8_t kind;
    uint32_t kernel;
    dim3 grid, block;
    uint32_t shared_mem;
    void *dst;
    const void *src;
    uint64_t bytes;
    int value;
    unsigned int element_size; /* memset nodes: 1, 2 or 4 */
    void (*host_fn)(void *);   /* host nodes */
    void *host_data;
};

struct revati_graph {
    uint32_t magic;
    uint32_t count, cap;
    struct graph_node *nodes;
    struct revati_stream *origin; /* capturing stream that began it */
};

struct revati_graph_exec {
    uint32_t magic;
    uint32_t id;
    uint32_t count;
    struct graph_node *nodes;
};

struct revati_stream {
    uint32_t magic;
    unsigned int flags;
    int priority;
    int device;
    struct revati_graph *capture; /* non-NULL while capturing */
    int capture_mode;
};

struct revati_event {
    uint32_t magic;
    unsigned int flags;
    struct revati_graph *capture; /* recorded during a capture */
};

/* Resolve a stream handle: returns the value recorded in the ring (0 legacy, 2 per-thread,
 * else the handle) and the object in *obj (NULL for default streams). -1: invalid handle. */
int64_t revati_stream_ref(cudaStream_t s, int per_thread, struct revati_stream **obj);
int revati_current_device(void);
int graph_append(struct revati_graph *g, const struct graph_node *n);

#endif
