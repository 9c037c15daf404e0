/*
 * NVML (libnvidia-ml.so.1) answering as the virtual node's devices: count, names, UUIDs, PCI
 * addresses, memory, compute capability, clocks, power, temperature, NVLink and topology.
 * As on a real node, NVML sees every device of the node whatever CUDA_VISIBLE_DEVICES says.
 * Memory use is the device's capacity accounting, shared by every process of the run.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "memory.h"
#include "shim_internal.h"

#define NVML REVATI_EXPORT int
#define NVML_DEVICE_MAGIC 0x4e564d4cu

enum { TOPOLOGY_INTERNAL = 0, TOPOLOGY_NODE = 40, FEATURE_DISABLED = 0, FEATURE_ENABLED = 1 };
enum { P2P_CAPS_NVLINK = 2, P2P_STATUS_OK = 0, P2P_STATUS_NOT_SUPPORTED = 5 };
enum { CLOCK_GRAPHICS = 0, CLOCK_SM = 1, CLOCK_MEM = 2, CLOCK_VIDEO = 3 };
#define IDLE_TEMPERATURE_C 33
#define IDLE_POWER_SHARE 0.1 /* an idle device draws about a tenth of its limit */

struct nvml_device {
    uint32_t magic;
    unsigned int index; /* on the node */
};

static struct nvml_device g_devices[REVATI_MAX_DEVICES];
static int g_refs;

static int node_devices(void) { return g_cfg.node_device_count ? g_cfg.node_device_count : g_cfg.device_count; }

static struct nvml_device *device_of(void *handle) {
    struct nvml_device *d = handle;
    if (!g_refs) return NULL;
    return d && d->magic == NVML_DEVICE_MAGIC && (int)d->index < node_devices() ? d : NULL;
}

#define DEVICE(var, handle)                                   \
    struct nvml_device *var = device_of(handle);              \
    if (!g_refs) return NVML_ERROR_UNINITIALIZED;             \
    if (!var) return NVML_ERROR_INVALID_ARGUMENT

static int copy_string(char *out, unsigned int length, const char *s) {
    if (!out) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(s) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(out, s, strlen(s) + 1);
    return NVML_SUCCESS;
}

/* ---- library ------------------------------------------------------------------------------- */

NVML nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    revati_ensure_init();
    for (int i = 0; i < REVATI_MAX_DEVICES; i++) g_devices[i] = (struct nvml_device){NVML_DEVICE_MAGIC, (unsigned)i};
    __atomic_add_fetch(&g_refs, 1, __ATOMIC_ACQ_REL);
    return NVML_SUCCESS;
}
NVML nvmlInit_v2(void) { return nvmlInitWithFlags(0); }
NVML nvmlInit(void) { return nvmlInitWithFlags(0); }
NVML nvmlShutdown(void) {
    if (!g_refs) return NVML_ERROR_UNINITIALIZED;
    __atomic_sub_fetch(&g_refs, 1, __ATOMIC_ACQ_REL);
    return NVML_SUCCESS;
}

REVATI_EXPORT const char *nvmlErrorString(int result) {
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported (not emulated by revati)";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    default: return "Unknown Error";
    }
}

NVML nvmlSystemGetDriverVersion(char *version, unsigned int length) { return copy_string(version, length, "580.65.06"); }
NVML nvmlSystemGetNVMLVersion(char *version, unsigned int length) { return copy_string(version, length, "13.580.65.06"); }
NVML nvmlSystemGetCudaDriverVersion(int *version) {
    if (!version) return NVML_ERROR_INVALID_ARGUMENT;
    *version = 13000;
    return NVML_SUCCESS;
}
NVML nvmlSystemGetCudaDriverVersion_v2(int *version) { return nvmlSystemGetCudaDriverVersion(version); }

/* Confidential computing is off, as on a node that has not enabled it: environment, feature and
 * devtools mode are all 0 (unavailable, disabled, disabled). */
struct nvml_cc_state { unsigned int environment, feature, devtools_mode; };
NVML nvmlSystemGetConfComputeState(struct nvml_cc_state *state) {
    if (!g_refs) return NVML_ERROR_UNINITIALIZED;
    if (!state) return NVML_ERROR_INVALID_ARGUMENT;
    *state = (struct nvml_cc_state){0, 0, 0};
    return NVML_SUCCESS;
}

/* ---- finding devices ----------------------------------------------------------------------- */

NVML nvmlDeviceGetCount_v2(unsigned int *count) {
    if (!g_refs) return NVML_ERROR_UNINITIALIZED;
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    *count = (unsigned int)node_devices();
    return NVML_SUCCESS;
}
NVML nvmlDeviceGetCount(unsigned int *count) { return nvmlDeviceGetCount_v2(count); }

