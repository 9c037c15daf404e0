/*
 * CUDA graphs: built by capture (capture.c) or by hand, instantiated into a topological order
 * without empty nodes, launched as one REC_GRAPH_LAUNCH followed by a REC_GRAPH_NODE header and a
 * record per node (REC_F_GRAPH), or as that one record alone (REC_GRAPH_REPLAY) when an exec of
 * kernels, copies and memsets was sent before; cloned, destroyed. A group barrier kernel node
 * (ipc_barrier.c) is an arrival at every launch, where the launching thread waits for the
 * group: in node order when the launch is sent node by node, after the replay record when it is
 * replayed (the engine places the segments between the barriers), which needs every barrier
 * node to cut the graph (exec_barriers).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "kernel_args.h"
#include "memory.h"
#include "objects.h"

#define API REVATI_EXPORT cudaError_t

static uint32_t g_next_exec = 1;

/* ---- graphs and their edges ---------------------------------------------------------------- */

int graph_append(struct revati_graph *g, const struct graph_node *n) {
    if (g->count == g->cap) {
        uint32_t cap = g->cap ? g->cap * 2 : 16;
        void *p = realloc(g->nodes, cap * sizeof *g->nodes);
        if (!p) return -1;
        g->nodes = p;
        g->cap = cap;
    }
    g->nodes[g->count] = *n;
    g->nodes[g->count].handle = NULL;
    g->count++;
    return 0;
}

int graph_add_edge(struct revati_graph *g, uint32_t from, uint32_t to) {
    if (from >= g->count || to >= g->count || from == to) return -1;
    for (uint32_t i = 0; i < g->nedges; i++)
        if (g->edges[i].from == from && g->edges[i].to == to) return 0;
    if (g->nedges == g->edge_cap) {
        uint32_t cap = g->edge_cap ? g->edge_cap * 2 : 16;
        void *p = realloc(g->edges, cap * sizeof *g->edges);
        if (!p) return -1;
        g->edges = p;
        g->edge_cap = cap;
    }
    g->edges[g->nedges++] = (struct graph_edge){from, to};
    return 0;
}

struct revati_graph *graph_new(void) {
    struct revati_graph *g = calloc(1, sizeof *g);
    if (g) g->magic = GRAPH_MAGIC;
    return g;
}

API cudaGraphCreate(cudaGraph_t *g, unsigned int flags) {
    (void)flags;
    if (!g) return cudaErrorInvalidValue;
    *g = graph_new();
    return *g ? cudaSuccess : cudaErrorMemoryAllocation;
}

/* The positions of e's group barrier nodes (e->barrier_at), and whether each cuts the graph:
 * every node before it is its ancestor (each has a successor no later than it) and every node
 * after it its descendant (each has dependencies, none earlier than it). A launch of an exec
 * whose barriers all cut it can be replayed in segments between them; -1 if one does not (or
 * on a failed allocation). */
static int exec_barriers(struct revati_graph_exec *e) {
    uint32_t n = e->count, nb = 0;
    free(e->barrier_at);
    e->barrier_at = NULL;
    e->nbarriers = 0;
    for (uint32_t i = 0; i < n; i++) nb += e->nodes[i].type == REC_LAUNCH && e->nodes[i].group_size;
    if (!nb) return 0;
    uint32_t *first_succ = malloc(n * sizeof *first_succ), *low_after = malloc((n + 1) * sizeof *low_after);
    e->barrier_at = malloc(nb * sizeof *e->barrier_at);
    int rc = first_succ && low_after && e->barrier_at ? 0 : -1;
    if (!rc) {
        /* first_succ[i]: i's earliest dependent; low_after[j]: 1 + the earliest dependency of
         * the nodes from j on (0 for a node without dependencies, UINT32_MAX for none) */
        for (uint32_t i = 0; i < n; i++) first_succ[i] = UINT32_MAX;
        for (uint32_t j = 0; j < n; j++)
            for (uint32_t k = e->dep_off[j]; k < e->dep_off[j + 1]; k++)
                if (first_succ[e->deps[k]] == UINT32_MAX) first_succ[e->deps[k]] = j;
        low_after[n] = UINT32_MAX;
        for (uint32_t j = n; j-- > 0;) {
            uint32_t low = e->dep_off[j] == e->dep_off[j + 1] ? 0 : UINT32_MAX;
            for (uint32_t k = e->dep_off[j]; k < e->dep_off[j + 1]; k++) low = e->deps[k] + 1 < low ? e->deps[k] + 1 : low;
            low_after[j] = low < low_after[j + 1] ? low : low_after[j + 1];
        }
        uint32_t reach = 0; /* the latest first dependent of the nodes before p */
        for (uint32_t p = 0; p < n; p++) {
            if (e->nodes[p].type == REC_LAUNCH && e->nodes[p].group_size) {
                e->barrier_at[e->nbarriers++] = p;
                if (reach > p || low_after[p + 1] < p + 1) rc = -1;
            }
            if (first_succ[p] > reach) reach = first_succ[p];
        }
    }
    free(first_succ);
    free(low_after);
    return rc;
}

