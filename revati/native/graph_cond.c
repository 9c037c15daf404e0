/*
 * Conditional nodes (if, while, switch) and the expansion of child graphs and conditional bodies
 * when a graph is instantiated (graph_flatten), so that a launch runs only plain nodes.
 *
 * A conditional node's branch is decided at instantiation: no kernel runs under revati, so
 * device code never calls cudaGraphSetConditional, and the handle keeps the value it was created
 * with (cudaGraphConditionalHandleCreate's default, with or without cudaGraphCondAssignDefault).
 * IF runs its body when that value is non-zero (else its second body, if it has one), SWITCH
 * runs body[value] (none if out of range), WHILE runs its body once when the value is non-zero:
 * as if the body's kernels cleared the condition on their first pass (an endless loop is what a
 * GPU would do otherwise). The trace says so: cudaGraphAddNode's args name the value and the
 * body that runs.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>

#include "objects.h"

#define API REVATI_EXPORT cudaError_t
#define MAX_NESTING 32
#define TYPE_CONDITIONAL 13 /* cudaGraphNodeTypeConditional */

enum { COND_IF = 0, COND_WHILE = 1, COND_SWITCH = 2 };

/* A conditional handle: its value is its position in the table, plus one. */
struct cond_handle {
    uint32_t id;
    struct revati_graph *graph;
    unsigned int value; /* the default launch value: device code cannot change it here */
    unsigned int flags;
};
static struct cond_handle *g_handles;
static uint32_t g_nhandles, g_handle_cap;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static int cond_get(uint64_t handle, struct cond_handle *out) {
    pthread_mutex_lock(&g_lock);
    int ok = handle >= 1 && handle <= g_nhandles;
    if (ok) *out = g_handles[handle - 1];
    pthread_mutex_unlock(&g_lock);
    return ok;
}

static uint32_t cond_add(struct revati_graph *g, unsigned int value, unsigned int flags) {
    pthread_mutex_lock(&g_lock);
    uint32_t id = 0;
    if (g_nhandles == g_handle_cap) {
        uint32_t cap = g_handle_cap ? g_handle_cap * 2 : 64;
        void *p = realloc(g_handles, cap * sizeof *g_handles);
        if (p) g_handles = p, g_handle_cap = cap;
    }
    if (g_nhandles < g_handle_cap) {
        id = ++g_nhandles;
        g_handles[id - 1] = (struct cond_handle){id, g, value, flags};
    }
    pthread_mutex_unlock(&g_lock);
    return id;
}

/* The body a conditional node runs (see the top of this file), or NULL for none. */
static const struct revati_graph *chosen_body(const struct graph_node *n) {
    struct cond_handle h;
    unsigned int v = cond_get(n->cond_handle, &h) ? h.value : 0;
    if (n->cond_type == COND_SWITCH) return v < n->nbodies ? n->bodies[v] : NULL;
    if (v) return n->bodies[0];
    return n->cond_type == COND_IF && n->nbodies == 2 ? n->bodies[1] : NULL;
}

static int has_edge_to(const struct revati_graph *g, uint32_t v) {
    for (uint32_t i = 0; i < g->nedges; i++) if (g->edges[i].to == v) return 1;
    return 0;
}
static int has_edge_from(const struct revati_graph *g, uint32_t v) {
    for (uint32_t i = 0; i < g->nedges; i++) if (g->edges[i].from == v) return 1;
    return 0;
}