NVML nvmlDeviceGetHandleByIndex_v2(unsigned int index, void **handle) {
    if (!g_refs) return NVML_ERROR_UNINITIALIZED;
    if (!handle || (int)index >= node_devices()) return NVML_ERROR_INVALID_ARGUMENT;
    *handle = &g_devices[index];
    return NVML_SUCCESS;
}
NVML nvmlDeviceGetHandleByIndex(unsigned int index, void **handle) { return nvmlDeviceGetHandleByIndex_v2(index, handle); }

static void uuid_string(unsigned int index, char out[48]) {
    unsigned char b[16];
    revati_device_uuid((int)index, b);
    snprintf(out, 48, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
             b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static void bus_id(unsigned int index, char out[32]) { snprintf(out, 32, "00000000:%02X:00.0", 0x18 + index); }

NVML nvmlDeviceGetHandleByUUID(const char *uuid, void **handle) {
    if (!g_refs) return NVML_ERROR_UNINITIALIZED;
    if (!uuid || !handle) return NVML_ERROR_INVALID_ARGUMENT;
    for (int i = 0; i < node_devices(); i++) {
        char mine[48];
        uuid_string((unsigned)i, mine);
        if (!strcasecmp(mine, uuid)) return nvmlDeviceGetHandleByIndex_v2((unsigned)i, handle);
    }
    return NVML_ERROR_NOT_FOUND;
}

NVML nvmlDeviceGetHandleByPciBusId_v2(const char *pci, void **handle) {
    if (!g_refs) return NVML_ERROR_UNINITIALIZED;
    if (!pci || !handle) return NVML_ERROR_INVALID_ARGUMENT;
    for (int i = 0; i < node_devices(); i++) {
        char mine[32];
        bus_id((unsigned)i, mine);
        /* "0000:18:00.0" and "00000000:18:00.0" name the same device */
        size_t n = strlen(pci);
        if (n <= strlen(mine) && !strcasecmp(mine + strlen(mine) - n, pci))
            return nvmlDeviceGetHandleByIndex_v2((unsigned)i, handle);
    }
    return NVML_ERROR_NOT_FOUND;
}
NVML nvmlDeviceGetHandleByPciBusId(const char *pci, void **handle) { return nvmlDeviceGetHandleByPciBusId_v2(pci, handle); }

/* ---- identity ------------------------------------------------------------------------------ */

NVML nvmlDeviceGetIndex(void *handle, unsigned int *index) {
    DEVICE(d, handle);
    if (!index) return NVML_ERROR_INVALID_ARGUMENT;
    *index = d->index;
    return NVML_SUCCESS;
}
NVML nvmlDeviceGetMinorNumber(void *handle, unsigned int *minor) { return nvmlDeviceGetIndex(handle, minor); }

NVML nvmlDeviceGetName(void *handle, char *name, unsigned int length) {
    DEVICE(d, handle);
    (void)d;
    return copy_string(name, length, g_cfg.dev.name);
}

NVML nvmlDeviceGetUUID(void *handle, char *uuid, unsigned int length) {
    DEVICE(d, handle);
    char s[48];
    uuid_string(d->index, s);
    return copy_string(uuid, length, s);
}

struct nvml_pci_info {
    char bus_id_legacy[16];
    unsigned int domain, bus, device, pci_device_id, pci_subsystem_id;
    char bus_id[32];
};

NVML nvmlDeviceGetPciInfo_v3(void *handle, struct nvml_pci_info *pci) {
    DEVICE(d, handle);
    if (!pci) return NVML_ERROR_INVALID_ARGUMENT;
    memset(pci, 0, sizeof *pci);
    bus_id(d->index, pci->bus_id);
    snprintf(pci->bus_id_legacy, sizeof pci->bus_id_legacy, "0000:%02X:00.0", 0x18 + d->index);
    pci->bus = 0x18 + d->index;
    pci->pci_device_id = 0x233010de;
    pci->pci_subsystem_id = 0x16c110de;
    return NVML_SUCCESS;
}
NVML nvmlDeviceGetPciInfo_v2(void *handle, struct nvml_pci_info *pci) { return nvmlDeviceGetPciInfo_v3(handle, pci); }
NVML nvmlDeviceGetPciInfo(void *handle, struct nvml_pci_info *pci) { return nvmlDeviceGetPciInfo_v3(handle, pci); }

NVML nvmlDeviceGetCudaComputeCapability(void *handle, int *major, int *minor) {
    DEVICE(d, handle);
    (void)d;
    if (!major || !minor) return NVML_ERROR_INVALID_ARGUMENT;
    *major = g_cfg.dev.cc_major;
    *minor = g_cfg.dev.cc_minor;
    return NVML_SUCCESS;
}

NVML nvmlDeviceGetArchitecture(void *handle, unsigned int *arch) {
    static const unsigned int by_major[] = {0, 0, 0, 2, 2, 3, 4, 5, 7, 9, 10, 0, 10};
    DEVICE(d, handle);
    (void)d;
    if (!arch) return NVML_ERROR_INVALID_ARGUMENT;
    int major = g_cfg.dev.cc_major;
    /* 8.9 is Ada (8), 8.x Ampere (7), 9 Hopper (9), 10 and 12 Blackwell (10) */
    *arch = major == 8 && g_cfg.dev.cc_minor == 9 ? 8 : major >= 0 && major <= 12 ? by_major[major] : 0xffffffffu;
    return NVML_SUCCESS;
}

/* ---- memory, clocks, power, temperature ---------------------------------------------------- */

struct nvml_memory { unsigned long long total, free, used; };
struct nvml_memory_v2 { unsigned int version; unsigned long long total, reserved, free, used; };

static void memory_of(unsigned int index, unsigned long long *total, unsigned long long *used) {
    int64_t cap = 0, in_use = 0;
    revati_node_memory((int)index, &in_use, &cap);
    *total = (unsigned long long)cap;
    *used = (unsigned long long)(in_use < cap ? in_use : cap);
}

NVML nvmlDeviceGetMemoryInfo(void *handle, struct nvml_memory *m) {
    DEVICE(d, handle);
    if (!m) return NVML_ERROR_INVALID_ARGUMENT;
    memory_of(d->index, &m->total, &m->used);
    m->free = m->total - m->used;
    return NVML_SUCCESS;
}

NVML nvmlDeviceGetMemoryInfo_v2(void *handle, struct nvml_memory_v2 *m) {
    DEVICE(d, handle);
    if (!m) return NVML_ERROR_INVALID_ARGUMENT;
    memory_of(d->index, &m->total, &m->used);
    m->reserved = 0;
    m->free = m->total - m->used;
    return NVML_SUCCESS;
}

static int clock_mhz(int type) {
    if (type == CLOCK_MEM) return g_cfg.dev.mem_clock_mhz;
    return type == CLOCK_GRAPHICS || type == CLOCK_SM || type == CLOCK_VIDEO ? g_cfg.dev.sm_clock_mhz : -1;
}

NVML nvmlDeviceGetClockInfo(void *handle, int type, unsigned int *mhz) {
    DEVICE(d, handle);
    (void)d;
    if (!mhz || clock_mhz(type) < 0) return NVML_ERROR_INVALID_ARGUMENT;
    *mhz = (unsigned int)clock_mhz(type);
    return NVML_SUCCESS;
}
NVML nvmlDeviceGetMaxClockInfo(void *handle, int type, unsigned int *mhz) { return nvmlDeviceGetClockInfo(handle, type, mhz); }
NVML nvmlDeviceGetApplicationsClock(void *handle, int type, unsigned int *mhz) { return nvmlDeviceGetClockInfo(handle, type, mhz); }
NVML nvmlDeviceGetClock(void *handle, int type, int id, unsigned int *mhz) { (void)id; return nvmlDeviceGetClockInfo(handle, type, mhz); }

static int power_limit(void *handle, unsigned int *mw) {
    DEVICE(d, handle);
    (void)d;
    if (!mw) return NVML_ERROR_INVALID_ARGUMENT;
    if (g_cfg.dev.power_watts <= 0) return NVML_ERROR_NOT_SUPPORTED;
    *mw = (unsigned int)g_cfg.dev.power_watts * 1000u;
    return NVML_SUCCESS;
}
NVML nvmlDeviceGetPowerManagementLimit(void *handle, unsigned int *mw) { return power_limit(handle, mw); }
NVML nvmlDeviceGetEnforcedPowerLimit(void *handle, unsigned int *mw) { return power_limit(handle, mw); }
NVML nvmlDeviceGetPowerManagementDefaultLimit(void *handle, unsigned int *mw) { return power_limit(handle, mw); }
NVML nvmlDeviceGetPowerUsage(void *handle, unsigned int *mw) {
    int rc = power_limit(handle, mw);
    if (rc == NVML_SUCCESS) *mw = (unsigned int)(*mw * IDLE_POWER_SHARE);
    return rc;
}

NVML nvmlDeviceGetTemperature(void *handle, int sensor, unsigned int *celsius) {
    DEVICE(d, handle);
    (void)d;
    if (!celsius || sensor != 0) return NVML_ERROR_INVALID_ARGUMENT;
    *celsius = IDLE_TEMPERATURE_C;
    return NVML_SUCCESS;
}

struct nvml_utilization { unsigned int gpu, memory; };
NVML nvmlDeviceGetUtilizationRates(void *handle, struct nvml_utilization *u) {
    DEVICE(d, handle);
    (void)d;
    if (!u) return NVML_ERROR_INVALID_ARGUMENT;
    u->gpu = u->memory = 0;
    return NVML_SUCCESS;
}

NVML nvmlDeviceGetComputeRunningProcesses_v3(void *handle, unsigned int *count, void *infos) {
    DEVICE(d, handle);
    (void)d; (void)infos;
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    *count = 0;
    return NVML_SUCCESS;
}

NVML nvmlDeviceGetComputeRunningProcesses_v2(void *handle, unsigned int *count, void *infos) {
    return nvmlDeviceGetComputeRunningProcesses_v3(handle, count, infos);
}
NVML nvmlDeviceGetComputeRunningProcesses(void *handle, unsigned int *count, void *infos) {
    return nvmlDeviceGetComputeRunningProcesses_v3(handle, count, infos);
}

/* Multi-node NVLink fabric: a single node has none (state NOT_SUPPORTED), so PyTorch shares
 * expandable segments by file descriptor, not by fabric handle. */
struct nvml_fabric_info_v {
    unsigned int version;
    unsigned char cluster_uuid[16];
    int status;
    unsigned int clique_id;
    unsigned char state;
    unsigned int health_mask;
};
NVML nvmlDeviceGetGpuFabricInfoV(void *handle, struct nvml_fabric_info_v *info) {
    DEVICE(d, handle);
    (void)d;
    if (!info) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned int version = info->version;
    memset(info, 0, sizeof *info);
    info->version = version;
    info->status = NVML_SUCCESS;
    info->state = 0; /* NVML_GPU_FABRIC_STATE_NOT_SUPPORTED */
    return NVML_SUCCESS;
}

NVML nvmlDeviceGetMigMode(void *handle, unsigned int *current, unsigned int *pending) {
    DEVICE(d, handle);
    (void)d;
    if (!current || !pending) return NVML_ERROR_INVALID_ARGUMENT;
    *current = *pending = FEATURE_DISABLED;
    return NVML_SUCCESS;
}

NVML nvmlDeviceGetPersistenceMode(void *handle, int *mode) {
    DEVICE(d, handle);
    (void)d;
    if (!mode) return NVML_ERROR_INVALID_ARGUMENT;
    *mode = FEATURE_ENABLED;
    return NVML_SUCCESS;
}

/* ---- NVLink and topology: every pair of devices is linked through NVSwitch ------------------ */

NVML nvmlDeviceGetNvLinkState(void *handle, unsigned int link, int *active) {
    DEVICE(d, handle);
    (void)d;
    if (!active) return NVML_ERROR_INVALID_ARGUMENT;
    if ((int)link >= g_cfg.dev.nvlink_links) return NVML_ERROR_INVALID_ARGUMENT;
    *active = FEATURE_ENABLED;
    return NVML_SUCCESS;
}

NVML nvmlDeviceGetNvLinkVersion(void *handle, unsigned int link, unsigned int *version) {
    DEVICE(d, handle);
    (void)d;
    if (!version || (int)link >= g_cfg.dev.nvlink_links) return NVML_ERROR_INVALID_ARGUMENT;
    *version = g_cfg.dev.cc_major >= 10 ? 5 : g_cfg.dev.cc_major >= 9 ? 4 : 3;
    return NVML_SUCCESS;
}

NVML nvmlDeviceGetTopologyCommonAncestor(void *a, void *b, int *level) {
    DEVICE(da, a);
    DEVICE(db, b);
    if (!level) return NVML_ERROR_INVALID_ARGUMENT;
    /* NVLink peers on one NUMA node: INTERNAL for the same device, else NODE (PCIe-wise) */
    *level = da == db ? TOPOLOGY_INTERNAL : TOPOLOGY_NODE;
    return NVML_SUCCESS;
}

NVML nvmlDeviceGetP2PStatus(void *a, void *b, int caps, int *status) {
    DEVICE(da, a);
    DEVICE(db, b);
    if (!status) return NVML_ERROR_INVALID_ARGUMENT;
    int nvlink_missing = caps == P2P_CAPS_NVLINK && g_cfg.dev.nvlink_links <= 0;
    *status = da == db || nvlink_missing ? P2P_STATUS_NOT_SUPPORTED : P2P_STATUS_OK;
    return NVML_SUCCESS;
}