/* Order g's nodes topologically (Kahn; ties by creation order) and drop empty nodes, whose
 * dependents inherit their dependencies. Fills e->nodes/dep_off/deps/count. */
static int exec_build(struct revati_graph_exec *e, const struct revati_graph *g) {
    uint32_t n = g->count, m = g->nedges;
    uint32_t *indeg = calloc(n + 1, sizeof *indeg), *order = malloc((n + 1) * sizeof *order);
    uint32_t *pos = malloc((n + 1) * sizeof *pos), *out_off = calloc(n + 2, sizeof *out_off);
    uint32_t *out = malloc((m + 1) * sizeof *out);
    /* per node, its dependency set as exec positions (empty nodes: their inherited set) */
    uint32_t **sets = calloc(n + 1, sizeof *sets), *nset = calloc(n + 1, sizeof *nset);
    struct graph_node *nodes = malloc((n + 1) * sizeof *nodes);
    uint32_t *dep_off = malloc((n + 2) * sizeof *dep_off), *deps = NULL, ndeps = 0, dcap = 0;
    int rc = -1;
    if (!indeg || !order || !pos || !out_off || !out || !sets || !nset || !nodes || !dep_off) goto done;
    for (uint32_t i = 0; i < m; i++) { indeg[g->edges[i].to]++; out_off[g->edges[i].from + 1]++; }
    for (uint32_t i = 0; i < n; i++) out_off[i + 1] += out_off[i];
    {
        uint32_t *fill = calloc(n + 1, sizeof *fill);
        if (!fill) goto done;
        for (uint32_t i = 0; i < m; i++) out[out_off[g->edges[i].from] + fill[g->edges[i].from]++] = g->edges[i].to;
        free(fill);
    }
    uint32_t head = 0, tail = 0;
    for (uint32_t i = 0; i < n; i++) if (!indeg[i]) order[tail++] = i;
    while (head < tail) {
        uint32_t v = order[head++];
        for (uint32_t k = out_off[v]; k < out_off[v + 1]; k++) if (!--indeg[out[k]]) order[tail++] = out[k];
    }
    if (tail != n) goto done; /* a cycle */
    uint32_t count = 0;
    for (uint32_t t = 0; t < n; t++) {
        uint32_t v = order[t];
        /* gather the dependency set of v: exec positions of real predecessors, sets of empty ones */
        uint32_t cap = 4, k = 0, *set = malloc(cap * sizeof *set);
        if (!set) goto done;
        for (uint32_t i = 0; i < m; i++) {
            if (g->edges[i].to != v) continue;
            uint32_t u = g->edges[i].from;
            uint32_t single = pos[u], *src = g->nodes[u].type ? &single : sets[u];
            uint32_t cnt = g->nodes[u].type ? 1 : nset[u];
            for (uint32_t j = 0; j < cnt; j++) {
                uint32_t x = 0;
                while (x < k && set[x] != src[j]) x++;
                if (x < k) continue;
                if (k == cap) { uint32_t *p2 = realloc(set, (cap *= 2) * sizeof *set); if (!p2) { free(set); goto done; } set = p2; }
                set[k++] = src[j];
            }
        }
        if (!g->nodes[v].type) { sets[v] = set; nset[v] = k; continue; }
        pos[v] = count;
        nodes[count] = g->nodes[v];
        nodes[count].handle = NULL;
        dep_off[count] = ndeps;
        if (ndeps + k > dcap) {
            dcap = (ndeps + k) * 2 + 16;
            uint32_t *p2 = realloc(deps, dcap * sizeof *deps);
            if (!p2) { free(set); goto done; }
            deps = p2;
        }
        if (k) memcpy(deps + ndeps, set, k * sizeof *set); /* deps is NULL until a node has one */
        ndeps += k;
        count++;
        free(set);
    }
    dep_off[count] = ndeps;
    e->replayable = 1;
    e->moves_data = 0;
    for (uint32_t i = 0; i < count; i++) {
        int data = nodes[i].type == REC_COPY || nodes[i].type == REC_MEMSET;
        e->replayable &= data || nodes[i].type == REC_LAUNCH;
        e->moves_data |= data;
    }
    free(e->nodes); free(e->dep_off); free(e->deps);
    e->nodes = nodes; e->dep_off = dep_off; e->deps = deps; e->count = count;
    nodes = NULL; dep_off = NULL; deps = NULL;
    if (exec_barriers(e)) e->replayable = 0;
    rc = 0;
done:
    if (sets) for (uint32_t i = 0; i < n; i++) free(sets[i]);
    free(sets); free(nset); free(indeg); free(order); free(pos); free(out_off); free(out);
    free(nodes); free(dep_off); free(deps);
    return rc;
}

