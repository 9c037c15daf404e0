// Test program for the runtime families revati emulates beyond the basics: stream attributes,
// memory pools and stream-ordered allocation (pool IPC included), graph memory nodes, every node
// type of cudaGraphAddNode, conditional nodes. One scenario per argv[1].
// Built by the tests with: nvcc -cudart shared -o runtime_families runtime_families.cu
// Each mode prints `key=value` lines the tests parse, and exits non-zero on an unexpected error.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cuda_runtime.h>

#include "cuda_check.h"

// The error a call returns, by name (the call is expected to fail).
#define ERR(call) cudaGetErrorName(call)

__global__ void touch(float *x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += 1.0f;
}

static uint64_t pool_attr(cudaMemPool_t pool, cudaMemPoolAttr attr) {
    uint64_t v = 0;
    CHECK(cudaMemPoolGetAttribute(pool, attr, &v));
    return v;
}

static size_t free_bytes() {
    size_t free_b, total;
    CHECK(cudaMemGetInfo(&free_b, &total));
    return free_b;
}

// Stream attributes: what is set is read back; invalid values are refused.
static int stream_attrs() {
    cudaStream_t s, s2;
    CHECK(cudaStreamCreate(&s));
    CHECK(cudaStreamCreate(&s2));
    float *x;
    CHECK(cudaMalloc(&x, 1 << 20));
    cudaStreamAttrValue v = {};
    v.accessPolicyWindow.base_ptr = x;
    v.accessPolicyWindow.num_bytes = 1 << 20;
    v.accessPolicyWindow.hitRatio = 0.6f;
    v.accessPolicyWindow.hitProp = cudaAccessPropertyPersisting;
    v.accessPolicyWindow.missProp = cudaAccessPropertyStreaming;
    CHECK(cudaStreamSetAttribute(s, cudaStreamAttributeAccessPolicyWindow, &v));
    cudaStreamAttrValue got = {};
    CHECK(cudaStreamGetAttribute(s, cudaStreamAttributeAccessPolicyWindow, &got));
    printf("window_base_ok=%d\nwindow_bytes=%zu\nwindow_hit_ratio=%.2f\nwindow_hit_prop=%d\nwindow_miss_prop=%d\n",
           got.accessPolicyWindow.base_ptr == x, got.accessPolicyWindow.num_bytes,
           got.accessPolicyWindow.hitRatio, (int)got.accessPolicyWindow.hitProp,
           (int)got.accessPolicyWindow.missProp);
    CHECK(cudaStreamGetAttribute(s2, cudaStreamAttributeAccessPolicyWindow, &got));
    printf("other_stream_window_bytes=%zu\n", got.accessPolicyWindow.num_bytes);
    CHECK(cudaStreamGetAttribute(s, cudaStreamAttributeSynchronizationPolicy, &got));
    printf("sync_policy_default=%d\n", (int)got.syncPolicy);
    v = {};
    v.syncPolicy = cudaSyncPolicyBlockingSync;
    CHECK(cudaStreamSetAttribute(s, cudaStreamAttributeSynchronizationPolicy, &v));
    CHECK(cudaStreamGetAttribute(s, cudaStreamAttributeSynchronizationPolicy, &got));
    printf("sync_policy=%d\n", (int)got.syncPolicy);
    v = {};
    v.priority = -3;
    CHECK(cudaStreamSetAttribute(s, cudaStreamAttributePriority, &v));
    int prio = 0;
    CHECK(cudaStreamGetPriority(s, &prio));
    printf("priority=%d\n", prio);
    CHECK(cudaStreamCopyAttributes(s2, s));
    CHECK(cudaStreamGetAttribute(s2, cudaStreamAttributeAccessPolicyWindow, &got));
    CHECK(cudaStreamGetPriority(s2, &prio));
    printf("copied_window_bytes=%zu\ncopied_priority=%d\n", got.accessPolicyWindow.num_bytes, prio);
    v = {};
    v.accessPolicyWindow.num_bytes = 1 << 20;
    v.accessPolicyWindow.missProp = cudaAccessPropertyPersisting;  // not allowed for misses
    printf("bad_miss_prop=%s\n", ERR(cudaStreamSetAttribute(s, cudaStreamAttributeAccessPolicyWindow, &v)));
    v.accessPolicyWindow.missProp = cudaAccessPropertyNormal;
    v.accessPolicyWindow.num_bytes = (size_t)1 << 40;  // beyond accessPolicyMaxWindowSize
    printf("bad_window_size=%s\n", ERR(cudaStreamSetAttribute(s, cudaStreamAttributeAccessPolicyWindow, &v)));
    printf("launch_only_attr=%s\n", ERR(cudaStreamSetAttribute(s, cudaLaunchAttributeCooperative, &v)));
    CHECK(cudaGetLastError() == cudaErrorInvalidValue ? cudaSuccess : cudaErrorUnknown);
    touch<<<4, 256, 0, s>>>(x, 1024);
    CHECK(cudaStreamSynchronize(s));
    CHECK(cudaCtxResetPersistingL2Cache());
    CHECK(cudaStreamDestroy(s));
    CHECK(cudaStreamDestroy(s2));
    CHECK(cudaFree(x));
    return 0;
}

