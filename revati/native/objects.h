/* Streams, events and graphs as the shim hands them to the program. */
#ifndef REVATI_OBJECTS_H
#define REVATI_OBJECTS_H

#include "cuda_types.h"
#include "shim_internal.h"

#define STREAM_MAGIC 0x5354524du
#define EVENT_MAGIC 0x4556544du
#define GRAPH_MAGIC 0x47524150u
#define EXEC_MAGIC 0x47455845u

#define NODE_MAGIC 0x4e4f4445u
#define CAPTURE_MAX_DEPS 32

struct graph_node {
    uint8_t type; /* REC_LAUNCH, REC_COPY, REC_MEMSET, REC_HOST_FN; 0 = empty node */
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
    struct graph_node_handle *handle; /* the cudaGraphNode_t handed out (lazily), or NULL */
};

/* A cudaGraphNode_t: the node's position in its graph. */
struct graph_node_handle {
    uint32_t magic;
    uint32_t index;
};

struct graph_edge {
    uint32_t from, to; /* node indices: `to` starts after `from` ends */
};

/* The leaves a capturing stream (or an event recorded in a capture) hangs new nodes on. */
struct capture_deps {
    uint32_t n;
    uint32_t node[CAPTURE_MAX_DEPS];
};

struct revati_graph {
    uint32_t magic;
    uint32_t count, cap;
    struct graph_node *nodes;
    struct revati_stream *origin; /* capturing stream that began it */
    struct graph_edge *edges;
    uint32_t nedges, edge_cap;
    int capturing;                /* 1 between begin and end of its capture */
    struct revati_stream *joined[16]; /* other streams that joined the capture (fork) */
    uint32_t njoined;
};

/* An instantiated graph: nodes in a topological order without empty nodes; node i depends on
 * deps[dep_off[i] .. dep_off[i + 1]) (exec positions, all < i). */
struct revati_graph_exec {
    uint32_t magic;
    uint32_t id;
    uint32_t count;
    struct graph_node *nodes;
    uint32_t *dep_off;
    uint32_t *deps;
};

struct revati_stream {
    uint32_t magic;
    unsigned int flags;
    int priority;
    int device;
    struct revati_graph *capture; /* non-NULL while capturing */
    int capture_mode;
    struct capture_deps deps;     /* while capturing: what the next node depends on */
};

struct revati_event {
    uint32_t magic;
    unsigned int flags;
    struct revati_graph *capture; /* recorded during a capture */
    struct capture_deps deps;     /* the recording stream's leaves at that point */
};

/* Resolve a stream handle: returns the value recorded in the ring (a default stream: its node
 * device << REVATI_DEFAULT_STREAM_DEVICE_SHIFT, plus 0 legacy or 2 per-thread;
 * else the handle) and the object in *obj (NULL for default streams). -1: invalid handle. */
int64_t revati_stream_ref(cudaStream_t s, int per_thread, struct revati_stream **obj);
int revati_current_device(void);
/* launch.c: the names-file id of a kernel (host function or cudaKernel_t), 0 if unknown */
uint32_t revati_kernel_id(const void *f);
struct revati_graph *graph_new(void);
int graph_append(struct revati_graph *g, const struct graph_node *n);
/* Host functions (host_fn.c): enqueue one for the worker thread (-1: could not, run it inline);
 * gates: wait until the host functions pending on stream `ref` (or on any stream) have run. */
int revati_hostfn_enqueue(int64_t ref, cudaStream_t s, void (*fn)(void *), cudaStreamCallback_t cb, void *data);
void revati_hostfn_gate(int64_t ref, uint16_t fn);
void revati_hostfn_gate_all(uint16_t fn);
int graph_add_edge(struct revati_graph *g, uint32_t from, uint32_t to);
/* Append a node captured on stream `obj`: it depends on the stream's leaves, then is its leaf. */
int capture_append(struct revati_stream *obj, const struct graph_node *n);
/* The capture a stream joined is over when its event's graph is no longer capturing. */
int capture_live(const struct revati_graph *g);

#endif