/* exec_build of g with its child graphs and conditional bodies expanded (graph_nodes.c). */
static int exec_build_expanded(struct revati_graph_exec *e, const struct revati_graph *g) {
    struct revati_graph *flat = graph_flatten(g);
    int rc = flat ? exec_build(e, flat) : -1;
    if (flat) graph_free(flat);
    return rc;
}

static cudaError_t instantiate(cudaGraphExec_t *out, cudaGraph_t graph) {
    struct revati_graph *g = graph;
    if (!out || !g || g->magic != GRAPH_MAGIC) return cudaErrorInvalidValue;
    struct revati_graph_exec *e = calloc(1, sizeof *e);
    if (!e) return cudaErrorMemoryAllocation;
    e->magic = EXEC_MAGIC;
    if (exec_build_expanded(e, g)) { free(e); return cudaErrorInvalidValue; }
    e->id = __atomic_fetch_add(&g_next_exec, 1, __ATOMIC_ACQ_REL);
    *out = e;
    int64_t now = revati_now();
    revati_emit(REC_API, 0, FN_cudaGraphInstantiate, 0, now, now, e->id, e->count, 0, 0);
    return cudaSuccess;
}
API cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long f) { (void)f; return instantiate(e, g); }
API cudaGraphInstantiateWithFlags(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long f) { (void)f; return instantiate(e, g); }

API cudaGraphExecUpdate(cudaGraphExec_t exec, cudaGraph_t graph, int *result_info) {
    struct revati_graph_exec *e = exec;
    struct revati_graph *g = graph;
    if (!e || e->magic != EXEC_MAGIC || !g || g->magic != GRAPH_MAGIC) return cudaErrorInvalidValue;
    if (exec_build_expanded(e, g)) return cudaErrorInvalidValue;
    e->version++;
    __atomic_store_n(&e->nodes_sent, 0, __ATOMIC_RELEASE);
    if (result_info) *result_info = 0;
    int64_t now = revati_now();
    revati_emit(REC_API, 0, FN_cudaGraphExecUpdate, 0, now, now, e->id, e->count, 0, 0);
    return cudaSuccess;
}

/* What a launch's copy and memset nodes do to backed memory, without their records. */
static void replay_data(const struct revati_graph_exec *e) {
    for (uint32_t i = 0; i < e->count; i++) {
        const struct graph_node *n = &e->nodes[i];
        int moved, kind;
        if (n->type == REC_COPY) revati_copy_bytes(n->dst, n->src, n->bytes, &moved, &kind);
        else if (n->type == REC_MEMSET) revati_fill(n->dst, (uint32_t)n->value, n->element_size, n->bytes, &moved);
    }
}

