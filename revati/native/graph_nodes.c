/*
 * The graph node types beyond kernels, copies, memsets and host functions: child graphs, event
 * record and wait nodes, memory allocation and free nodes, conditional nodes (if, while,
 * switch), and cudaGraphAddNode, which makes any of them.
 *
 * Child graphs and conditional bodies are expanded in place when a graph is instantiated
 * (graph_cond.c), so a launch runs only plain nodes.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "graph_mem.h"
#include "objects.h"

#define API REVATI_EXPORT cudaError_t

enum { TYPE_KERNEL = 0, TYPE_MEMCPY, TYPE_MEMSET, TYPE_HOST, TYPE_GRAPH, TYPE_EMPTY, TYPE_WAIT_EVENT,
       TYPE_EVENT_RECORD, TYPE_EXT_SIGNAL, TYPE_EXT_WAIT, TYPE_MEM_ALLOC, TYPE_MEM_FREE,
       TYPE_BATCH_MEM_OP, TYPE_CONDITIONAL };
enum { OWNERSHIP_CLONE = 0, OWNERSHIP_MOVE = 1 };

/* ---- the parameter blocks of cudaGraphNodeParams (CUDA 13 driver_types.h) -------------------- */

struct mem_alloc_node_params {
    struct { int alloc_type, handle_types; struct { int type, id; } location; void *win32; size_t max_size;
             unsigned short usage; unsigned char reserved[54]; } pool_props;
    const void *access_descs;
    size_t access_desc_count;
    size_t bytesize;
    void *dptr;
};
struct graph_node_params {
    int type;
    int reserved0[3];
    union {
        long long reserved1[29];
        struct cudaKernelNodeParams kernel;
        struct { int flags; int reserved[3]; struct cudaMemcpy3DParms copy; } memcpy;
        struct cudaMemsetParams memset;
        struct cudaHostNodeParams host;
        struct { cudaGraph_t graph; int ownership; } graph;
        struct { cudaEvent_t event; } event;
        struct mem_alloc_node_params alloc;
        struct { void *dptr; } free;
        struct conditional_node_params conditional;
    };
    long long reserved2;
};
_Static_assert(sizeof(struct graph_node_params) == 256, "cudaGraphNodeParams is 256 bytes");

void graph_node_record(uint16_t fn, cudaError_t rc, uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    int64_t now = revati_now();
    revati_emit(REC_API, 0, fn, rc, now, now, a, b, c, d);
}

/* ---- ownership: child graphs and bodies belong to their node --------------------------------- */

void graph_node_release(struct graph_node *n) {
    if (n->type == NODE_CHILD && n->child) graph_free(n->child);
    if (n->type == NODE_CONDITIONAL) {
        for (uint32_t i = 0; i < n->nbodies; i++) graph_free(n->bodies[i]);
        free(n->bodies);
    }
    n->child = NULL;
    n->bodies = NULL;
    n->nbodies = 0;
}

struct revati_graph *graph_clone_tree(const struct revati_graph *g) {
    struct revati_graph *c = graph_new();
    int failed = !c;
    for (uint32_t i = 0; !failed && i < g->count; i++) {
        struct graph_node n = g->nodes[i];
        n.child = NULL, n.bodies = NULL;
        failed = graph_append(c, &n);
        if (!failed) failed = graph_node_clone_owned(&c->nodes[c->count - 1], &g->nodes[i]);
    }
    for (uint32_t i = 0; !failed && i < g->nedges; i++) failed = graph_add_edge(c, g->edges[i].from, g->edges[i].to);
    if (failed && c) graph_free(c);
    return failed ? NULL : c;
}

int graph_node_clone_owned(struct graph_node *dst, const struct graph_node *src) {
    dst->child = NULL, dst->bodies = NULL, dst->nbodies = 0;
    if (src->type == NODE_CHILD && src->child && !(dst->child = graph_clone_tree(src->child))) return -1;
    if (src->type != NODE_CONDITIONAL) return 0;
    if (!(dst->bodies = calloc(src->nbodies ? src->nbodies : 1, sizeof *dst->bodies))) return -1;
    for (uint32_t i = 0; i < src->nbodies; i++, dst->nbodies++)
        if (!(dst->bodies[i] = graph_clone_tree(src->bodies[i]))) return -1;
    return 0;
}

/* ---- at launch: what a memory or event node does, as a point in the graph -------------------- */