/* Append g to flat; in[i]/out[i] get where edges into / out of g's node i attach. */
static int flatten_into(struct revati_graph *flat, const struct revati_graph *g, uint32_t *in, uint32_t *out, int depth) {
    static const struct graph_node empty = {0};
    if (depth > MAX_NESTING) return -1;
    for (uint32_t i = 0; i < g->count; i++) {
        const struct graph_node *n = &g->nodes[i];
        if (n->type != NODE_CHILD && n->type != NODE_CONDITIONAL) {
            if (graph_append(flat, n)) return -1;
            in[i] = out[i] = flat->count - 1;
            flat->nodes[flat->count - 1].origin_graph = (struct revati_graph *)g;
            flat->nodes[flat->count - 1].origin_index = i;
            continue;
        }
        if (graph_append(flat, &empty) || graph_append(flat, &empty)) return -1;
        in[i] = flat->count - 2, out[i] = flat->count - 1;
        const struct revati_graph *body = n->type == NODE_CHILD ? n->child : chosen_body(n);
        if (!body || !body->count) {
            if (graph_add_edge(flat, in[i], out[i])) return -1;
            continue;
        }
        uint32_t *bin = malloc(body->count * sizeof *bin), *bout = malloc(body->count * sizeof *bout);
        int rc = !bin || !bout || flatten_into(flat, body, bin, bout, depth + 1);
        for (uint32_t j = 0; !rc && j < body->count; j++) {
            if (!has_edge_to(body, j)) rc = graph_add_edge(flat, in[i], bin[j]);
            if (!rc && !has_edge_from(body, j)) rc = graph_add_edge(flat, bout[j], out[i]);
        }
        free(bin);
        free(bout);
        if (rc) return -1;
    }
    for (uint32_t k = 0; k < g->nedges; k++)
        if (graph_add_edge(flat, out[g->edges[k].from], in[g->edges[k].to])) return -1;
    return 0;
}

struct revati_graph *graph_flatten(const struct revati_graph *g) {
    struct revati_graph *flat = graph_new();
    uint32_t *in = malloc((g->count + 1) * sizeof *in), *out = malloc((g->count + 1) * sizeof *out);
    int rc = !flat || !in || !out || flatten_into(flat, g, in, out, 0);
    free(in);
    free(out);
    if (rc && flat) graph_free(flat);
    return rc ? NULL : flat;
}

/* ---- conditional nodes ----------------------------------------------------------------------- */

API cudaGraphConditionalHandleCreate(uint64_t *out, cudaGraph_t graph, unsigned int value, unsigned int flags) {
    struct revati_graph *g = graph;
    if (!out || !g || g->magic != GRAPH_MAGIC || flags > 1) return revati_ret(cudaErrorInvalidValue);
    uint32_t id = cond_add(g, value, flags);
    if (!id) return revati_ret(cudaErrorMemoryAllocation);
    *out = id;
    graph_node_record(FN_cudaGraphConditionalHandleCreate, 0, id, value, flags, 0);
    return cudaSuccess;
}

cudaError_t graph_add_conditional(void **out, cudaGraph_t g, const void *deps, size_t ndeps, struct conditional_node_params *p) {
    struct cond_handle h;
    if (!cond_get(p->handle, &h) || h.graph != g) return cudaErrorInvalidValue;
    unsigned int size = p->size;
    if (p->type == COND_WHILE ? size != 1 : p->type == COND_IF ? size < 1 || size > 2 : p->type != COND_SWITCH || size < 1)
        return cudaErrorInvalidValue;
    struct graph_node n = {.type = NODE_CONDITIONAL, .cond_type = (uint8_t)p->type, .cond_handle = p->handle,
                           .nbodies = size};
    int failed = !(n.bodies = calloc(size, sizeof *n.bodies));
    for (unsigned int i = 0; !failed && i < size; i++) failed = !(n.bodies[i] = graph_new());
    cudaError_t rc = failed ? cudaErrorMemoryAllocation : graph_add_node(out, g, deps, ndeps, &n);
    if (rc) {
        graph_node_release(&n);
        return rc;
    }
    p->graphs_out = (cudaGraph_t *)n.bodies; /* CUDA-owned array, valid while the node lives */
    const struct revati_graph *body = chosen_body(&n);
    int64_t chosen = -1;
    for (unsigned int i = 0; i < size; i++) if (n.bodies[i] == body) chosen = i;
    /* a = node type, b = conditional type | bodies << 8, c = handle id | value << 32, d = body run (-1 none) */
    graph_node_record(FN_cudaGraphAddNode, 0, TYPE_CONDITIONAL, (uint64_t)p->type | (uint64_t)size << 8,
                h.id | (uint64_t)h.value << 32, (uint64_t)chosen);
    return cudaSuccess;
}