static cudaError_t graph_launch(cudaGraphExec_t exec, cudaStream_t s, int per_thread) {
    revati_ensure_init();
    struct revati_graph_exec *e = exec;
    if (!e || e->magic != EXEC_MAGIC) return cudaErrorInvalidValue;
    struct revati_stream *obj;
    int64_t ref = revati_stream_ref(s, per_thread, &obj);
    if (ref < 0) return cudaErrorInvalidResourceHandle;
    revati_hostfn_gate(ref, FN_cudaGraphLaunch);
    int64_t enter = revati_now();
    int64_t exit = revati_charge(COST_LAUNCH, enter);
    /* An exec of kernels, copies and memsets whose nodes a launch already sent is one record: the
     * coordinator keeps what it placed then (nodes, durations, critical path) and replays it;
     * the copies and memsets still move their bytes here, in node order. */
    int replay = g_cfg.graph_replay && e->replayable && __atomic_load_n(&e->nodes_sent, __ATOMIC_ACQUIRE);
    revati_emit(REC_GRAPH_LAUNCH, replay ? REC_GRAPH_REPLAY : 0, FN_cudaGraphLaunch, 0, enter, exit, e->id,
                (uint64_t)ref, e->count, e->version);
    if (replay) {
        if (e->moves_data) replay_data(e);
        for (uint32_t b = 0; b < e->nbarriers; b++) { /* its group barriers, in order */
            const struct graph_node *n = &e->nodes[e->barrier_at[b]];
            revati_ipc_barrier_arrive(&n->args, n->group_unit, n->group_size, ref, FN_cudaGraphLaunch, 0);
        }
        return cudaSuccess;
    }
    uint32_t thread = revati_thread_index();
    for (uint32_t i = 0; i < e->count; i++) {
        struct graph_node *n = &e->nodes[i];
        int moved = 0, kind = n->kind;
        /* the node's position and its dependencies (positions), three per header record */
        uint32_t d0 = e->dep_off[i], nd = e->dep_off[i + 1] - d0, k = 0;
        do {
            uint32_t c = nd - k < 3 ? nd - k : 3;
            uint64_t v[3] = {0, 0, 0};
            for (uint32_t j = 0; j < c; j++) v[j] = e->deps[d0 + k + j];
            revati_emit(REC_GRAPH_NODE, (uint8_t)c, FN_cudaGraphLaunch, 0, exit, exit, i, v[0], v[1], v[2]);
            k += c;
        } while (k < nd);
        if (n->type == REC_LAUNCH && n->group_size &&
            revati_ipc_barrier_arrive(&n->args, n->group_unit, n->group_size, ref, FN_cudaGraphLaunch, 0))
            continue; /* a group barrier node: its arrival, and this thread waits for the group */
        if (n->type == REC_LAUNCH) {
            if (n->gemm.type) revati_prefix_emit(&n->gemm, thread); /* a GEMM's shape, argument bytes */
            uint64_t idx;
            struct revati_record *r = revati_ring_reserve(&idx);
            if (!r) continue;
            memset(&r->p, 0, sizeof r->p);
            r->type = REC_LAUNCH; r->kind = 0; r->fn = FN_cudaGraphLaunch;
            r->thread = thread; r->result = 0; r->enter_ns = exit; r->exit_ns = exit;
            r->p.launch.kernel = n->kernel;
            r->p.launch.grid_x = n->grid.x; r->p.launch.grid_y = (uint16_t)n->grid.y; r->p.launch.grid_z = (uint16_t)n->grid.z;
            r->p.launch.block_x = (uint16_t)n->block.x; r->p.launch.block_y = (uint16_t)n->block.y; r->p.launch.block_z = (uint16_t)n->block.z;
            r->p.launch.graph_flag = 1;
            r->p.launch.shared_mem = n->shared_mem;
            r->p.launch.stream = (uint64_t)ref;
            revati_ring_commit(r, idx);
        } else if (n->type == REC_COPY) {
            revati_copy_bytes(n->dst, n->src, n->bytes, &moved, &kind);
            revati_emit(REC_COPY, (uint8_t)(kind | REC_F_ASYNC | REC_F_GRAPH | (moved ? REC_F_BACKED : 0)), FN_cudaGraphLaunch, 0,
                        exit, exit, (uint64_t)(uintptr_t)n->dst, (uint64_t)(uintptr_t)n->src, n->bytes, (uint64_t)ref);
        } else if (n->type == REC_HOST_FN) {
            revati_emit(REC_HOST_FN, REC_F_GRAPH, FN_cudaGraphLaunch, 0, exit, exit, (uint64_t)ref, 0, 0, 0);
            if (n->host_fn) n->host_fn(n->host_data);
        } else if (n->type == REC_MEMSET) {
            revati_fill(n->dst, (uint32_t)n->value, n->element_size, n->bytes, &moved);
            revati_emit(REC_MEMSET, (uint8_t)(REC_F_ASYNC | REC_F_GRAPH | (moved ? REC_F_BACKED : 0)), FN_cudaGraphLaunch, 0,
                        exit, exit, (uint64_t)(uintptr_t)n->dst, n->bytes, (uint64_t)(n->value & 0xff), (uint64_t)ref);
        } else {
            graph_node_launch(n, ref, exit); /* memory and event nodes */
        }
    }
    if (e->replayable) __atomic_store_n(&e->nodes_sent, 1, __ATOMIC_RELEASE);
    return cudaSuccess;
}
API cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s) { return graph_launch(e, s, 0); }
API cudaGraphLaunch_ptsz(cudaGraphExec_t e, cudaStream_t s) { return graph_launch(e, s, 1); }
API cudaGraphUpload(cudaGraphExec_t e, cudaStream_t s) { (void)e; (void)s; return cudaSuccess; }
API cudaGraphUpload_ptsz(cudaGraphExec_t e, cudaStream_t s) { (void)e; (void)s; return cudaSuccess; }

