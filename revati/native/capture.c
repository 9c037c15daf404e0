/*
 * Stream capture: between cudaStreamBeginCapture and cudaStreamEndCapture the work enqueued on
 * a capturing stream (and on the streams that join it) becomes the nodes and edges of a graph.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "objects.h"

#define API REVATI_EXPORT cudaError_t

int capture_append(struct revati_stream *obj, const struct graph_node *n) {
    struct revati_graph *g = obj->capture;
    if (graph_append(g, n)) return -1;
    uint32_t me = g->count - 1;
    for (uint32_t i = 0; i < obj->deps.n; i++)
        if (graph_add_edge(g, obj->deps.node[i], me)) return -1;
    obj->deps.n = 1;
    obj->deps.node[0] = me;
    return 0;
}

int capture_live(const struct revati_graph *g) { return g && g->magic == GRAPH_MAGIC && g->capturing; }

/* Set the stream's capture leaves to the nodes named (handles of g's nodes); -1 if one is not. */
static int set_leaves(struct revati_stream *obj, struct revati_graph *g, const void *deps, size_t n, int add) {
    if (n && !deps) return -1;
    if (!add) obj->deps.n = 0;
    for (size_t i = 0; i < n; i++) {
        struct revati_graph *owner;
        struct graph_node *node = graph_node_of(((void *const *)deps)[i], &owner);
        if (!node || owner != g) return -1;
        uint32_t idx = (uint32_t)(node - g->nodes), j = 0;
        while (j < obj->deps.n && obj->deps.node[j] != idx) j++;
        if (j == obj->deps.n && obj->deps.n < CAPTURE_MAX_DEPS) obj->deps.node[obj->deps.n++] = idx;
    }
    return 0;
}

/* Capture into g (a new graph when NULL), hanging the first node on deps. */
static cudaError_t begin_capture_into(cudaStream_t s, int mode, struct revati_graph *g, const void *deps, size_t ndeps) {
    revati_ensure_init();
    struct revati_stream *obj;
    if (revati_stream_ref(s, 0, &obj) < 0) return cudaErrorInvalidResourceHandle;
    if (!obj) return cudaErrorStreamCaptureUnsupported; /* the legacy stream cannot be captured */
    if (obj->capture) return cudaErrorIllegalState;
    if (g && (g->magic != GRAPH_MAGIC || g->capturing)) return cudaErrorInvalidValue;
    obj->deps.n = 0;
    if (g && set_leaves(obj, g, deps, ndeps, 0)) return cudaErrorInvalidValue;
    obj->capture = g ? g : graph_new();
    if (!obj->capture) return cudaErrorMemoryAllocation;
    obj->capture->captured_into = g != NULL;
    obj->capture->origin = obj;
    obj->capture->capturing = 1;
    obj->capture_mode = mode;
    int64_t now = revati_now();
    revati_emit(REC_API, 0, FN_cudaStreamBeginCapture, 0, now, now, (uint64_t)(uintptr_t)s, (uint64_t)mode, 0, 0);
    return cudaSuccess;
}
API cudaStreamBeginCapture(cudaStream_t s, int mode) { return begin_capture_into(s, mode, NULL, NULL, 0); }
API cudaStreamBeginCapture_ptsz(cudaStream_t s, int mode) { return begin_capture_into(s, mode, NULL, NULL, 0); }
/* Capture appends to an existing graph (a conditional node's body, say); edge data must be plain. */
API cudaStreamBeginCaptureToGraph(cudaStream_t s, cudaGraph_t g, const void *deps, const void *edges, size_t n, int mode) {
    if (edges) return cudaErrorNotSupported;
    if (!g) return cudaErrorInvalidValue;
    return begin_capture_into(s, mode, g, deps, n);
}
API cudaStreamBeginCaptureToGraph_ptsz(cudaStream_t s, cudaGraph_t g, const void *deps, const void *edges, size_t n, int mode) {
    return cudaStreamBeginCaptureToGraph(s, g, deps, edges, n, mode);
}