// The default pool: stream-ordered reuse, release at synchronisation, thresholds, capacity.
static int default_pool() {
    const size_t mb = 1 << 20;
    cudaStream_t s, s2;
    CHECK(cudaStreamCreate(&s));
    CHECK(cudaStreamCreate(&s2));
    cudaMemPool_t def, cur;
    CHECK(cudaDeviceGetDefaultMemPool(&def, 0));
    CHECK(cudaDeviceGetMemPool(&cur, 0));
    printf("current_is_default=%d\n", cur == def);
    size_t free0 = free_bytes();
    float *a, *b, *c;
    CHECK(cudaMallocAsync(&a, mb, s));
    printf("used_after_alloc=%llu\nreserved_after_alloc=%llu\nfree_drop=%zu\n",
           (unsigned long long)pool_attr(def, cudaMemPoolAttrUsedMemCurrent),
           (unsigned long long)pool_attr(def, cudaMemPoolAttrReservedMemCurrent), free0 - free_bytes());
    float host[256], back[256];
    for (int i = 0; i < 256; i++) host[i] = (float)i;
    CHECK(cudaMemcpyAsync(a, host, sizeof host, cudaMemcpyHostToDevice, s));
    touch<<<1, 256, 0, s>>>(a, 256);
    CHECK(cudaMemcpyAsync(back, a, sizeof back, cudaMemcpyDeviceToHost, s));
    CHECK(cudaFreeAsync(a, s));
    printf("used_after_free=%llu\nreserved_after_free=%llu\n",
           (unsigned long long)pool_attr(def, cudaMemPoolAttrUsedMemCurrent),
           (unsigned long long)pool_attr(def, cudaMemPoolAttrReservedMemCurrent));
    CHECK(cudaMallocAsync(&b, mb, s));
    printf("same_stream_reuse=%d\n", b == a);
    CHECK(cudaFreeAsync(b, s));
    CHECK(cudaMallocAsync(&c, mb, s2));
    printf("other_stream_reuse_before_sync=%d\nreserved_two=%llu\n", c == a,
           (unsigned long long)pool_attr(def, cudaMemPoolAttrReservedMemCurrent));
    CHECK(cudaFreeAsync(c, s2));
    CHECK(cudaStreamSynchronize(s));
    printf("copy_back_ok=%d\nreserved_after_sync=%llu\nfree_restored=%d\n", back[7] == 7.0f,
           (unsigned long long)pool_attr(def, cudaMemPoolAttrReservedMemCurrent), free_bytes() == free0);
    uint64_t keep = UINT64_MAX;
    CHECK(cudaMemPoolSetAttribute(def, cudaMemPoolAttrReleaseThreshold, &keep));
    CHECK(cudaMallocAsync(&a, 2 * mb, s));
    CHECK(cudaFreeAsync(a, s));
    CHECK(cudaStreamSynchronize(s));
    printf("reserved_kept_by_threshold=%llu\n",
           (unsigned long long)pool_attr(def, cudaMemPoolAttrReservedMemCurrent));
    CHECK(cudaMallocAsync(&b, 2 * mb, s2));
    printf("other_stream_reuse_after_sync=%d\n", b == a);
    CHECK(cudaFree(b));  // cudaFree takes stream-ordered memory too
    CHECK(cudaMemPoolTrimTo(def, 0));
    printf("reserved_after_trim=%llu\nused_high=%llu\n",
           (unsigned long long)pool_attr(def, cudaMemPoolAttrReservedMemCurrent),
           (unsigned long long)pool_attr(def, cudaMemPoolAttrUsedMemHigh));
    uint64_t zero = 0, five = 5;
    CHECK(cudaMemPoolSetAttribute(def, cudaMemPoolAttrUsedMemHigh, &zero));
    printf("used_high_reset=%llu\n", (unsigned long long)pool_attr(def, cudaMemPoolAttrUsedMemHigh));
    printf("high_set_nonzero=%s\n", ERR(cudaMemPoolSetAttribute(def, cudaMemPoolAttrUsedMemHigh, &five)));
    printf("destroy_default=%s\n", ERR(cudaMemPoolDestroy(def)));
    void *huge = nullptr;
    printf("beyond_capacity=%s\n", ERR(cudaMallocAsync(&huge, free0 + mb, s)));
    cudaGetLastError();
    CHECK(cudaStreamDestroy(s));
    CHECK(cudaStreamDestroy(s2));
    return 0;
}