API cudaGraphExecDestroy(cudaGraphExec_t exec) {
    struct revati_graph_exec *e = exec;
    if (!e || e->magic != EXEC_MAGIC) return cudaErrorInvalidValue;
    e->magic = 0;
    free(e->nodes);
    free(e->dep_off);
    free(e->deps);
    free(e->barrier_at);
    free(e);
    return cudaSuccess;
}

void graph_free(struct revati_graph *g) {
    g->magic = 0;
    for (uint32_t i = 0; i < g->count; i++) {
        free(g->nodes[i].handle);
        graph_node_release(&g->nodes[i]);
    }
    free(g->nodes);
    free(g->edges);
    free(g);
}

API cudaGraphDestroy(cudaGraph_t graph) {
    struct revati_graph *g = graph;
    if (!g || g->magic != GRAPH_MAGIC) return cudaErrorInvalidValue;
    graph_free(g);
    return cudaSuccess;
}

/* The cudaGraphNode_t of node i (created on first use, freed with the graph). */
void *graph_node_handle(struct revati_graph *g, uint32_t i) {
    struct graph_node *n = &g->nodes[i];
    if (!n->handle && (n->handle = malloc(sizeof *n->handle))) {
        n->handle->magic = NODE_MAGIC;
        n->handle->index = i;
        n->handle->graph = g;
    }
    return n->handle;
}

struct graph_node *graph_node_of(const void *handle, struct revati_graph **g) {
    const struct graph_node_handle *h = handle;
    if (!h || h->magic != NODE_MAGIC || !h->graph || h->graph->magic != GRAPH_MAGIC || h->index >= h->graph->count)
        return NULL;
    if (g) *g = h->graph;
    return &h->graph->nodes[h->index];
}

static int node_index(const struct revati_graph *g, const void *h, uint32_t *out) {
    const struct graph_node_handle *n = h;
    if (!n || n->magic != NODE_MAGIC || n->index >= g->count) return -1;
    *out = n->index;
    return 0;
}

API cudaGraphGetNodes(cudaGraph_t graph, void **nodes, size_t *count) {
    struct revati_graph *g = graph;
    if (!g || g->magic != GRAPH_MAGIC || !count) return cudaErrorInvalidValue;
    if (nodes)
        for (size_t i = 0; i < *count && i < g->count; i++) nodes[i] = graph_node_handle(g, (uint32_t)i);
    *count = g->count;
    return cudaSuccess;
}

/* ---- graphs built by hand (the dependencies given become the graph's edges) ----------------- */


cudaError_t graph_add_node(void **out, cudaGraph_t graph, const void *deps, size_t ndeps, const struct graph_node *n) {
    struct revati_graph *g = graph;
    if (!g || g->magic != GRAPH_MAGIC || (ndeps && !deps)) return cudaErrorInvalidValue;
    uint32_t idx;
    for (size_t i = 0; i < ndeps; i++)
        if (node_index(g, ((void *const *)deps)[i], &idx)) return cudaErrorInvalidValue;
    if (graph_append(g, n)) return cudaErrorMemoryAllocation;
    uint32_t me = g->count - 1;
    for (size_t i = 0; i < ndeps; i++) {
        node_index(g, ((void *const *)deps)[i], &idx);
        if (graph_add_edge(g, idx, me)) return cudaErrorMemoryAllocation;
    }
    if (out) *out = graph_node_handle(g, me);
    return cudaSuccess;
}

API cudaGraphAddKernelNode(void **node, cudaGraph_t g, const void *deps, size_t ndeps, const struct cudaKernelNodeParams *p) {
    if (!p) return cudaErrorInvalidValue;
    uint32_t kernel = revati_kernel_id(p->func);
    if (!kernel) return cudaErrorInvalidDeviceFunction;
    struct graph_node n = {.type = REC_LAUNCH, .kernel = kernel, .grid = p->gridDim, .block = p->blockDim,
                           .shared_mem = p->sharedMemBytes};
    revati_kernel_node_fill(p->func, p->kernelParams, &n);
    return graph_add_node(node, g, deps, ndeps, &n);
}

