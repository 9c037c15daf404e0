/* Argument bytes of launches whose layout the run's table knows (kernel_args.c). */
#ifndef REVATI_KERNEL_ARGS_H
#define REVATI_KERNEL_ARGS_H

#include <stdint.h>

#include "shim.h"

struct revati_args_layout;

/* config.txt `kernel_args=<id>;<name pattern>;<arg>:<offset>:<length>,...`: one layout (a slice
 * `v<arg>:<batch>:<cu_q>:<used_k>:<cu_k>` keeps a varlen summary; kernel_args.c). */
void revati_kernel_args_add(const char *spec);
/* The first layout whose pattern matches the mangled kernel name (the pattern's parts between
 * '*'s occur in it in order), or NULL. */
const struct revati_args_layout *revati_args_layout_for(const char *mangled_name);
/* A group barrier layout's message unit in bytes (`g<unit>`, kernel_args.c), else 0. */
unsigned revati_args_group_unit(const struct revati_args_layout *l);
/* The layout's slices of `args` (the launch's argument pointers) into a REC_KERNEL_ARGS record
 * (everything but `commit` and `thread`); read_memory = 0 (a captured graph node): varlen
 * summaries stay zeros. */
void revati_args_fill(const struct revati_args_layout *l, void *const *args, int read_memory,
                      struct revati_args_record *out);
/* Append that record for this thread, before the launch's own record. */
void revati_args_emit(const struct revati_args_layout *l, void *const *args);

/* The first integer template argument of a mangled kernel name (`Li<n>E`): a group barrier
 * kernel's group size; 0 if none (ipc_barrier.c). */
int revati_group_size_of(const char *mangled_name);
/* A launch of a group barrier kernel (layout `g<unit>`) with group size `nranks`: its arrival and
 * the thread's wait until the group met. 1 if done so, 0 if the launch is a plain kernel. */
int revati_ipc_barrier_launch(const struct revati_args_layout *l, void *const *args, int nranks,
                              int64_t stream_ref, uint16_t fn);
/* Whether kept argument bytes of a group barrier kernel (message unit `unit`, group size `nranks`)
 * name a group: a captured launch that is a barrier node of its graph. */
int revati_ipc_barrier_node(const struct revati_args_record *kept, unsigned unit, int nranks);
/* The arrival and wait of a launch whose argument bytes are `kept` (a graph node's: charge = 0,
 * the graph launch paid its host cost); 1 if done so, 0 if they name no group. */
int revati_ipc_barrier_arrive(const struct revati_args_record *kept, unsigned unit, int nranks, int64_t stream_ref,
                              uint16_t fn, int charge);

#endif