// An explicit pool: maximum size, reuse flags, access, the device's current pool, destroy.
static int explicit_pool() {
    const size_t mb = 1 << 20;
    cudaStream_t s;
    CHECK(cudaStreamCreate(&s));
    cudaMemPoolProps props = {};
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = 0;
    props.maxSize = 4 * mb;
    cudaMemPool_t pool;
    CHECK(cudaMemPoolCreate(&pool, &props));
    void *a, *b;
    CHECK(cudaMallocFromPoolAsync(&a, 3 * mb, pool, s));
    printf("over_max_size=%s\n", ERR(cudaMallocFromPoolAsync(&b, 2 * mb, pool, s)));
    cudaGetLastError();
    int flag = 0;
    CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolReuseAllowOpportunistic, &flag));
    int got = -1;
    CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolReuseAllowOpportunistic, &got));
    printf("opportunistic=%d\n", got);
    CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolReuseFollowEventDependencies, &got));
    printf("follow_event_deps=%d\n", got);
    cudaMemLocation own = {cudaMemLocationTypeDevice, 0};
    cudaMemAccessFlags access;
    CHECK(cudaMemPoolGetAccess(&access, pool, &own));
    printf("own_access=%d\n", (int)access);
    cudaMemAccessDesc desc = {own, cudaMemAccessFlagsProtNone};
    printf("own_access_none=%s\n", ERR(cudaMemPoolSetAccess(pool, &desc, 1)));
    int devices = 0;
    CHECK(cudaGetDeviceCount(&devices));
    if (devices > 1) {
        cudaMemLocation peer = {cudaMemLocationTypeDevice, 1};
        CHECK(cudaMemPoolGetAccess(&access, pool, &peer));
        printf("peer_access_before=%d\n", (int)access);
        desc = {peer, cudaMemAccessFlagsProtReadWrite};
        CHECK(cudaMemPoolSetAccess(pool, &desc, 1));
        CHECK(cudaMemPoolGetAccess(&access, pool, &peer));
        printf("peer_access_after=%d\n", (int)access);
    }
    cudaGetLastError();
    CHECK(cudaDeviceSetMemPool(0, pool));
    cudaMemPool_t cur;
    CHECK(cudaDeviceGetMemPool(&cur, 0));
    void *c;
    CHECK(cudaMallocAsync(&c, mb / 2, s));  // from the device's current pool: ours
    printf("current_is_ours=%d\nused_with_current=%llu\n", cur == pool,
           (unsigned long long)pool_attr(pool, cudaMemPoolAttrUsedMemCurrent));
    CHECK(cudaFreeAsync(c, s));
    CHECK(cudaMemPoolDestroy(pool));  // a is still allocated: freed later, then released
    CHECK(cudaDeviceGetMemPool(&cur, 0));
    cudaMemPool_t def;
    CHECK(cudaDeviceGetDefaultMemPool(&def, 0));
    printf("current_after_destroy_is_default=%d\n", cur == def);
    size_t before = free_bytes();
    CHECK(cudaFreeAsync(a, s));
    CHECK(cudaStreamSynchronize(s));
    printf("freed_after_destroy=%zu\n", free_bytes() - before);
    CHECK(cudaStreamDestroy(s));
    return 0;
}

// Pool IPC: the parent exports a pool and a pointer to a child it forked and exec'd; the child
// reads what the parent wrote and writes an answer the parent reads.
static int send_fd(int sock, int fd, const void *data, size_t n) {
    char ctrl[CMSG_SPACE(sizeof(int))] = {};
    iovec iov = {const_cast<void *>(data), n};
    msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl;
    msg.msg_controllen = sizeof ctrl;
    cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    return sendmsg(sock, &msg, 0) == (ssize_t)n ? 0 : -1;
}

static int recv_fd(int sock, void *data, size_t n) {
    char ctrl[CMSG_SPACE(sizeof(int))] = {};
    iovec iov = {data, n};
    msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl;
    msg.msg_controllen = sizeof ctrl;
    if (recvmsg(sock, &msg, MSG_WAITALL) != (ssize_t)n) return -1;
    int fd = -1;
    memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof fd);
    return fd;
}

static int ipc_child(int sock) {
    cudaMemPoolPtrExportData data;
    int fd = recv_fd(sock, &data, sizeof data);
    if (fd < 0) return 4;
    cudaMemPool_t pool;
    CHECK(cudaMemPoolImportFromShareableHandle(&pool, (void *)(uintptr_t)fd, cudaMemHandleTypePosixFileDescriptor, 0));
    close(fd);
    char *p;
    CHECK(cudaMemPoolImportPointer((void **)&p, pool, &data));
    char text[64] = {};
    CHECK(cudaMemcpy(text, p, sizeof text, cudaMemcpyDeviceToHost));
    printf("child_read=%s\n", text);
    const char answer[] = "answer from the child";
    CHECK(cudaMemcpy(p + 1024, answer, sizeof answer, cudaMemcpyHostToDevice));
    CHECK(cudaFree(p));
    CHECK(cudaMemPoolDestroy(pool));
    fflush(stdout);
    char done = 1;
    return write(sock, &done, 1) == 1 ? 0 : 5;
}

