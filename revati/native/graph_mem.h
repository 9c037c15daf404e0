/* Graph memory (graph_mem.c): the allocations of memory-allocation nodes. */
#ifndef REVATI_GRAPH_MEM_H
#define REVATI_GRAPH_MEM_H

#include "cuda_types.h"
#include "shim_internal.h"

/* A new graph allocation on device (its address is final; its bytes are held); NULL if full. */
void *graph_mem_create(size_t bytes, int device);
/* 1 if ptr is a graph allocation, with its (rounded) size and device. */
int graph_mem_size(const void *ptr, uint64_t *size, int *device);
/* A launch reached its allocation node: live; 0 if ptr is none or its bytes could not be had. */
int graph_mem_launch_alloc(const void *ptr);
/* A free node, cudaFreeAsync or cudaFree: no longer live; 0 if ptr is no graph allocation. */
int graph_mem_free(const void *ptr);

#endif