void graph_node_launch(const struct graph_node *n, int64_t ref, int64_t at) {
    uint8_t k = REC_F_GRAPH;
    switch (n->type) {
    case NODE_MEM_ALLOC: {
        int ok = graph_mem_launch_alloc(n->dst);
        revati_emit(REC_ALLOC, (uint8_t)(k | (ok ? 0 : ALLOC_FAILED)), FN_cudaGraphLaunch, ok ? 0 : cudaErrorMemoryAllocation,
                    at, at, (uint64_t)(uintptr_t)n->dst, n->bytes, (uint64_t)n->value, (uint64_t)ref);
        break;
    }
    case NODE_MEM_FREE:
        graph_mem_free(n->dst);
        revati_emit(REC_FREE, k, FN_cudaGraphLaunch, 0, at, at, (uint64_t)(uintptr_t)n->dst, 0, 0, (uint64_t)ref);
        break;
    case NODE_EVENT_RECORD:
        revati_emit(REC_EVENT_RECORD, k, FN_cudaGraphLaunch, 0, at, at, (uint64_t)(uintptr_t)n->event, (uint64_t)ref, 0, 0);
        break;
    case NODE_EVENT_WAIT:
        revati_emit(REC_STREAM_WAIT, k, FN_cudaGraphLaunch, 0, at, at, (uint64_t)ref, (uint64_t)(uintptr_t)n->event, 0, 0);
        break;
    default: break;
    }
}

/* ---- making the nodes ------------------------------------------------------------------------ */

static cudaError_t add_child(void **out, cudaGraph_t g, const void *deps, size_t ndeps, cudaGraph_t child, int ownership) {
    struct revati_graph *c = child;
    if (!c || c->magic != GRAPH_MAGIC || c == g) return cudaErrorInvalidValue;
    struct graph_node n = {.type = NODE_CHILD};
    n.child = ownership == OWNERSHIP_MOVE ? c : graph_clone_tree(c);
    if (!n.child) return cudaErrorMemoryAllocation;
    cudaError_t rc = graph_add_node(out, g, deps, ndeps, &n);
    if (rc && ownership != OWNERSHIP_MOVE) graph_free(n.child);
    return rc;
}
API cudaGraphAddChildGraphNode(void **out, cudaGraph_t g, const void *deps, size_t ndeps, cudaGraph_t child) {
    return revati_ret(add_child(out, g, deps, ndeps, child, OWNERSHIP_CLONE));
}

API cudaGraphChildGraphNodeGetGraph(void *node, cudaGraph_t *out) {
    const struct graph_node *n = graph_node_of(node, NULL);
    if (!n || n->type != NODE_CHILD || !out) return revati_ret(cudaErrorInvalidValue);
    *out = n->child;
    return cudaSuccess;
}

static cudaError_t add_event_node(void **out, cudaGraph_t g, const void *deps, size_t ndeps, cudaEvent_t e, uint8_t type) {
    const struct revati_event *ev = e;
    if (!ev || ev->magic != EVENT_MAGIC) return cudaErrorInvalidResourceHandle;
    struct graph_node n = {.type = type, .event = e};
    return graph_add_node(out, g, deps, ndeps, &n);
}
API cudaGraphAddEventRecordNode(void **out, cudaGraph_t g, const void *deps, size_t ndeps, cudaEvent_t e) {
    return revati_ret(add_event_node(out, g, deps, ndeps, e, NODE_EVENT_RECORD));
}
API cudaGraphAddEventWaitNode(void **out, cudaGraph_t g, const void *deps, size_t ndeps, cudaEvent_t e) {
    return revati_ret(add_event_node(out, g, deps, ndeps, e, NODE_EVENT_WAIT));
}
static cudaError_t node_event(void *node, cudaEvent_t *out, uint8_t type) {
    const struct graph_node *n = graph_node_of(node, NULL);
    if (!n || n->type != type || !out) return cudaErrorInvalidValue;
    *out = n->event;
    return cudaSuccess;
}
API cudaGraphEventRecordNodeGetEvent(void *node, cudaEvent_t *out) { return revati_ret(node_event(node, out, NODE_EVENT_RECORD)); }
API cudaGraphEventWaitNodeGetEvent(void *node, cudaEvent_t *out) { return revati_ret(node_event(node, out, NODE_EVENT_WAIT)); }

