/* The collector of `revati record --real`: preloaded into the traced program on a machine with
 * an NVIDIA GPU. It enables CUPTI's activity API (kernels, copies, memsets, synchronisations,
 * runtime and driver API calls), converts every completed record to a MeasuredRecord
 * (measured.h) and appends it to $REVATI_MEASURED_DIR/measured-<pid>.bin; revati writes the
 * trace from those files once the program has exited. The program runs on the real GPU, untouched: nothing here
 * blocks or fails it (an error is said once on stderr and collection stops). */
#include <cupti.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "measured.h"

#define BUFFER_BYTES (8u << 20)

static int out_fd = -1;

static void put(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w <= 0) return;
        c += w;
        n -= (size_t)w;
    }
}

static void emit(int fd, MeasuredRecord *m, const char *name) {
    m->name_len = name ? (uint32_t)strlen(name) : 0;
    char frame[sizeof *m + 512];
    size_t n = m->name_len < 512 ? m->name_len : 512;
    m->name_len = (uint32_t)n;
    memcpy(frame, m, sizeof *m);
    if (n) memcpy(frame + sizeof *m, name, n);
    put(fd, frame, sizeof *m + n); /* one write: records of threads never interleave */
}

static const char *api_name(CUpti_ActivityKind kind, uint32_t cbid) {
    const char *name = NULL;
    CUpti_CallbackDomain d =
        kind == CUPTI_ACTIVITY_KIND_RUNTIME ? CUPTI_CB_DOMAIN_RUNTIME_API : CUPTI_CB_DOMAIN_DRIVER_API;
    if (cuptiGetCallbackName(d, cbid, &name) != CUPTI_SUCCESS) return NULL;
    return name;
}

/* The fields every device-side record has. */
#define DEVICE_OP(m, r, k)                                                                  \
    ((m).kind = (k), (m).start = (r)->start, (m).end = (r)->end, (m).device = (r)->deviceId, \
     (m).stream = (r)->streamId, (m).correlation = (r)->correlationId,                      \
     (m).context = (r)->contextId)

/* One CUPTI record as a MeasuredRecord on fd; returns 1 if written, 0 for a kind we skip. */
__attribute__((visibility("default"))) int revati_measured_write(const CUpti_Activity *rec, int fd) {
    MeasuredRecord m;
    memset(&m, 0, sizeof m);
    switch (rec->kind) {
    case CUPTI_ACTIVITY_KIND_KERNEL:
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
        const CUpti_ActivityKernel10 *k = (const CUpti_ActivityKernel10 *)rec;
        DEVICE_OP(m, k, REVATI_M_KERNEL);
        m.grid[0] = k->gridX, m.grid[1] = k->gridY, m.grid[2] = k->gridZ;
        m.block[0] = k->blockX, m.block[1] = k->blockY, m.block[2] = k->blockZ;
        m.registers = k->registersPerThread;
        m.shared_mem = k->staticSharedMemory + k->dynamicSharedMemory;
        emit(fd, &m, k->name);
        return 1;
    }
    case CUPTI_ACTIVITY_KIND_MEMCPY: {
        const CUpti_ActivityMemcpy6 *c = (const CUpti_ActivityMemcpy6 *)rec;
        DEVICE_OP(m, c, REVATI_M_COPY);
        m.bytes = c->bytes, m.sub = c->copyKind;
        emit(fd, &m, NULL);
        return 1;
    }
    case CUPTI_ACTIVITY_KIND_MEMSET: {
        const CUpti_ActivityMemset4 *s = (const CUpti_ActivityMemset4 *)rec;
        DEVICE_OP(m, s, REVATI_M_MEMSET);
        m.bytes = s->bytes, m.sub = s->value;
        emit(fd, &m, NULL);
        return 1;
    }
    case CUPTI_ACTIVITY_KIND_SYNCHRONIZATION: {
        const CUpti_ActivitySynchronization2 *y = (const CUpti_ActivitySynchronization2 *)rec;
        m.kind = REVATI_M_SYNC;
        m.start = y->start, m.end = y->end, m.stream = y->streamId;
        m.correlation = y->correlationId, m.context = y->contextId;
        m.sub = y->type, m.result = (int32_t)y->returnValue, m.event = y->cudaEventId;
        emit(fd, &m, NULL);
        return 1;
    }
    case CUPTI_ACTIVITY_KIND_RUNTIME:
    case CUPTI_ACTIVITY_KIND_DRIVER: {
        const CUpti_ActivityAPI *a = (const CUpti_ActivityAPI *)rec;
        m.kind = REVATI_M_API;
        m.start = a->start, m.end = a->end, m.correlation = a->correlationId;
        m.pid = a->processId, m.thread = a->threadId, m.sub = a->cbid;
        m.result = (int32_t)a->returnValue;
        emit(fd, &m, api_name(rec->kind, a->cbid));
        return 1;
    }
    default:
        return 0;
    }
}

/* Every record of a completed CUPTI buffer; returns how many were written. */
__attribute__((visibility("default"))) int revati_measured_drain(uint8_t *buffer, size_t valid, int fd) {
    CUpti_Activity *rec = NULL;
    int n = 0;
    while (cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) n += revati_measured_write(rec, fd);
    return n;
}

__attribute__((visibility("default"))) void revati_measured_header(int fd, uint64_t t0) {
    MeasuredHeader h = {REVATI_MEASURED_MAGIC, REVATI_MEASURED_VERSION, (uint32_t)getpid(),
                        (uint32_t)sizeof(MeasuredRecord), t0};
    put(fd, &h, sizeof h);
}

static void CUPTIAPI buffer_requested(uint8_t **buffer, size_t *size, size_t *max_records) {
    *buffer = aligned_alloc(8, BUFFER_BYTES);
    *size = *buffer ? BUFFER_BYTES : 0;
    *max_records = 0;
}

static void CUPTIAPI buffer_completed(CUcontext ctx, uint32_t stream, uint8_t *buffer, size_t size,
                                      size_t valid) {
    (void)ctx, (void)stream, (void)size;
    if (out_fd >= 0 && valid) revati_measured_drain(buffer, valid, out_fd);
    free(buffer);
}

static const CUpti_ActivityKind KINDS[] = {
    CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY,
    CUPTI_ACTIVITY_KIND_MEMSET,            CUPTI_ACTIVITY_KIND_SYNCHRONIZATION,
    CUPTI_ACTIVITY_KIND_RUNTIME,           CUPTI_ACTIVITY_KIND_DRIVER,
};

__attribute__((constructor)) static void collector_start(void) {
    const char *dir = getenv("REVATI_MEASURED_DIR");
    if (!dir || !*dir) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/measured-%d.bin", dir, (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "revati: cannot open %s; measuring nothing\n", path);
        return;
    }
    uint64_t t0 = 0;
    cuptiGetTimestamp(&t0);
    if (cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed) != CUPTI_SUCCESS) {
        fprintf(stderr, "revati: CUPTI refused the activity callbacks; measuring nothing\n");
        close(fd);
        return;
    }
    for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++) cuptiActivityEnable(KINDS[i]);
    revati_measured_header(fd, t0);
    out_fd = fd;
}

__attribute__((destructor)) static void collector_stop(void) {
    if (out_fd < 0) return;
    cuptiActivityFlushAll(1);
    close(out_fd);
    out_fd = -1;
}