static int pool_ipc(const char *self) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 4;
    pid_t pid = fork();  // before any CUDA call, as a GPU's driver requires
    if (pid == 0) {
        close(sv[0]);
        char arg[16];
        snprintf(arg, sizeof arg, "%d", sv[1]);
        execl(self, self, "ipc_child", arg, (char *)nullptr);
        _exit(127);
    }
    close(sv[1]);
    cudaMemPoolProps props = {};
    props.allocType = cudaMemAllocationTypePinned;
    props.handleTypes = cudaMemHandleTypePosixFileDescriptor;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = 0;
    cudaMemPool_t pool;
    CHECK(cudaMemPoolCreate(&pool, &props));
    cudaStream_t s;
    CHECK(cudaStreamCreate(&s));
    char *p;
    CHECK(cudaMallocFromPoolAsync((void **)&p, 4096, pool, s));
    const char hello[] = "hello from the parent";
    CHECK(cudaMemcpyAsync(p, hello, sizeof hello, cudaMemcpyHostToDevice, s));
    CHECK(cudaStreamSynchronize(s));
    int fd = -1;
    CHECK(cudaMemPoolExportToShareableHandle(&fd, pool, cudaMemHandleTypePosixFileDescriptor, 0));
    cudaMemPoolPtrExportData data;
    CHECK(cudaMemPoolExportPointer(&data, p));
    if (send_fd(sv[0], fd, &data, sizeof data) != 0) return 4;
    close(fd);
    char done = 0;
    if (read(sv[0], &done, 1) != 1) return 5;
    char text[64] = {};
    CHECK(cudaMemcpy(text, p + 1024, sizeof text, cudaMemcpyDeviceToHost));
    int status = 0;
    waitpid(pid, &status, 0);
    printf("parent_read=%s\nchild_status=%d\n", text, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    cudaMemPool_t plain;
    CHECK(cudaDeviceGetDefaultMemPool(&plain, 0));
    printf("export_plain_pool=%s\n", ERR(cudaMemPoolExportToShareableHandle(&fd, plain, cudaMemHandleTypePosixFileDescriptor, 0)));
    CHECK(cudaFreeAsync(p, s));
    CHECK(cudaStreamSynchronize(s));
    CHECK(cudaMemPoolDestroy(pool));
    return 0;
}

// Legacy IPC: a cudaMalloc allocation and an event shared with a child through their handles.
struct LegacyHandles {
    cudaIpcMemHandle_t mem;
    cudaIpcEventHandle_t event;
};

static int legacy_child(int sock) {
    LegacyHandles h;
    if (read(sock, &h, sizeof h) != (ssize_t)sizeof h) return 4;
    char *p;
    CHECK(cudaIpcOpenMemHandle((void **)&p, h.mem, cudaIpcMemLazyEnablePeerAccess));
    cudaEvent_t ev;
    CHECK(cudaIpcOpenEventHandle(&ev, h.event));
    CHECK(cudaStreamWaitEvent(0, ev, 0));
    char text[64] = {};
    CHECK(cudaMemcpy(text, p, sizeof text, cudaMemcpyDeviceToHost));
    printf("legacy_child_read=%s\n", text);
    const char answer[] = "legacy answer";
    CHECK(cudaMemcpy(p + 512, answer, sizeof answer, cudaMemcpyHostToDevice));
    CHECK(cudaIpcCloseMemHandle(p));
    CHECK(cudaEventDestroy(ev));
    fflush(stdout);
    char done = 1;
    return write(sock, &done, 1) == 1 ? 0 : 5;
}

// Files in the run's folder that hold an exported allocation's bytes (-1: no folder).
static int shared_files() {
    const char *dir = getenv("REVATI_RUN_DIR");
    DIR *d = dir ? opendir(dir) : nullptr;
    if (!d) return -1;
    int n = 0;
    for (dirent *e; (e = readdir(d));) n += !strncmp(e->d_name, "ipc-", 4);
    closedir(d);
    return n;
}

static int legacy_ipc(const char *self) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 4;
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        char arg[16];
        snprintf(arg, sizeof arg, "%d", sv[1]);
        execl(self, self, "legacy_child", arg, (char *)nullptr);
        _exit(127);
    }
    close(sv[1]);
    char *p;
    CHECK(cudaMalloc(&p, 4096));
    const char hello[] = "legacy hello";
    CHECK(cudaMemcpy(p, hello, sizeof hello, cudaMemcpyHostToDevice));
    LegacyHandles h;
    CHECK(cudaIpcGetMemHandle(&h.mem, p));
    cudaEvent_t ev;
    CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming | cudaEventInterprocess));
    CHECK(cudaEventRecord(ev, 0));
    CHECK(cudaIpcGetEventHandle(&h.event, ev));
    void *own = nullptr;
    printf("open_own_handle=%d\n", (int)cudaIpcOpenMemHandle(&own, h.mem, cudaIpcMemLazyEnablePeerAccess));
    cudaGetLastError();
    if (write(sv[0], &h, sizeof h) != (ssize_t)sizeof h) return 4;
    char done = 0;
    if (read(sv[0], &done, 1) != 1) return 5;
    char text[64] = {};
    CHECK(cudaMemcpy(text, p + 512, sizeof text, cudaMemcpyDeviceToHost));
    int status = 0;
    waitpid(pid, &status, 0);
    printf("legacy_parent_read=%s\nlegacy_child_status=%d\n", text, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    printf("shared_files_before_free=%d\n", shared_files());
    CHECK(cudaFree(p));
    printf("shared_files_after_free=%d\n", shared_files());
    CHECK(cudaEventDestroy(ev));
    return 0;
}

// ---- graphs: memory nodes, every node type through cudaGraphAddNode, conditional nodes -------

static uint64_t graph_attr(cudaGraphMemAttributeType attr) {
    uint64_t v = 0;
    CHECK(cudaDeviceGetGraphMemAttribute(0, attr, &v));
    return v;
}

static cudaMemAllocNodeParams alloc_params(size_t bytes) {
    cudaMemAllocNodeParams p = {};
    p.poolProps.allocType = cudaMemAllocationTypePinned;
    p.poolProps.location.type = cudaMemLocationTypeDevice;
    p.poolProps.location.id = 0;
    p.bytesize = bytes;
    return p;
}

