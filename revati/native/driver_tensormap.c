/*
 * Tensor-memory-accelerator descriptors (cuTensorMapEncodeTiled / Im2col / Im2colWide,
 * cuTensorMapReplaceAddress): Hopper kernels (FlashAttention 3, CUTLASS 3 GEMMs) build one per
 * operand on the host and pass it as a kernel parameter. No kernel runs here, so the 128-byte
 * descriptor only has to be valid: the arguments are checked as the driver checks them and the
 * descriptor remembers the tensor's address, type and extents.
 */
#include <string.h>

#include "driver.h"

#define TENSOR_MAP_MAGIC 0x544d4150u
#define TENSOR_MAP_MAX_RANK 5
#define TENSOR_MAP_MAX_BOX 256
#define TENSOR_MAP_MAX_ELEMENT_STRIDE 8
#define TENSOR_MAP_ALIGN 16
#define TENSOR_MAP_DATA_TYPES 16 /* CU_TENSOR_MAP_DATA_TYPE_UINT8 ... the 4/6-bit packed types */
#define TENSOR_MAP_INTERLEAVE_NONE 0

/* CUtensorMap: 128 opaque bytes, 64-byte aligned, filled by the encoders. */
struct tensor_map {
    uint32_t magic;
    uint32_t data_type;
    uint32_t rank;
    uint32_t interleave;
    uint64_t address;
    uint64_t dims[TENSOR_MAP_MAX_RANK];
    uint32_t box[TENSOR_MAP_MAX_RANK];
    uint32_t swizzle;
    uint8_t pad[128 - 4 * 4 - 8 - 8 * TENSOR_MAP_MAX_RANK - 4 * TENSOR_MAP_MAX_RANK - 4];
};
_Static_assert(sizeof(struct tensor_map) == 128, "CUtensorMap is 128 bytes");

static int aligned(uint64_t value, uint64_t to) { return value % to == 0; }

/* The checks every encoder shares: type, rank, address, extents and strides (in bytes, one
 * fewer than the rank, the innermost dimension being dense). */
static CUresult check_tensor(void *map, unsigned int type, unsigned int rank, const void *address,
                             const uint64_t *dims, const uint64_t *strides, const uint32_t *element_strides,
                             unsigned int interleave) {
    if (!map || !aligned((uintptr_t)map, 64) || type >= TENSOR_MAP_DATA_TYPES) return CUDA_ERROR_INVALID_VALUE;
    if (rank < 1 || rank > TENSOR_MAP_MAX_RANK || !dims || (rank > 1 && !strides) || !element_strides)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t align = interleave == TENSOR_MAP_INTERLEAVE_NONE ? TENSOR_MAP_ALIGN : 2 * TENSOR_MAP_ALIGN;
    if (!address || !aligned((uintptr_t)address, align)) return CUDA_ERROR_INVALID_VALUE;
    for (unsigned int i = 0; i < rank; i++) {
        if (dims[i] == 0 || dims[i] > (1ull << 32)) return CUDA_ERROR_INVALID_VALUE;
        if (element_strides[i] == 0 || element_strides[i] > TENSOR_MAP_MAX_ELEMENT_STRIDE) return CUDA_ERROR_INVALID_VALUE;
        if (i + 1 < rank && (!aligned(strides[i], align) || strides[i] >= (1ull << 40))) return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

static void fill(void *out, unsigned int type, unsigned int rank, const void *address, const uint64_t *dims,
                 const uint32_t *box, unsigned int interleave, unsigned int swizzle) {
    struct tensor_map m = {.magic = TENSOR_MAP_MAGIC, .data_type = type, .rank = rank, .interleave = interleave,
                           .address = (uintptr_t)address, .swizzle = swizzle};
    for (unsigned int i = 0; i < rank; i++) {
        m.dims[i] = dims[i];
        m.box[i] = box ? box[i] : 0;
    }
    memcpy(out, &m, sizeof m);
}

DRV cuTensorMapEncodeTiled(void *map, unsigned int type, unsigned int rank, void *address, const uint64_t *dims,
                           const uint64_t *strides, const uint32_t *box, const uint32_t *element_strides,
                           unsigned int interleave, unsigned int swizzle, unsigned int l2_promotion, unsigned int oob_fill) {
    (void)l2_promotion; (void)oob_fill;
    CUresult r = check_tensor(map, type, rank, address, dims, strides, element_strides, interleave);
    if (r != CUDA_SUCCESS) return r;
    if (!box) return CUDA_ERROR_INVALID_VALUE;
    for (unsigned int i = 0; i < rank; i++)
        if (box[i] == 0 || box[i] > TENSOR_MAP_MAX_BOX) return CUDA_ERROR_INVALID_VALUE;
    fill(map, type, rank, address, dims, box, interleave, swizzle);
    return CUDA_SUCCESS;
}

DRV cuTensorMapEncodeIm2col(void *map, unsigned int type, unsigned int rank, void *address, const uint64_t *dims,
                            const uint64_t *strides, const int *lower_corner, const int *upper_corner,
                            unsigned int channels_per_pixel, unsigned int pixels_per_column,
                            const uint32_t *element_strides, unsigned int interleave, unsigned int swizzle,
                            unsigned int l2_promotion, unsigned int oob_fill) {
    (void)l2_promotion; (void)oob_fill;
    if (rank < 3 || !lower_corner || !upper_corner) return CUDA_ERROR_INVALID_VALUE;
    if (channels_per_pixel == 0 || channels_per_pixel > TENSOR_MAP_MAX_BOX) return CUDA_ERROR_INVALID_VALUE;
    if (pixels_per_column == 0 || pixels_per_column > 1024) return CUDA_ERROR_INVALID_VALUE;
    CUresult r = check_tensor(map, type, rank, address, dims, strides, element_strides, interleave);
    if (r != CUDA_SUCCESS) return r;
    fill(map, type, rank, address, dims, NULL, interleave, swizzle);
    return CUDA_SUCCESS;
}

DRV cuTensorMapEncodeIm2colWide(void *map, unsigned int type, unsigned int rank, void *address, const uint64_t *dims,
                                const uint64_t *strides, int lower_corner_w, int upper_corner_w,
                                unsigned int channels_per_pixel, unsigned int pixels_per_column,
                                const uint32_t *element_strides, unsigned int interleave, unsigned int mode,
                                unsigned int swizzle, unsigned int l2_promotion, unsigned int oob_fill) {
    (void)lower_corner_w; (void)upper_corner_w; (void)mode; (void)l2_promotion; (void)oob_fill;
    if (rank < 3 || channels_per_pixel == 0 || pixels_per_column == 0) return CUDA_ERROR_INVALID_VALUE;
    CUresult r = check_tensor(map, type, rank, address, dims, strides, element_strides, interleave);
    if (r != CUDA_SUCCESS) return r;
    fill(map, type, rank, address, dims, NULL, interleave, swizzle);
    return CUDA_SUCCESS;
}

DRV cuTensorMapReplaceAddress(void *map, void *address) {
    struct tensor_map *m = map;
    if (!m || !aligned((uintptr_t)m, 64) || m->magic != TENSOR_MAP_MAGIC) return CUDA_ERROR_INVALID_VALUE;
    uint64_t align = m->interleave == TENSOR_MAP_INTERLEAVE_NONE ? TENSOR_MAP_ALIGN : 2 * TENSOR_MAP_ALIGN;
    if (!address || !aligned((uintptr_t)address, align)) return CUDA_ERROR_INVALID_VALUE;
    m->address = (uintptr_t)address;
    return CUDA_SUCCESS;
}
