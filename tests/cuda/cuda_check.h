// CHECK(call): the test programs' guard on a CUDA runtime call that must succeed; a failure
// prints where and which error, and exits with status 3 (the tests read that status).
#pragma once
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>

#define CHECK(call)                                                                            \
    do {                                                                                       \
        cudaError_t e_ = (call);                                                               \
        if (e_ != cudaSuccess) {                                                               \
            fprintf(stderr, "%s:%d %s failed: %s\n", __FILE__, __LINE__, #call, cudaGetErrorName(e_)); \
            exit(3);                                                                           \
        }                                                                                      \
    } while (0)