static cudaError_t add_mem_alloc(void **out, cudaGraph_t g, const void *deps, size_t ndeps, struct mem_alloc_node_params *p) {
    if (!p || !p->bytesize || p->pool_props.location.type != 1) return cudaErrorInvalidValue;
    int device = p->pool_props.location.id;
    if (device < 0 || device >= g_cfg.device_count) return cudaErrorInvalidDevice;
    void *ptr = graph_mem_create(p->bytesize, device);
    if (!ptr) return cudaErrorMemoryAllocation;
    struct graph_node n = {.type = NODE_MEM_ALLOC, .dst = ptr, .bytes = p->bytesize, .value = device};
    cudaError_t rc = graph_add_node(out, g, deps, ndeps, &n);
    if (!rc) p->dptr = ptr;
    return rc;
}
API cudaGraphAddMemAllocNode(void **out, cudaGraph_t g, const void *deps, size_t ndeps, struct mem_alloc_node_params *p) {
    cudaError_t rc = add_mem_alloc(out, g, deps, ndeps, p);
    graph_node_record(FN_cudaGraphAddMemAllocNode, rc, rc ? 0 : (uint64_t)(uintptr_t)p->dptr, p ? p->bytesize : 0,
                p ? (uint64_t)p->pool_props.location.id : 0, 0);
    return revati_ret(rc);
}

static cudaError_t add_mem_free(void **out, cudaGraph_t g, const void *deps, size_t ndeps, void *dptr) {
    uint64_t size;
    int device;
    if (!graph_mem_size(dptr, &size, &device)) return cudaErrorInvalidValue;
    struct graph_node n = {.type = NODE_MEM_FREE, .dst = dptr, .bytes = size};
    return graph_add_node(out, g, deps, ndeps, &n);
}
API cudaGraphAddMemFreeNode(void **out, cudaGraph_t g, const void *deps, size_t ndeps, void *dptr) {
    cudaError_t rc = add_mem_free(out, g, deps, ndeps, dptr);
    graph_node_record(FN_cudaGraphAddMemFreeNode, rc, (uint64_t)(uintptr_t)dptr, 0, 0, 0);
    return revati_ret(rc);
}

API cudaGraphMemAllocNodeGetParams(void *node, struct mem_alloc_node_params *out) {
    const struct graph_node *n = graph_node_of(node, NULL);
    if (!n || n->type != NODE_MEM_ALLOC || !out) return revati_ret(cudaErrorInvalidValue);
    memset(out, 0, sizeof *out);
    out->pool_props.alloc_type = 1; /* pinned */
    out->pool_props.location.type = 1;
    out->pool_props.location.id = n->value;
    out->bytesize = n->bytes;
    out->dptr = n->dst;
    return cudaSuccess;
}

API cudaGraphMemFreeNodeGetParams(void *node, void **out) {
    const struct graph_node *n = graph_node_of(node, NULL);
    if (!n || n->type != NODE_MEM_FREE || !out) return revati_ret(cudaErrorInvalidValue);
    *out = n->dst;
    return cudaSuccess;
}

static cudaError_t add_node_typed(void **out, cudaGraph_t g, const void *deps, size_t ndeps, struct graph_node_params *p) {
    switch (p->type) {
    case TYPE_KERNEL: return cudaGraphAddKernelNode(out, g, deps, ndeps, &p->kernel);
    case TYPE_MEMCPY: return cudaGraphAddMemcpyNode(out, g, deps, ndeps, &p->memcpy.copy);
    case TYPE_MEMSET: return cudaGraphAddMemsetNode(out, g, deps, ndeps, &p->memset);
    case TYPE_HOST: return cudaGraphAddHostNode(out, g, deps, ndeps, &p->host);
    case TYPE_GRAPH: return add_child(out, g, deps, ndeps, p->graph.graph, p->graph.ownership);
    case TYPE_EMPTY: return cudaGraphAddEmptyNode(out, g, deps, ndeps);
    case TYPE_WAIT_EVENT: return add_event_node(out, g, deps, ndeps, p->event.event, NODE_EVENT_WAIT);
    case TYPE_EVENT_RECORD: return add_event_node(out, g, deps, ndeps, p->event.event, NODE_EVENT_RECORD);
    case TYPE_MEM_ALLOC: return add_mem_alloc(out, g, deps, ndeps, &p->alloc);
    case TYPE_MEM_FREE: return add_mem_free(out, g, deps, ndeps, p->free.dptr);
    case TYPE_CONDITIONAL: return graph_add_conditional(out, g, deps, ndeps, &p->conditional);
    default: return cudaErrorNotSupported; /* external semaphores, batched memory operations */
    }
}

