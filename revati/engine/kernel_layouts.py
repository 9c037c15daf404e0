"""Argument layouts of library kernels: which launch-argument bytes say how big the work is.

A launch's arguments are opaque bytes; for the kernels named here revati knows where, in those
bytes, the problem size sits. Each `ArgLayout` names its kernels by parts of their mangled
name (in order, separated by `*`) and lists the slices to keep (argument index, byte offset
inside that argument, length); the shim keeps at most `shim.ARGS_BYTES` bytes per launch, in
slice order, and only for kernels that match (the match is made once, when the kernel is
registered). The engine unpacks the kept bytes with `fields` (a `struct` format over their
concatenation) and `decode` turns the values and the demangled kernel name into shape features
(`revati/engine/kernel_args.py`).

Offsets come from the declarations cited in `source` (PyTorch 2.14 and vLLM 0.33.0, CUDA 13 builds,
x86-64 layout: 8-byte pointers and int64, 4-byte int and float) and were checked against real
launches of known sizes recorded under `revati record` (tests/integration/test_kernel_args.py,
tests/integration/test_vllm_offline.py). A layout is only right for the library version it names: a
kernel whose layout is not here keeps no bytes and is predicted without a shape (and says so in its
model label).

A layout may also keep a varlen summary (`revati/engine/arg_layout.py`). vLLM's layouts are in
`revati/engine/vllm_layouts.py`.

The table is sent to the shim as `config.txt` lines (`config_lines`).
"""

from __future__ import annotations

import struct

from revati.engine.arg_layout import VARLEN_SUMMARY, VARLEN_SUMMARY_BYTES, ArgLayout, flash2_kernels
from revati.engine.vllm_layouts import VLLM_LAYOUTS

__all__ = [
    "BY_ID",
    "LAYOUTS",
    "VARLEN_SUMMARY",
    "VARLEN_SUMMARY_BYTES",
    "ArgLayout",
    "config_lines",
]

PYTORCH = "PyTorch 2.14 (aten/src/ATen/native/cuda)"
PYTORCH_FLASH = (
    "PyTorch 2.14 (aten/src/ATen/native/transformers/cuda/flash_attn/flash.h, FlashAttention "
    "2.6's): Flash_fwd_params : Qkv_params {void *q_ptr, *k_ptr, *v_ptr; int64_t 9 strides; "
    "int h, h_k (at 96); ...; void *o_ptr, *oaccum_ptr; int64_t 3 strides; void *p_ptr, "
    "*softmax_lse_ptr, *softmax_lseaccum_ptr; int b, seqlen_q, seqlen_k, seqlen_knew, d (at 176)"
    "; ...}; causal is the kernel's Is_causal template argument"
)
PYTORCH_MEM_EFFICIENT = (
    "PyTorch 2.14 (aten/src/ATen/native/transformers/cuda/mem_eff_attention/kernel_forward.h): "
    "AttentionKernel<...>::Params {7 pointers; uint32 causal_diagonal_offset; 3 pointers; "
    "float scale; int32 head_dim, head_dim_value, num_queries, num_keys (at 96); ...; uint8 "
    "custom_mask_type (at 116, 0 none, 1 causal from top left, 2 from bottom right); int32 "
    "q_strideM, k_strideM, v_strideM, bias_strideM, o_strideM, q_strideH, k_strideH (at 144), "
    "v_strideH; int64 ..., k_strideB (at 168), ...; int32 num_batches, num_heads (at 192); ...}"
)


def _elementwise(
    id: int, name: str, pattern: str, n_format: str, signature: str, decode: str = "elementwise"
) -> ArgLayout:
    """A kernel whose first argument is the element count."""
    return ArgLayout(
        id, name, pattern, ((0, 0, struct.calcsize(n_format)),), "<" + n_format, ("elements",),
        decode, f"{PYTORCH}: {signature}",
    )  # fmt: skip


