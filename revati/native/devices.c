/*
 * Which of the virtual node's devices this process sees: all of them, or the ones
 * CUDA_VISIBLE_DEVICES lists (ordinals; parsing stops at the first entry that is not a device
 * of the node, as the real driver's does). Ordinals the program uses are visible ordinals;
 * capacity, UUIDs and PCI addresses belong to the node's device behind each.
 */
#include <stdlib.h>
#include <string.h>

#include "shim_internal.h"

int revati_physical_device(int ordinal) {
    if (ordinal < 0 || ordinal >= g_cfg.device_count || ordinal >= REVATI_MAX_DEVICES) return ordinal;
    return g_cfg.physical[ordinal];
}

void revati_device_uuid(int physical, unsigned char out[16]) {
    for (int i = 0; i < 16; i++) out[i] = (unsigned char)(0x5e + i + physical);
}

void revati_apply_visible_devices(void) {
    int node = g_cfg.device_count < REVATI_MAX_DEVICES ? g_cfg.device_count : REVATI_MAX_DEVICES;
    g_cfg.node_device_count = node;
    for (int i = 0; i < REVATI_MAX_DEVICES; i++) g_cfg.physical[i] = i;
    const char *list = getenv("CUDA_VISIBLE_DEVICES");
    if (!list) return;
    int n = 0;
    for (const char *p = list; *p && n < node;) {
        char *end;
        long d = strtol(p, &end, 10);
        if (end == p || d < 0 || d >= node) break;
        int seen = 0;
        for (int i = 0; i < n; i++) seen |= g_cfg.physical[i] == (int)d;
        if (seen) break;
        g_cfg.physical[n++] = (int)d;
        p = end + strspn(end, " ");
        if (*p != ',') break;
        p++;
    }
    g_cfg.device_count = n;
}
