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

static cudaError_t begin_capture(cudaStream_t s, int mode) {
    revati_ensure_init();
    struct revati_stream *obj;
    if (revati_stream_ref(s, 0, &obj) < 0) return cudaErrorInvalidResourceHandle;
    if (!obj) return cudaErrorStreamCaptureUnsupported; /* the legacy stream cannot be captured */
    if (obj->capture) return cudaErrorIllegalState;
    obj->capture = graph_new();
    if (!obj->capture) return cudaErrorMemoryAllocation;
    obj->capture->origin = obj;
    obj->capture->capturing = 1;
    obj->capture_mode = mode;
    obj->deps.n = 0;
    int64_t now = revati_now();
    revati_emit(REC_API, 0, FN_cudaStreamBeginCapture, 0, now, now, (uint64_t)(uintptr_t)s, (uint64_t)mode, 0, 0);
    return cudaSuccess;
}
API cudaStreamBeginCapture(cudaStream_t s, int mode) { return begin_capture(s, mode); }
API cudaStreamBeginCapture_ptsz(cudaStream_t s, int mode) { return begin_capture(s, mode); }

static cudaError_t end_capture(cudaStream_t s, cudaGraph_t *out) {
    struct revati_stream *obj;
    if (revati_stream_ref(s, 0, &obj) < 0 || !obj || !out) return cudaErrorInvalidValue;
    if (!obj->capture) return cudaErrorIllegalState;
    if (obj->capture->origin != obj) return cudaErrorStreamCaptureUnmatched;
    struct revati_graph *g = obj->capture;
    for (uint32_t i = 0; i < g->njoined; i++) /* forked streams must have joined back by now */
        if (g->joined[i]->capture == g) g->joined[i]->capture = NULL;
    g->capturing = 0;
    g->njoined = 0;
    *out = g;
    obj->capture = NULL;
    int64_t now = revati_now();
    revati_emit(REC_API, 0, FN_cudaStreamEndCapture, 0, now, now, (uint64_t)(uintptr_t)s,
                ((struct revati_graph *)*out)->count, 0, 0);
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
    if (deps) *deps = NULL;
    if (edges) *edges = NULL;
    if (ndeps) *ndeps = 0;
    return cudaSuccess;
}
API cudaStreamGetCaptureInfo_ptsz(cudaStream_t s, int *st, unsigned long long *id, cudaGraph_t *g,
                                  const void **d, const void **e, size_t *n) {
    return cudaStreamGetCaptureInfo(s, st, id, g, d, e, n);
}
API cudaThreadExchangeStreamCaptureMode(int *mode) { (void)mode; return cudaSuccess; }