LAYOUTS: tuple[ArgLayout, ...] = (
    _elementwise(
        1,
        "vectorized_elementwise",
        "_ZN2at6native29vectorized_elementwise_kernelI",
        "i",
        "CUDALoops.cuh vectorized_elementwise_kernel<vec_size, func_t, array_t>"
        "(int N, func_t f, array_t data)",
    ),
    _elementwise(
        2,
        "unrolled_elementwise",
        "_ZN2at6native27unrolled_elementwise_kernelI",
        "i",
        "CUDALoops.cuh unrolled_elementwise_kernel<func_t, array_t, ...>"
        "(int N, func_t f, array_t data, inp_calc_t, out_calc_t, loader_t, storer_t)",
    ),
    _elementwise(
        3,
        "elementwise",
        "_ZN2at6native18elementwise_kernelI",
        "i",
        "CUDALoops.cuh elementwise_kernel<nt, vt, func_t>(int N, func_t f)",
    ),
    _elementwise(
        4,
        "index_elementwise",
        "_ZN2at6native24index_elementwise_kernelI",
        "q",
        "IndexKernel.cu index_elementwise_kernel<nt, vt, func_t>(const int64_t N, const func_t f)",
    ),
    _elementwise(
        5,
        "elementwise_with_index_int",
        "29elementwise_kernel_with_indexIi",
        "i",
        "RangeFactories.cu elementwise_kernel_with_index<index_t, func_t>(index_t N, func_t f, "
        "...) with index_t = int",
    ),
    _elementwise(
        6,
        "elementwise_with_index_long",
        "29elementwise_kernel_with_indexIl",
        "q",
        "RangeFactories.cu elementwise_kernel_with_index<index_t, func_t>(index_t N, func_t f, "
        "...) with index_t = int64_t",
    ),
    _elementwise(
        7,
        "distribution_grid_stride",
        "43distribution_elementwise_grid_stride_kernelI",
        "q",
        "DistributionTemplates.h distribution_elementwise_grid_stride_kernel<accscalar_t, "
        "unroll_factor, dist_t, transform_t>(int64_t numel, PhiloxCudaState, dist_t, transform_t)",
        "distribution",
    ),
    ArgLayout(
        8,
        "reduce",
        "_ZN2at6native13reduce_kernelI",
        ((0, 0, 52),),
        "<13i",
        tuple(f"w{i}" for i in range(13)),
        "reduce",
        f"{PYTORCH}: Reduce.cuh reduce_kernel<nt, output_vec_size, R>(R reduction), "
        "R = ReduceOp{ops_t ops; arg_t ident; ReduceConfig config; ...}, ReduceConfig{int "
        "element_size_bytes, num_inputs, num_outputs, step_input, step_output, ctas_per_output; "
        "...}: the config follows ops and ident, at an offset their types decide",
    ),  # fmt: skip
    *flash2_kernels(
        9,
        "pytorch_flash_fwd",
        "13pytorch_flash",
        ((0, 96, 8), (0, 176, 20)),
        "<7i",
        ("h", "h_k", "b", "seqlen_q", "seqlen_k", "seqlen_knew", "d"),
        "flash",
        PYTORCH_FLASH,
    ),  # fmt: skip
    ArgLayout(
        11,
        "pytorch_mem_efficient",
        "fmha_cutlassF*PyTorchMemEffAttention15AttentionKernel",
        ((0, 96, 16), (0, 116, 4), (0, 144, 4), (0, 168, 8), (0, 192, 8)),
        "<4iB3xiq2i",
        (
            "head_dim",
            "head_dim_value",
            "num_queries",
            "num_keys",
            "custom_mask_type",
            "k_stride_h",
            "k_stride_b",
            "num_batches",
            "num_heads",
        ),
        "mem_efficient",
        PYTORCH_MEM_EFFICIENT,
    ),
    ArgLayout(
        12,
        "cat",
        "CatArrayBatchedCopy",
        ((2, 0, 16),),
        "<4I",
        ("size0", "size1", "size2", "size3"),
        "cat",
        f"{PYTORCH}: Shape.cu CatArrayBatchedCopy[_contig|_vectorized]<T, IndexType = unsigned, "
        "Dims, ...>(T* output, CatArrInputTensorMetadata inputs, TensorSizeStride<IndexType, 4> "
        "os {IndexType tensorSize[4], tensorStride[4]}, int concatDim, IndexType dimStride)",
    ),
    ArgLayout(
        13,
        "vectorized_gather",
        "_ZN2at6native24vectorized_gather_kernelI",
        ((3, 0, 4), (4, 0, 8)),
        "<iq",
        ("indices", "slice_bytes"),
        "gather",
        f"{PYTORCH}: IndexKernelUtils.cu vectorized_gather_kernel<alignment, index_t>(char* out, "
        "char* inp, index_t* idx, int num_ind, int64_t slice_size (bytes), int64_t ind_dim_size, "
        "int64_t inp_stride, int64_t out_stride, bool allow_neg_indices)",
    ),
    ArgLayout(
        14,
        "index_select_small",
        "21indexSelectSmallIndexI*ljLi",
        ((2, 8, 4), (5, 0, 4)),
        "<2I",
        ("indices", "inner_size"),
        "index_select",
        f"{PYTORCH}: Indexing.cu indexSelectSmallIndex<T, IndicesType = int64_t, IndexType = "
        "unsigned, ...>(TensorInfo dst, TensorInfo src, TensorInfo<IndicesType, IndexType> indices "
        "{IndicesType* data; IndexType sizes[25]; ...}, int dstSelectDim, int srcSelectDim, "
        "IndexType innerSize, int64_t srcSelectDimSize)",
    ),
    ArgLayout(
        15,
        "softmax_block",
        "_SoftMax_cu_*cunn_SoftMaxForward",
        ((2, 0, 4),),
        "<i",
        ("classes",),
        "softmax",
        f"{PYTORCH}: SoftMax.cu cunn_SoftMaxForward[Reg|Smem]<[ILP,] scalar_t, accscalar_t, "
        "outscalar_t, Epilogue[, index_t]>(outscalar_t *output, const scalar_t *input, index_t "
        "classes): one block per row; index_t is int or int64_t, whose low half is read",
    ),
    ArgLayout(
        16,
        "softmax_warp",
        "20softmax_warp_forwardI",
        ((2, 0, 4), (4, 0, 4)),
        "<2i",
        ("rows", "classes"),
        "softmax",
        f"{PYTORCH}: PersistentSoftmax.cuh softmax_warp_forward<input_t, output_t, acc_t, "
        "log2_elements, is_log_softmax, is_masked>(output_t *dst, const input_t *src, int "
        "batch_size, int stride, int element_count, const bool *mask, int head_chunk_size, bool)",
    ),
    *VLLM_LAYOUTS,
)

BY_ID = {layout.id: layout for layout in LAYOUTS}
assert len(BY_ID) == len(LAYOUTS) and all(0 < i < 256 for i in BY_ID)


def config_lines() -> str:
    """The table as config.txt lines: `kernel_args=<id>;<pattern>;<arg>:<offset>:<length>,...`."""
    return "".join(f"kernel_args={layout.config_line()}\n" for layout in LAYOUTS)