// Memory nodes: fixed addresses, used/reserved counters, trim, captured cudaMallocAsync.
static int graph_mem() {
    const size_t mb = 1 << 20;
    size_t free0 = free_bytes();
    cudaGraph_t g;
    CHECK(cudaGraphCreate(&g, 0));
    cudaMemAllocNodeParams ap = alloc_params(mb);
    cudaGraphNode_t alloc, kern, free_node;
    CHECK(cudaGraphAddMemAllocNode(&alloc, g, nullptr, 0, &ap));
    float *buf = (float *)ap.dptr;
    int n = 1024;
    void *args[] = {&buf, &n};
    cudaKernelNodeParams kp = {};
    kp.func = (void *)touch;
    kp.gridDim = dim3(4);
    kp.blockDim = dim3(256);
    kp.kernelParams = args;
    CHECK(cudaGraphAddKernelNode(&kern, g, &alloc, 1, &kp));
    CHECK(cudaGraphAddMemFreeNode(&free_node, g, &kern, 1, buf));
    cudaMemAllocNodeParams got = {};
    CHECK(cudaGraphMemAllocNodeGetParams(alloc, &got));
    void *freed = nullptr;
    CHECK(cudaGraphMemFreeNodeGetParams(free_node, &freed));
    printf("params_ok=%d\nreserved_after_create=%llu\nused_after_create=%llu\nfree_drop=%zu\n",
           got.dptr == buf && got.bytesize == mb && freed == buf,
           (unsigned long long)graph_attr(cudaGraphMemAttrReservedMemCurrent),
           (unsigned long long)graph_attr(cudaGraphMemAttrUsedMemCurrent), free0 - free_bytes());
    cudaGraphExec_t e;
    CHECK(cudaGraphInstantiate(&e, g, 0));
    cudaStream_t s;
    CHECK(cudaStreamCreate(&s));
    CHECK(cudaGraphLaunch(e, s));
    CHECK(cudaStreamSynchronize(s));
    printf("used_after_launch=%llu\nused_high=%llu\n",
           (unsigned long long)graph_attr(cudaGraphMemAttrUsedMemCurrent),
           (unsigned long long)graph_attr(cudaGraphMemAttrUsedMemHigh));
    // Captured: cudaMallocAsync .. cudaFreeAsync become allocation and free nodes.
    cudaGraph_t cg;
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    unsigned char *p;
    unsigned char host[4096] = {};
    CHECK(cudaMallocAsync((void **)&p, sizeof host, s));
    CHECK(cudaMemsetAsync(p, 7, sizeof host, s));
    CHECK(cudaMemcpyAsync(host, p, sizeof host, cudaMemcpyDeviceToHost, s));
    CHECK(cudaStreamEndCapture(s, &cg));
    size_t nodes = 0;
    CHECK(cudaGraphGetNodes(cg, nullptr, &nodes));
    cudaGraphExec_t ce;
    CHECK(cudaGraphInstantiate(&ce, cg, 0));
    CHECK(cudaGraphLaunch(ce, s));
    CHECK(cudaStreamSynchronize(s));
    printf("captured_nodes=%zu\ncaptured_bytes_ok=%d\nused_while_live=%llu\n", nodes, host[4095] == 7,
           (unsigned long long)graph_attr(cudaGraphMemAttrUsedMemCurrent));
    CHECK(cudaFreeAsync(p, s));  // the allocation outlives its graph until freed
    CHECK(cudaStreamSynchronize(s));
    printf("used_after_free=%llu\n", (unsigned long long)graph_attr(cudaGraphMemAttrUsedMemCurrent));
    CHECK(cudaDeviceGraphMemTrim(0));
    printf("reserved_after_trim=%llu\nfree_restored=%d\n",
           (unsigned long long)graph_attr(cudaGraphMemAttrReservedMemCurrent), free_bytes() == free0);
    CHECK(cudaGraphLaunch(e, s));  // takes its memory back
    CHECK(cudaStreamSynchronize(s));
    printf("reserved_after_relaunch=%llu\n",
           (unsigned long long)graph_attr(cudaGraphMemAttrReservedMemCurrent));
    uint64_t zero = 0, five = 5;
    CHECK(cudaDeviceSetGraphMemAttribute(0, cudaGraphMemAttrUsedMemHigh, &zero));
    printf("used_high_reset=%llu\n", (unsigned long long)graph_attr(cudaGraphMemAttrUsedMemHigh));
    printf("set_used_current=%s\n", ERR(cudaDeviceSetGraphMemAttribute(0, cudaGraphMemAttrUsedMemCurrent, &five)));
    printf("free_node_not_graph_memory=%s\n", ERR(cudaGraphAddMemFreeNode(&free_node, g, nullptr, 0, host)));
    cudaGetLastError();
    CHECK(cudaGraphExecDestroy(e));
    CHECK(cudaGraphExecDestroy(ce));
    CHECK(cudaGraphDestroy(g));
    CHECK(cudaGraphDestroy(cg));
    CHECK(cudaStreamDestroy(s));
    return 0;
}

static int host_runs = 0;
static void count_run(void *) { host_runs++; }

