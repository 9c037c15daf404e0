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

/* Node types beyond the record types (graph_nodes.c): memory and event nodes reuse their
 * records' types; child graphs and conditional nodes are expanded when a graph is instantiated. */
#define NODE_MEM_ALLOC REC_ALLOC
#define NODE_MEM_FREE REC_FREE
#define NODE_EVENT_RECORD REC_EVENT_RECORD
#define NODE_EVENT_WAIT REC_STREAM_WAIT
#define NODE_CHILD 0xF0
#define NODE_CONDITIONAL 0xF1

struct revati_graph;

struct graph_node {
    uint8_t type; /* REC_LAUNCH, REC_COPY, REC_MEMSET, REC_HOST_FN, NODE_*; 0 = empty node */
    uint8_t kind;
    uint32_t kernel;
    dim3 grid, block;
    uint32_t shared_mem;
    void *dst;
    const void *src;
    uint64_t bytes;
    int value;
    unsigned int element_size; /* memset nodes: 1, 2 or 4 */
    uint16_t group_size;       /* a group barrier kernel node (ipc_barrier.c): its group size, else 0 */
    uint32_t group_unit;       /* and its message unit in bytes */
    void (*host_fn)(void *);   /* host nodes */
    void *host_data;
    struct graph_node_handle *handle; /* the cudaGraphNode_t handed out (lazily), or NULL */
    union { /* the record sent before a kernel node's launch record, or type 0 */
        struct revati_gemm_record gemm;   /* a library GEMM's shape: type REC_GEMM */
        struct revati_args_record args;   /* a launch's argument bytes: type REC_KERNEL_ARGS */
    };
    void *event;                      /* event record / wait nodes */
    struct revati_graph *child;       /* NODE_CHILD: the embedded graph (the node owns it) */
    struct revati_graph **bodies;     /* NODE_CONDITIONAL: its body graphs (owned) */
    uint32_t nbodies;
    uint8_t cond_type;                /* cudaGraphConditionalNodeType */
    uint64_t cond_handle;             /* cudaGraphConditionalHandle */
    struct revati_graph *origin_graph; /* an instantiated node: the graph node it came from */
    uint32_t origin_index;
};

/* A cudaGraphNode_t: the node's position in its graph. */
struct graph_node_handle {
    uint32_t magic;
    uint32_t index;
    struct revati_graph *graph;
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
    int captured_into;            /* that capture appends to a graph the program already had */
    struct revati_stream *joined[16]; /* other streams that joined the capture (fork) */
    uint32_t njoined;
};

/* An instantiated graph: nodes in a topological order without empty nodes; node i depends on
 * deps[dep_off[i] .. dep_off[i + 1]) (exec positions, all < i). */
struct revati_graph_exec {
    uint32_t magic;
    uint32_t id;
    uint32_t count;
    uint32_t version;      /* bumped by cudaGraphExecUpdate */
    int replayable;        /* every node is a kernel, copy or memset, and every group barrier
                              node cuts the graph: replays can be sent as one record (and the
                              barriers' arrivals) */
    int moves_data;        /* some node is a copy or memset: a replay moves its bytes */
    int nodes_sent;        /* a launch of this version sent its node records (atomic) */
    struct graph_node *nodes;
    uint32_t *dep_off;
    uint32_t *deps;
    uint32_t *barrier_at;  /* positions of the group barrier nodes, in order */
    uint32_t nbarriers;
};

