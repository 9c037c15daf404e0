/* Test program for the CUPTI collector, no GPU needed: fills one activity buffer with a
 * kernel, a memcpy, a memset, a stream synchronisation and two runtime API records in CUPTI's own
 * struct layouts (cupti_activity.h), and hands it to the collector's drain function, which
 * walks it with cuptiActivityGetNextRecord exactly as on a GPU. Usage: cupti_buffer OUT_FILE */
#include <cupti.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int revati_measured_drain(uint8_t *buffer, size_t valid, int fd);
void revati_measured_header(int fd, uint64_t t0);

static size_t place(uint8_t *buf, size_t at, const void *rec, size_t size) {
    memcpy(buf + at, rec, size);
    return at + ((size + 7) & ~(size_t)7);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    static uint8_t buf[1 << 16] __attribute__((aligned(8)));
    size_t at = 0;

    CUpti_ActivityAPI api;
    memset(&api, 0, sizeof api);
    api.kind = CUPTI_ACTIVITY_KIND_RUNTIME;
    api.cbid = CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000;
    api.start = 1000100, api.end = 1003100, api.processId = 4242, api.threadId = 77;
    api.correlationId = 11, api.returnValue = 0;
    at = place(buf, at, &api, sizeof api);

    CUpti_ActivityKernel10 k;
    memset(&k, 0, sizeof k);
    k.kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
    k.start = 1005000, k.end = 1017500, k.deviceId = 0, k.contextId = 1, k.streamId = 7;
    k.correlationId = 11, k.gridX = 120, k.gridY = 2, k.gridZ = 1;
    k.blockX = 256, k.blockY = 1, k.blockZ = 1, k.registersPerThread = 40;
    k.staticSharedMemory = 1024, k.dynamicSharedMemory = 3072;
    k.name = "_Z10vector_addPKfS0_Pfi";
    at = place(buf, at, &k, sizeof k);

    CUpti_ActivityMemcpy6 c;
    memset(&c, 0, sizeof c);
    c.kind = CUPTI_ACTIVITY_KIND_MEMCPY;
    c.copyKind = CUPTI_ACTIVITY_MEMCPY_KIND_DTOH, c.bytes = 1 << 20;
    c.start = 1018000, c.end = 1058000, c.deviceId = 0, c.contextId = 1, c.streamId = 7;
    c.correlationId = 12;
    at = place(buf, at, &c, sizeof c);

    CUpti_ActivityMemset4 s;
    memset(&s, 0, sizeof s);
    s.kind = CUPTI_ACTIVITY_KIND_MEMSET;
    s.value = 0xab, s.bytes = 4096, s.start = 1060000, s.end = 1061500;
    s.deviceId = 0, s.contextId = 1, s.streamId = 9, s.correlationId = 13;
    at = place(buf, at, &s, sizeof s);

    CUpti_ActivitySynchronization2 y;
    memset(&y, 0, sizeof y);
    y.kind = CUPTI_ACTIVITY_KIND_SYNCHRONIZATION;
    y.type = CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_SYNCHRONIZE;
    y.start = 1018100, y.end = 1058200, y.correlationId = 14, y.contextId = 1, y.streamId = 7;
    y.cudaEventId = 0, y.returnValue = 0;
    at = place(buf, at, &y, sizeof y);

    CUpti_ActivityAPI sync_api = api;
    sync_api.cbid = CUPTI_RUNTIME_TRACE_CBID_cudaStreamSynchronize_v3020;
    sync_api.start = 1018050, sync_api.end = 1058300, sync_api.correlationId = 14;
    at = place(buf, at, &sync_api, sizeof sync_api);

    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return 3;
    revati_measured_header(fd, 1000000);
    int n = revati_measured_drain(buf, at, fd);
    close(fd);
    printf("records=%d\n", n);
    return n == 6 ? 0 : 4;
}