// Add a node made from np after the last one of nodes[0..*k) (a chain).
static void chain(cudaGraph_t g, cudaGraphNode_t *nodes, int *k, cudaGraphNodeParams *np) {
    CHECK(cudaGraphAddNode(&nodes[*k], g, *k ? &nodes[*k - 1] : nullptr, nullptr, *k ? 1 : 0, np));
    (*k)++;
}

// cudaGraphAddNode with every node type revati emulates, launched twice.
static int graph_nodes() {
    unsigned char *dev, *child_buf;
    CHECK(cudaMalloc(&dev, 4096));
    CHECK(cudaMalloc(&child_buf, 4096));
    unsigned char host[4096] = {}, child_host[4096] = {};
    cudaGraph_t child;
    CHECK(cudaGraphCreate(&child, 0));
    cudaGraphNodeParams np = {};
    np.type = cudaGraphNodeTypeMemset;
    np.memset.dst = child_buf;
    np.memset.value = 5;
    np.memset.elementSize = 1;
    np.memset.width = 4096;
    np.memset.height = 1;
    cudaGraphNode_t m;
    CHECK(cudaGraphAddNode(&m, child, nullptr, nullptr, 0, &np));
    cudaGraph_t g;
    CHECK(cudaGraphCreate(&g, 0));
    cudaEvent_t before, after;
    CHECK(cudaEventCreate(&before));
    CHECK(cudaEventCreate(&after));
    cudaGraphNode_t nodes[12];
    int k = 0;
    np = {};
    np.type = cudaGraphNodeTypeEventRecord;
    np.eventRecord.event = before;
    chain(g, nodes, &k, &np);
    np = {};
    np.type = cudaGraphNodeTypeGraph;
    np.graph.graph = child;
    chain(g, nodes, &k, &np);
    np = {};
    np.type = cudaGraphNodeTypeMemcpy;
    np.memcpy.copyParams.srcPtr = make_cudaPitchedPtr(child_buf, 4096, 4096, 1);
    np.memcpy.copyParams.dstPtr = make_cudaPitchedPtr(child_host, 4096, 4096, 1);
    np.memcpy.copyParams.extent = make_cudaExtent(4096, 1, 1);
    np.memcpy.copyParams.kind = cudaMemcpyDeviceToHost;
    chain(g, nodes, &k, &np);
    np = {};
    np.type = cudaGraphNodeTypeMemAlloc;
    np.alloc.poolProps.allocType = cudaMemAllocationTypePinned;
    np.alloc.poolProps.location.type = cudaMemLocationTypeDevice;
    np.alloc.bytesize = 1 << 16;
    chain(g, nodes, &k, &np);
    float *scratch = (float *)np.alloc.dptr;
    int n = 1 << 14;
    void *args[] = {&scratch, &n};
    np = {};
    np.type = cudaGraphNodeTypeKernel;
    np.kernel.func = (void *)touch;
    np.kernel.gridDim = dim3(64);
    np.kernel.blockDim = dim3(256);
    np.kernel.kernelParams = args;
    chain(g, nodes, &k, &np);
    np = {};
    np.type = cudaGraphNodeTypeMemFree;
    np.free.dptr = scratch;
    chain(g, nodes, &k, &np);
    np = {};
    np.type = cudaGraphNodeTypeMemset;
    np.memset.dst = dev;
    np.memset.value = 9;
    np.memset.elementSize = 1;
    np.memset.width = 4096;
    np.memset.height = 1;
    chain(g, nodes, &k, &np);
    np = {};
    np.type = cudaGraphNodeTypeMemcpy;
    np.memcpy.copyParams.srcPtr = make_cudaPitchedPtr(dev, 4096, 4096, 1);
    np.memcpy.copyParams.dstPtr = make_cudaPitchedPtr(host, 4096, 4096, 1);
    np.memcpy.copyParams.extent = make_cudaExtent(4096, 1, 1);
    np.memcpy.copyParams.kind = cudaMemcpyDeviceToHost;
    chain(g, nodes, &k, &np);
    np = {};
    np.type = cudaGraphNodeTypeHost;
    np.host.fn = count_run;
    chain(g, nodes, &k, &np);
    np = {};
    np.type = cudaGraphNodeTypeEmpty;
    chain(g, nodes, &k, &np);
    np = {};
    np.type = cudaGraphNodeTypeEventRecord;
    np.eventRecord.event = after;
    chain(g, nodes, &k, &np);
    np = {};
    np.type = cudaGraphNodeTypeWaitEvent;
    np.eventWait.event = after;
    chain(g, nodes, &k, &np);
    np = {};
    np.type = cudaGraphNodeTypeExtSemaphoreSignal;
    printf("ext_semaphore_node=%s\n", ERR(cudaGraphAddNode(&m, g, nullptr, nullptr, 0, &np)));
    cudaGetLastError();
    cudaGraph_t inner;
    CHECK(cudaGraphChildGraphNodeGetGraph(nodes[1], &inner));
    size_t inner_nodes = 0;
    CHECK(cudaGraphGetNodes(inner, nullptr, &inner_nodes));
    cudaEvent_t ev;
    CHECK(cudaGraphEventRecordNodeGetEvent(nodes[10], &ev));
    printf("child_nodes=%zu\nrecord_event_ok=%d\n", inner_nodes, ev == after);
    cudaGraphNodeType types[3];
    for (int i = 0; i < 3; i++) CHECK(cudaGraphNodeGetType(nodes[i], &types[i]));
    printf("node_types=%d,%d,%d\n", (int)types[0], (int)types[1], (int)types[2]);
    cudaStream_t s;
    CHECK(cudaStreamCreate(&s));
    cudaGraphInstantiateParams ip = {};
    ip.uploadStream = s;
    cudaGraphExec_t e;
    CHECK(cudaGraphInstantiateWithParams(&e, g, &ip));
    printf("instantiate_result=%d\n", (int)ip.result_out);
    for (int i = 0; i < 2; i++) CHECK(cudaGraphLaunch(e, s));
    CHECK(cudaStreamSynchronize(s));
    float ms = -1;
    CHECK(cudaEventElapsedTime(&ms, before, after));
    printf("host_runs=%d\nchild_memset_ok=%d\nmemset_ok=%d\nelapsed_positive=%d\n", host_runs,
           child_host[100] == 5, host[100] == 9, ms > 0);
    CHECK(cudaGraphExecDestroy(e));
    CHECK(cudaGraphDestroy(g));
    CHECK(cudaGraphDestroy(child));
    CHECK(cudaStreamDestroy(s));
    return 0;
}