/* cudaGraphAddNode: edge data may only carry plain dependencies (ports and types 0). */
API cudaGraphAddNode(void **out, cudaGraph_t g, const void *deps, const unsigned char *edges, size_t ndeps,
                     struct graph_node_params *p) {
    if (!p) return revati_ret(cudaErrorInvalidValue);
    for (size_t i = 0; edges && i < ndeps; i++) /* cudaGraphEdgeData: from_port, to_port, type, pad[5] */
        if (edges[8 * i] || edges[8 * i + 1] || edges[8 * i + 2]) return revati_ret(cudaErrorNotSupported);
    cudaError_t rc = add_node_typed(out, g, deps, ndeps, p);
    /* a = node type; memory nodes: b = address, c = bytes (a conditional node records itself) */
    uint64_t addr = p->type == TYPE_MEM_ALLOC ? (uint64_t)(uintptr_t)p->alloc.dptr
                    : p->type == TYPE_MEM_FREE ? (uint64_t)(uintptr_t)p->free.dptr : 0;
    uint64_t bytes = p->type == TYPE_MEM_ALLOC ? p->alloc.bytesize : 0;
    if (p->type != TYPE_CONDITIONAL || rc) graph_node_record(FN_cudaGraphAddNode, rc, (uint64_t)p->type, rc ? 0 : addr, bytes, 0);
    return revati_ret(rc);
}

/* ---- kernel node parameters, in a graph and in an instantiated graph ------------------------- */

static cudaError_t set_kernel(struct graph_node *n, const struct cudaKernelNodeParams *p) {
    if (!n || n->type != REC_LAUNCH || !p) return cudaErrorInvalidValue;
    uint32_t kernel = revati_kernel_id(p->func);
    if (!kernel) return cudaErrorInvalidDeviceFunction;
    n->kernel = kernel, n->grid = p->gridDim, n->block = p->blockDim, n->shared_mem = p->sharedMemBytes;
    return cudaSuccess;
}

API cudaGraphKernelNodeSetParams(void *node, const struct cudaKernelNodeParams *p) {
    return revati_ret(set_kernel(graph_node_of(node, NULL), p));
}

/* The instantiated copy of a graph node takes the new parameters; the graph keeps its own. */
API cudaGraphExecKernelNodeSetParams(cudaGraphExec_t exec, void *node, const struct cudaKernelNodeParams *p) {
    struct revati_graph_exec *e = exec;
    const struct graph_node_handle *h = node;
    if (!e || e->magic != EXEC_MAGIC || !graph_node_of(node, NULL)) return revati_ret(cudaErrorInvalidValue);
    for (uint32_t i = 0; i < e->count; i++)
        if (e->nodes[i].origin_graph == h->graph && e->nodes[i].origin_index == h->index)
            return revati_ret(set_kernel(&e->nodes[i], p));
    return revati_ret(cudaErrorInvalidValue); /* not a node of the graph this was made from */
}

/* ---- node types and instantiation with parameters -------------------------------------------- */

API cudaGraphNodeGetType(void *node, int *type) {
    const struct graph_node *n = graph_node_of(node, NULL);
    if (!n || !type) return revati_ret(cudaErrorInvalidValue);
    switch (n->type) {
    case REC_LAUNCH: *type = TYPE_KERNEL; break;
    case REC_COPY: *type = TYPE_MEMCPY; break;
    case REC_MEMSET: *type = TYPE_MEMSET; break;
    case REC_HOST_FN: *type = TYPE_HOST; break;
    case NODE_CHILD: *type = TYPE_GRAPH; break;
    case NODE_EVENT_WAIT: *type = TYPE_WAIT_EVENT; break;
    case NODE_EVENT_RECORD: *type = TYPE_EVENT_RECORD; break;
    case NODE_MEM_ALLOC: *type = TYPE_MEM_ALLOC; break;
    case NODE_MEM_FREE: *type = TYPE_MEM_FREE; break;
    case NODE_CONDITIONAL: *type = TYPE_CONDITIONAL; break;
    default: *type = TYPE_EMPTY; break;
    }
    return cudaSuccess;
}

struct instantiate_params { unsigned long long flags; cudaStream_t upload_stream; void *err_node_out; int result_out; };

/* As cudaGraphInstantiateWithFlags; the upload stream has nothing to upload here. */
API cudaGraphInstantiateWithParams(cudaGraphExec_t *out, cudaGraph_t g, struct instantiate_params *p) {
    if (!p) return revati_ret(cudaErrorInvalidValue);
    cudaError_t rc = cudaGraphInstantiateWithFlags(out, g, p->flags);
    p->err_node_out = NULL;
    p->result_out = rc ? 1 /* cudaGraphInstantiateError */ : 0;
    return rc;
}
API cudaGraphInstantiateWithParams_ptsz(cudaGraphExec_t *out, cudaGraph_t g, struct instantiate_params *p) {
    return cudaGraphInstantiateWithParams(out, g, p);
}