/* cudaStreamUpdateCaptureDependencies: flags 0 adds the nodes to the stream's leaves, 1 sets them. */
API cudaStreamUpdateCaptureDependencies(cudaStream_t s, void **deps, const void *edges, size_t n, unsigned int flags) {
    struct revati_stream *obj;
    if (revati_stream_ref(s, 0, &obj) < 0 || !obj || flags > 1) return cudaErrorInvalidValue;
    if (edges) return cudaErrorNotSupported; /* edge data: only plain dependencies are emulated */
    if (!obj->capture) return cudaErrorIllegalState;
    return set_leaves(obj, obj->capture, deps, n, flags == 0) ? cudaErrorInvalidValue : cudaSuccess;
}
API cudaStreamUpdateCaptureDependencies_ptsz(cudaStream_t s, void **deps, const void *edges, size_t n, unsigned int flags) {
    return cudaStreamUpdateCaptureDependencies(s, deps, edges, n, flags);
}

static cudaError_t end_capture(cudaStream_t s, cudaGraph_t *out) {
    struct revati_stream *obj;
    if (revati_stream_ref(s, 0, &obj) < 0 || !obj) return cudaErrorInvalidValue;
    if (!obj->capture) return cudaErrorIllegalState;
    if (obj->capture->origin != obj) return cudaErrorStreamCaptureUnmatched;
    struct revati_graph *g = obj->capture;
    if (!out && !g->captured_into) return cudaErrorInvalidValue; /* only the caller would own it */
    for (uint32_t i = 0; i < g->njoined; i++) /* forked streams must have joined back by now */
        if (g->joined[i]->capture == g) g->joined[i]->capture = NULL;
    g->capturing = 0;
    g->njoined = 0;
    g->captured_into = 0;
    if (out) *out = g;
    obj->capture = NULL;
    int64_t now = revati_now();
    revati_emit(REC_API, 0, FN_cudaStreamEndCapture, 0, now, now, (uint64_t)(uintptr_t)s, g->count, 0, 0);
    return cudaSuccess;
}
API cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g) { return end_capture(s, g); }
API cudaStreamEndCapture_ptsz(cudaStream_t s, cudaGraph_t *g) { return end_capture(s, g); }

API cudaStreamIsCapturing(cudaStream_t s, int *status) {
    struct revati_stream *obj;
    if (revati_stream_ref(s, 0, &obj) < 0 || !status) return cudaErrorInvalidValue;
    *status = obj && obj->capture ? 1 : 0;
    return cudaSuccess;
}
API cudaStreamIsCapturing_ptsz(cudaStream_t s, int *status) { return cudaStreamIsCapturing(s, status); }

API cudaStreamGetCaptureInfo(cudaStream_t s, int *status, unsigned long long *id, cudaGraph_t *graph,
                             const void **deps, const void **edges, size_t *ndeps) {
    struct revati_stream *obj;
    if (revati_stream_ref(s, 0, &obj) < 0) return cudaErrorInvalidValue;
    int capturing = obj && obj->capture;
    if (status) *status = capturing;
    if (id) *id = capturing ? (unsigned long long)(uintptr_t)obj->capture : 0;
    if (graph) *graph = capturing ? obj->capture : NULL;
    static __thread void *leaves[CAPTURE_MAX_DEPS]; /* valid until the thread's next call */
    uint32_t n = capturing ? obj->deps.n : 0;
    for (uint32_t i = 0; i < n; i++) leaves[i] = graph_node_handle(obj->capture, obj->deps.node[i]);
    if (deps) *deps = n ? (const void *)leaves : NULL;
    if (edges) *edges = NULL;
    if (ndeps) *ndeps = n;
    return cudaSuccess;
}
API cudaStreamGetCaptureInfo_ptsz(cudaStream_t s, int *st, unsigned long long *id, cudaGraph_t *g,
                                  const void **d, const void **e, size_t *n) {
    return cudaStreamGetCaptureInfo(s, st, id, g, d, e, n);
}
API cudaThreadExchangeStreamCaptureMode(int *mode) { (void)mode; return cudaSuccess; }