// A memset node writing `value` into dst, in graph g.
static void add_memset(cudaGraph_t g, void *dst, int value) {
    cudaGraphNodeParams np = {};
    np.type = cudaGraphNodeTypeMemset;
    np.memset.dst = dst;
    np.memset.value = value;
    np.memset.elementSize = 1;
    np.memset.width = 64;
    np.memset.height = 1;
    cudaGraphNode_t node;
    CHECK(cudaGraphAddNode(&node, g, nullptr, nullptr, 0, &np));
}

// A conditional node of `type` with `size` bodies on `handle`; returns its bodies.
static cudaGraph_t *add_conditional(cudaGraph_t g, cudaGraphConditionalHandle h, cudaGraphConditionalNodeType type,
                                    unsigned size) {
    cudaGraphNodeParams np = {};
    np.type = cudaGraphNodeTypeConditional;
    np.conditional.handle = h;
    np.conditional.type = type;
    np.conditional.size = size;
    cudaGraphNode_t node;
    CHECK(cudaGraphAddNode(&node, g, nullptr, nullptr, 0, &np));
    return np.conditional.phGraph_out;
}

// Conditional nodes: the handle's default value decides (device code does not run).
static int graph_cond() {
    unsigned char *dev;
    CHECK(cudaMalloc(&dev, 6 * 64));
    CHECK(cudaMemset(dev, 0, 6 * 64));
    cudaGraph_t g;
    CHECK(cudaGraphCreate(&g, 0));
    cudaGraphConditionalHandle h_if, h_else, h_while, h_switch, h_off;
    CHECK(cudaGraphConditionalHandleCreate(&h_if, g, 1, cudaGraphCondAssignDefault));
    CHECK(cudaGraphConditionalHandleCreate(&h_else, g, 0, cudaGraphCondAssignDefault));
    CHECK(cudaGraphConditionalHandleCreate(&h_while, g, 1, cudaGraphCondAssignDefault));
    CHECK(cudaGraphConditionalHandleCreate(&h_switch, g, 2, 0));
    CHECK(cudaGraphConditionalHandleCreate(&h_off, g, 0, 0));
    cudaGraph_t *b = add_conditional(g, h_if, cudaGraphCondTypeIf, 1);
    add_memset(b[0], dev + 0 * 64, 1);                    // runs
    b = add_conditional(g, h_else, cudaGraphCondTypeIf, 2);
    add_memset(b[0], dev + 1 * 64, 2);                    // skipped
    add_memset(b[1], dev + 1 * 64, 3);                    // the else branch runs
    b = add_conditional(g, h_while, cudaGraphCondTypeWhile, 1);
    add_memset(b[0], dev + 2 * 64, 4);                    // once
    b = add_conditional(g, h_switch, cudaGraphCondTypeSwitch, 3);
    for (int i = 0; i < 3; i++) add_memset(b[i], dev + 3 * 64, 10 + i);  // body 2 runs
    b = add_conditional(g, h_off, cudaGraphCondTypeWhile, 1);
    add_memset(b[0], dev + 4 * 64, 5);                    // never
    cudaGraphConditionalHandle h_nested;
    b = add_conditional(g, h_if, cudaGraphCondTypeIf, 1);
    CHECK(cudaGraphConditionalHandleCreate(&h_nested, b[0], 1, 0));
    cudaGraph_t *inner = add_conditional(b[0], h_nested, cudaGraphCondTypeSwitch, 2);
    add_memset(inner[1], dev + 5 * 64, 6);                // nested: runs
    cudaGraphNodeParams bad = {};
    bad.type = cudaGraphNodeTypeConditional;
    bad.conditional.handle = h_if;
    bad.conditional.type = cudaGraphCondTypeWhile;
    bad.conditional.size = 2;
    cudaGraphNode_t node;
    printf("while_two_bodies=%s\n", ERR(cudaGraphAddNode(&node, g, nullptr, nullptr, 0, &bad)));
    cudaGetLastError();
    cudaGraphExec_t e;
    CHECK(cudaGraphInstantiate(&e, g, 0));
    CHECK(cudaGraphLaunch(e, 0));
    unsigned char host[6 * 64];
    CHECK(cudaMemcpy(host, dev, sizeof host, cudaMemcpyDeviceToHost));
    printf("if=%d\nelse=%d\nwhile=%d\nswitch=%d\nwhile_off=%d\nnested=%d\n", host[0], host[64], host[128],
           host[192], host[256], host[320]);
    CHECK(cudaGraphExecDestroy(e));
    CHECK(cudaGraphDestroy(g));
    CHECK(cudaFree(dev));
    return 0;
}

