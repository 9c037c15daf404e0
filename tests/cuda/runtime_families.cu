// Test program for the runtime families revati emulates beyond the basics: stream attributes,
// memory pools and stream-ordered allocation (pool IPC included). One scenario per argv[1].
// Built by the tests with: nvcc -cudart shared -o runtime_families runtime_families.cu
// Each mode prints `key=value` lines the tests parse, and exits non-zero on an unexpected error.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cuda_runtime.h>

#define CHECK(call)                                                                            \
    do {                                                                                       \
        cudaError_t e_ = (call);                                                               \
        if (e_ != cudaSuccess) {                                                               \
            fprintf(stderr, "%s:%d %s failed: %s\n", __FILE__, __LINE__, #call, cudaGetErrorName(e_)); \
            exit(3);                                                                           \
        }                                                                                      \
    } while (0)

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

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "stream_attrs";
    if (!strcmp(mode, "stream_attrs")) return stream_attrs();
    if (!strcmp(mode, "default_pool")) return default_pool();
    if (!strcmp(mode, "explicit_pool")) return explicit_pool();
    if (!strcmp(mode, "pool_ipc")) return pool_ipc(argv[0]);
    if (!strcmp(mode, "ipc_child") && argc > 2) return ipc_child(atoi(argv[2]));
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
