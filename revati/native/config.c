/* The run's configuration (config.txt in the run directory): device properties, host costs and
 * the backed-memory limit, read once at init; defaults describe one H100. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "kernel_args.h"

struct revati_config g_cfg;

void revati_config_defaults(void) {
    struct revati_device_props *d = &g_cfg.dev;
    g_cfg.device_count = 1;
    g_cfg.backed_max = 4 << 20;
    g_cfg.graph_replay = 1;
    snprintf(d->name, sizeof d->name, "NVIDIA H100 80GB HBM3");
    d->memory_bytes = 85520809984LL;
    d->sm_count = 132; d->sm_clock_mhz = 1980; d->mem_clock_mhz = 2619; d->bus_width_bits = 5120;
    d->cc_major = 9; d->cc_minor = 0; d->l2_bytes = 52428800;
    d->shared_mem_per_block = 49152; d->shared_mem_per_block_optin = 232448;
    d->shared_mem_per_sm = 233472; d->regs_per_block = 65536; d->regs_per_sm = 65536;
    d->max_threads_per_block = 1024; d->max_threads_per_sm = 2048; d->warp_size = 32;
    d->max_blocks_per_sm = 32;
    d->power_watts = 700; d->nvlink_links = 18;
}

static void config_set(const char *k, const char *v) {
    struct revati_device_props *d = &g_cfg.dev;
    long long n = atoll(v);
#define INT_KEY(key, field) else if (!strcmp(k, key)) field = n
    if (!strcmp(k, "name")) snprintf(d->name, sizeof d->name, "%s", v);
    else if (!strcmp(k, "kernel_args")) revati_kernel_args_add(v);
    INT_KEY("device_count", g_cfg.device_count);
    INT_KEY("backed_max", g_cfg.backed_max);
    INT_KEY("graph_replay", g_cfg.graph_replay);
    INT_KEY("memory_bytes", d->memory_bytes);
    INT_KEY("sm_count", d->sm_count);
    INT_KEY("sm_clock_mhz", d->sm_clock_mhz);
    INT_KEY("mem_clock_mhz", d->mem_clock_mhz);
    INT_KEY("memory_bus_width_bits", d->bus_width_bits);
    INT_KEY("cc_major", d->cc_major);
    INT_KEY("cc_minor", d->cc_minor);
    INT_KEY("l2_bytes", d->l2_bytes);
    INT_KEY("shared_mem_per_block", d->shared_mem_per_block);
    INT_KEY("shared_mem_per_block_optin", d->shared_mem_per_block_optin);
    INT_KEY("shared_mem_per_sm", d->shared_mem_per_sm);
    INT_KEY("regs_per_block", d->regs_per_block);
    INT_KEY("regs_per_sm", d->regs_per_sm);
    INT_KEY("max_threads_per_block", d->max_threads_per_block);
    INT_KEY("max_threads_per_sm", d->max_threads_per_sm);
    INT_KEY("warp_size", d->warp_size);
    INT_KEY("max_blocks_per_sm", d->max_blocks_per_sm);
    INT_KEY("power_watts", d->power_watts);
    INT_KEY("nvlink_links", d->nvlink_links);
    INT_KEY("cost_launch_ns", g_cfg.cost_ns[COST_LAUNCH]);
    INT_KEY("cost_copy_ns", g_cfg.cost_ns[COST_COPY]);
    INT_KEY("cost_event_ns", g_cfg.cost_ns[COST_EVENT]);
    INT_KEY("cost_sync_ns", g_cfg.cost_ns[COST_SYNC]);
    INT_KEY("cost_alloc_ns", g_cfg.cost_ns[COST_ALLOC]);
    INT_KEY("cost_other_ns", g_cfg.cost_ns[COST_OTHER]);
#undef INT_KEY
}

void revati_config_load(const char *run_dir) {
    char path[600], line[512];
    snprintf(path, sizeof path, "%s/config.txt", run_dir);
    FILE *f = fopen(path, "re");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        char *eq = strchr(line, '=');
        if (!eq) continue;
        *eq = 0;
        eq[1 + strcspn(eq + 1, "\n")] = 0;
        config_set(line, eq + 1);
    }
    fclose(f);
}