// Capture around a conditional node (as graphConditionalNodes does): the body is captured into
// the graph the node made; then an instantiated kernel node gets new launch parameters.
static int graph_capture_into() {
    unsigned char *dev;
    CHECK(cudaMalloc(&dev, 64));
    CHECK(cudaMemset(dev, 0, 64));
    float *x;
    CHECK(cudaMalloc(&x, 1 << 16));
    int n = 1 << 14;
    cudaStream_t s, body_stream;
    CHECK(cudaStreamCreate(&s));
    CHECK(cudaStreamCreate(&body_stream));
    cudaGraph_t g;
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    touch<<<4, 256, 0, s>>>(x, n);
    cudaStreamCaptureStatus status;
    cudaGraph_t capturing;
    const cudaGraphNode_t *deps;
    size_t ndeps = 0;
    CHECK(cudaStreamGetCaptureInfo(s, &status, nullptr, &capturing, &deps, nullptr, &ndeps));
    printf("capture_status=%d\ncapture_leaves=%zu\n", (int)status, ndeps);
    cudaGraphConditionalHandle h;
    CHECK(cudaGraphConditionalHandleCreate(&h, capturing, 1, cudaGraphCondAssignDefault));
    cudaGraphNodeParams np = {};
    np.type = cudaGraphNodeTypeConditional;
    np.conditional.handle = h;
    np.conditional.type = cudaGraphCondTypeIf;
    np.conditional.size = 1;
    cudaGraphNode_t cond;
    CHECK(cudaGraphAddNode(&cond, capturing, deps, nullptr, ndeps, &np));
    CHECK(cudaStreamUpdateCaptureDependencies(s, &cond, nullptr, 1, cudaStreamSetCaptureDependencies));
    touch<<<8, 256, 0, s>>>(x, n);  // after the conditional node
    CHECK(cudaStreamEndCapture(s, &g));
    cudaGraph_t body = np.conditional.phGraph_out[0];
    CHECK(cudaStreamBeginCaptureToGraph(body_stream, body, nullptr, nullptr, 0, cudaStreamCaptureModeGlobal));
    CHECK(cudaMemsetAsync(dev, 8, 64, body_stream));
    CHECK(cudaStreamEndCapture(body_stream, nullptr));
    size_t nodes = 0, body_nodes = 0;
    CHECK(cudaGraphGetNodes(g, nullptr, &nodes));
    CHECK(cudaGraphGetNodes(body, nullptr, &body_nodes));
    cudaGraphNode_t all[8];
    size_t count = 8;
    CHECK(cudaGraphGetNodes(g, all, &count));
    cudaGraphExec_t e;
    CHECK(cudaGraphInstantiate(&e, g, 0));
    cudaKernelNodeParams kp = {};
    void *args[] = {&x, &n};
    kp.func = (void *)touch;
    kp.gridDim = dim3(32);
    kp.blockDim = dim3(128);
    kp.kernelParams = args;
    CHECK(cudaGraphExecKernelNodeSetParams(e, all[0], &kp));  // the first kernel: 32 x 128 now
    CHECK(cudaGraphLaunch(e, s));
    CHECK(cudaStreamSynchronize(s));
    unsigned char host[64];
    CHECK(cudaMemcpy(host, dev, sizeof host, cudaMemcpyDeviceToHost));
    printf("graph_nodes=%zu\nbody_nodes=%zu\nbody_ran=%d\n", nodes, body_nodes, host[63] == 8);
    CHECK(cudaGraphExecDestroy(e));
    CHECK(cudaGraphDestroy(g));
    CHECK(cudaStreamDestroy(s));
    CHECK(cudaStreamDestroy(body_stream));
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "stream_attrs";
    if (!strcmp(mode, "stream_attrs")) return stream_attrs();
    if (!strcmp(mode, "default_pool")) return default_pool();
    if (!strcmp(mode, "explicit_pool")) return explicit_pool();
    if (!strcmp(mode, "pool_ipc")) return pool_ipc(argv[0]);
    if (!strcmp(mode, "ipc_child") && argc > 2) return ipc_child(atoi(argv[2]));
    if (!strcmp(mode, "legacy_ipc")) return legacy_ipc(argv[0]);
    if (!strcmp(mode, "legacy_child") && argc > 2) return legacy_child(atoi(argv[2]));
    if (!strcmp(mode, "graph_mem")) return graph_mem();
    if (!strcmp(mode, "graph_nodes")) return graph_nodes();
    if (!strcmp(mode, "graph_cond")) return graph_cond();
    if (!strcmp(mode, "graph_capture_into")) return graph_capture_into();
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