API cudaGraphAddMemcpyNode(void **node, cudaGraph_t g, const void *deps, size_t ndeps, const struct cudaMemcpy3DParms *p) {
    if (!p || p->srcArray || p->dstArray) return cudaErrorInvalidValue;
    size_t height = p->extent.height ? p->extent.height : 1, depth = p->extent.depth ? p->extent.depth : 1;
    const char *src = (const char *)p->srcPtr.ptr + p->srcPos.x;
    char *dst = (char *)p->dstPtr.ptr + p->dstPos.x;
    struct graph_node n = {.type = REC_COPY, .dst = dst, .src = src, .bytes = p->extent.width * height * depth};
    int moved, kind;
    revati_copy_bytes(dst, src, 0, &moved, &kind); /* direction only */
    n.kind = (uint8_t)kind;
    return graph_add_node(node, g, deps, ndeps, &n);
}

API cudaGraphAddMemcpyNode1D(void **node, cudaGraph_t g, const void *deps, size_t ndeps, void *dst, const void *src,
                             size_t count, int kind) {
    (void)kind;
    int moved, seen;
    revati_copy_bytes(dst, src, 0, &moved, &seen);
    struct graph_node n = {.type = REC_COPY, .kind = (uint8_t)seen, .dst = dst, .src = src, .bytes = count};
    return graph_add_node(node, g, deps, ndeps, &n);
}

API cudaGraphAddMemsetNode(void **node, cudaGraph_t g, const void *deps, size_t ndeps, const struct cudaMemsetParams *p) {
    if (!p || (p->elementSize != 1 && p->elementSize != 2 && p->elementSize != 4)) return cudaErrorInvalidValue;
    struct graph_node n = {.type = REC_MEMSET, .dst = p->dst, .bytes = (uint64_t)p->elementSize * p->width * (p->height ? p->height : 1),
                           .value = (int)p->value, .element_size = p->elementSize};
    return graph_add_node(node, g, deps, ndeps, &n);
}

API cudaGraphAddHostNode(void **node, cudaGraph_t g, const void *deps, size_t ndeps, const struct cudaHostNodeParams *p) {
    if (!p || !p->fn) return cudaErrorInvalidValue;
    struct graph_node n = {.type = REC_HOST_FN, .host_fn = p->fn, .host_data = p->userData};
    return graph_add_node(node, g, deps, ndeps, &n);
}

API cudaGraphAddEmptyNode(void **node, cudaGraph_t g, const void *deps, size_t ndeps) {
    struct graph_node n = {.type = 0};
    return graph_add_node(node, g, deps, ndeps, &n);
}

API cudaGraphAddDependencies(cudaGraph_t graph, const void *from, const void *to, const void *edges, size_t n) {
    (void)edges;
    struct revati_graph *g = graph;
    if (!g || g->magic != GRAPH_MAGIC || (n && (!from || !to))) return cudaErrorInvalidValue;
    for (size_t i = 0; i < n; i++) {
        uint32_t a, b;
        if (node_index(g, ((void *const *)from)[i], &a) || node_index(g, ((void *const *)to)[i], &b))
            return cudaErrorInvalidValue;
        if (graph_add_edge(g, a, b)) return cudaErrorInvalidValue;
    }
    return cudaSuccess;
}

API cudaGraphClone(cudaGraph_t *out, cudaGraph_t graph) {
    struct revati_graph *g = graph;
    if (!out || !g || g->magic != GRAPH_MAGIC) return cudaErrorInvalidValue;
    struct revati_graph *c = graph_clone_tree(g); /* child graphs and bodies copied too */
    if (!c) return cudaErrorMemoryAllocation;
    *out = c;
    return cudaSuccess;
}

API cudaGraphGetRootNodes(cudaGraph_t graph, void **nodes, size_t *count) {
    struct revati_graph *g = graph;
    if (!g || g->magic != GRAPH_MAGIC || !count) return cudaErrorInvalidValue;
    size_t k = 0;
    for (uint32_t i = 0; i < g->count; i++) {
        uint32_t j = 0;
        while (j < g->nedges && g->edges[j].to != i) j++;
        if (j < g->nedges) continue;
        if (nodes && k < *count) nodes[k] = graph_node_handle(g, i);
        k++;
    }
    *count = k;
    return cudaSuccess;
}