struct revati_stream {
    uint32_t magic;
    unsigned int flags;
    int priority;
    int device;
    struct revati_graph *capture; /* non-NULL while capturing */
    int capture_mode;
    struct capture_deps deps;     /* while capturing: what the next node depends on */
    struct revati_stream_attrs *attrs; /* stream_attr.c: NULL until an attribute is set */
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
/* The ref of `device`'s legacy default stream (what a NULL stream means to NCCL: its comm's). */
int64_t revati_default_stream_ref(int device);
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
/* A kernel launch record on stream `ref` at the current virtual time, charged a launch's host
 * cost (launch.c: the hot path). */
void revati_launch_record(uint32_t kernel, dim3 g, dim3 b, uint32_t smem, int64_t ref, uint16_t fn);
/* Append a record that precedes a kernel's launch record (a REC_GEMM shape, REC_KERNEL_ARGS
 * bytes) as this thread's (gemm.c). */
void revati_prefix_emit(const void *record, uint32_t thread);
/* A kernel node of `f` launched with `args`: its kept argument bytes, and whether it is a group
 * barrier (launch.c). */
void revati_kernel_node_fill(const void *f, void **args, struct graph_node *n);
/* The capture a stream joined is over when its event's graph is no longer capturing. */
int capture_live(const struct revati_graph *g);

/* Graph building blocks (graph.c) for the other node types (graph_nodes.c). */
struct revati_graph *graph_new(void);
void graph_free(struct revati_graph *g);
cudaError_t graph_add_node(void **out, cudaGraph_t graph, const void *deps, size_t ndeps, const struct graph_node *n);
/* The node a cudaGraphNode_t names (and its graph in *g when g is not NULL), or NULL. */
struct graph_node *graph_node_of(const void *handle, struct revati_graph **g);
/* The cudaGraphNode_t of node i of g (made on first use, freed with the graph). */
void *graph_node_handle(struct revati_graph *g, uint32_t i);

/* graph_nodes.c: owned child graphs and bodies; expansion at instantiation; launch-time records. */
void graph_node_release(struct graph_node *n);
int graph_node_clone_owned(struct graph_node *dst, const struct graph_node *src);
struct revati_graph *graph_clone_tree(const struct revati_graph *g);
struct revati_graph *graph_flatten(const struct revati_graph *g);
void graph_node_launch(const struct graph_node *n, int64_t ref, int64_t at);
/* A plain record (REC_API) of a graph call, at the virtual time now. */
void graph_node_record(uint16_t fn, cudaError_t rc, uint64_t a, uint64_t b, uint64_t c, uint64_t d);

/* graph_cond.c: cudaConditionalNodeParams, and making a conditional node from them. */
struct conditional_node_params {
    uint64_t handle;
    int type;
    unsigned int size;
    cudaGraph_t *graphs_out;
    void *ctx;
};
cudaError_t graph_add_conditional(void **out, cudaGraph_t g, const void *deps, size_t ndeps, struct conditional_node_params *p);

/* Node parameter blocks of the CUDA 13 runtime (driver_types.h). */
struct cudaKernelNodeParams { void *func; dim3 gridDim; dim3 blockDim; unsigned int sharedMemBytes; void **kernelParams; void **extra; };
struct cudaPos { size_t x, y, z; };
struct cudaPitchedPtr { void *ptr; size_t pitch, xsize, ysize; };
struct cudaExtent { size_t width, height, depth; };
struct cudaMemcpy3DParms {
    void *srcArray; struct cudaPos srcPos; struct cudaPitchedPtr srcPtr;
    void *dstArray; struct cudaPos dstPos; struct cudaPitchedPtr dstPtr;
    struct cudaExtent extent; int kind;
};
struct cudaMemsetParams { void *dst; size_t pitch; unsigned int value; unsigned int elementSize; size_t width; size_t height; };
struct cudaHostNodeParams { void (*fn)(void *); void *userData; };
cudaError_t cudaGraphAddKernelNode(void **node, cudaGraph_t g, const void *deps, size_t ndeps, const struct cudaKernelNodeParams *p);
cudaError_t cudaGraphAddMemcpyNode(void **node, cudaGraph_t g, const void *deps, size_t ndeps, const struct cudaMemcpy3DParms *p);
cudaError_t cudaGraphAddMemsetNode(void **node, cudaGraph_t g, const void *deps, size_t ndeps, const struct cudaMemsetParams *p);
cudaError_t cudaGraphAddHostNode(void **node, cudaGraph_t g, const void *deps, size_t ndeps, const struct cudaHostNodeParams *p);
cudaError_t cudaGraphAddEmptyNode(void **node, cudaGraph_t g, const void *deps, size_t ndeps);
cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long flags);

#endif
