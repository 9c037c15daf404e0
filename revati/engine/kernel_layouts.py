"""Argument layouts of library kernels: which launch-argument bytes say how big the work is.

A launch's arguments are opaque bytes; for the kernels named here revati knows where, in those
bytes, the problem size sits. Each `ArgLayout` names its kernels by parts of their mangled
name (in order, separated by `*`) and lists the slices to keep (argument index, byte offset
inside that argument, length); the shim keeps at most `shim.ARGS_BYTES` bytes per launch, in
slice order, and only for kernels that match (the match is made once, when the kernel is
registered). The engine unpacks the kept bytes with `fields` (a `struct` format over their
concatenation) and `decode` turns the values and the demangled kernel name into shape features
(`revati/engine/kernel_args.py`).

Offsets come from the declarations cited in `source` (PyTorch 2.14 and vLLM 0.33.0, CUDA 13
builds, x86-64 layout: 8-byte pointers and int64, 4-byte int and float) and were checked against
real launches of known sizes recorded under `revati record` (tests/integration/test_kernel_args.py,
tests/integration/test_vllm_offline.py). A layout
is only right for the library version it names: a kernel whose layout is not here keeps no
bytes and is predicted without a shape (and says so in its model label).

A layout may also keep a varlen summary (`varlen`): where a launch packs sequences of different
lengths and passes their lengths as device arrays (cumulative query lengths, per-sequence or
cumulative KV lengths), the shim reads the arrays at launch when they sit in backed device memory
and keeps their totals, `VARLEN_SUMMARY` (28 bytes, after the slices; struct varlen_summary in
revati/native/kernel_args.c): sequences, total query and KV lengths, and the sums of q_i * k_i
and q_i * q_i. Zeros mean the arrays could not be read (virtual memory, a graph node).

The table is sent to the shim as `config.txt` lines (`config_lines`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from revati import shim

PYTORCH = "PyTorch 2.14 (aten/src/ATen/native/cuda)"
VARLEN_SUMMARY = ("<3I2Q", ("sequences", "sum_q", "sum_k", "sum_qk", "sum_qq"))
VARLEN_SUMMARY_BYTES = struct.calcsize(VARLEN_SUMMARY[0])
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
VLLM_FA3 = (
    "vLLM 0.33.0's FlashAttention 3 (vllm-project/flash-attention hopper/ as at 2b84100f, whose "
    "mainloop has the OnlyQv template argument that vLLM's kernel names show; kernel parameter "
    "2,688 bytes): "
    "FlashAttnFwdSm90<Mainloop, Epilogue, Scheduler>::Params {Mainloop::Params mainloop (at 0); "
    "...}, Mainloop::Params (2,048 bytes) {Element const* ptr_Q; Shape<int32 x4> shape_Q (at 8: "
    "seqlen_q, or total_q when varlen; d; h; batch, 1 when varlen); Stride stride_Q; "
    "ShapeQPacked; StrideQPacked; Element* ptr_K; Shape<int32 x4> shape_K (at 112 with PackGQA, "
    "96 without: seqlen_k or page size, d, h_k, batch or pages); ...; ShapeRotary shape_rotary "
    "(at 368, 336 without PackGQA: max seqlen_k, rotary_dim / 2); ...; ShapePageTable "
    "shape_pagetable (at 416, 384: batch, pages per sequence); ...; TMA descriptors (64-byte "
    "aligned); "
    "...; int const* cu_seqlens_q (at 1904), cu_seqlens_k (1912), cu_seqlens_k_new, seqused_q, "
    "seqused_k (1936); ...}; causal and varlen are the mainloop's Is_causal and Varlen template "
    "arguments"
)
VLLM_FA2 = (
    "vLLM 0.33.0's FlashAttention 2 (vllm-project/flash-attention csrc/flash_attn/src/flash.h, "
    "after its dropout removal; kernel parameter 472 bytes): Flash_fwd_params : Qkv_params "
    "{...; int h, h_k (at 96); ...} {...; int b (at 176), seqlen_q, seqlen_k, seqlen_knew, d (at "
    "192), ...; int *cu_seqlens_q (at 224), *cu_seqlens_k (232), *leftpad_k, *seqused_k (248); "
    "...}; causal is the kernel's Is_causal template argument"
)
VLLM_CACHE = (
    "vLLM 0.33.0 (csrc/cache_kernels.cu): reshape_and_cache_flash_kernel<scalar_t, cache_t, "
    "kv_dt>(const scalar_t* key, const scalar_t* value, cache_t* key_cache, cache_t* "
    "value_cache, const int64_t* slot_mapping, int64_t block_stride, page_stride, head_stride, "
    "key_stride, value_stride, int num_heads (argument 10), int head_size, int block_size, "
    "const float* k_scale, v_scale, int kv_scale_stride): one thread block per token"
)
VLLM_ROWWISE = (
    "vLLM 0.33.0 (csrc/; the argument positions the demangled signatures give, checked on a "
    "recorded run): one thread block per token; "
)


@dataclass(frozen=True)
class ArgLayout:
    """Where the problem size sits in the arguments of the kernels named by `pattern`."""

    id: int
    name: str  # short name, recorded in kernel_features.features["layout"]
    pattern: str  # parts of the mangled kernel name, in order, separated by '*'
    slices: tuple[tuple[int, int, int], ...]  # (argument index, byte offset, length), kept in order
    fields: str  # struct format (little-endian) of the kept bytes
    names: tuple[str, ...]  # one name per value `fields` unpacks
    decode: str  # the decoder in kernel_args.DECODERS
    source: str  # the declaration the offsets come from, with its library and version
    # (argument, offsets of the int32 batch size and of the cu_q, used_k, cu_k pointers): a
    # VARLEN_SUMMARY kept after the slices
    varlen: tuple[int, int, int, int, int] | None = None

    def __post_init__(self) -> None:
        plain = sum(length for _arg, _offset, length in self.slices)
        kept = plain + (VARLEN_SUMMARY_BYTES if self.varlen else 0)
        assert kept <= shim.ARGS_BYTES, f"{self.name}: keeps {kept} bytes"
        assert struct.calcsize(self.fields) <= plain, f"{self.name}: fields past the kept bytes"
        assert len(struct.unpack(self.fields, bytes(struct.calcsize(self.fields)))) == len(
            self.names
        ), f"{self.name}: one name per field"

    def unpack(self, kept: bytes) -> dict[str, int | float]:
        values = dict(zip(self.names, struct.unpack_from(self.fields, kept), strict=True))
        if self.varlen:
            at = sum(length for _arg, _offset, length in self.slices)
            summary = struct.unpack_from(VARLEN_SUMMARY[0], kept, at)
            values.update(zip(VARLEN_SUMMARY[1], summary, strict=True))
        return values

    def config_line(self) -> str:
        slices = [f"{a}:{o}:{n}" for a, o, n in self.slices]
        if self.varlen:
            slices.append("v" + ":".join(str(x) for x in self.varlen))
        return f"{self.id};{self.pattern};{','.join(slices)}"


def _elementwise(
    id: int, name: str, pattern: str, n_format: str, signature: str, decode: str = "elementwise"
) -> ArgLayout:
    """A kernel whose first argument is the element count."""
    return ArgLayout(
        id, name, pattern, ((0, 0, struct.calcsize(n_format)),), "<" + n_format, ("elements",),
        decode, f"{PYTORCH}: {signature}",
    )  # fmt: skip


def _flash2_kernels(
    id: int,
    name: str,
    namespace: str,
    slices: tuple[tuple[int, int, int], ...],
    fields: str,
    names: tuple[str, ...],
    decode: str,
    source: str,
    varlen: tuple[int, int, int, int, int] | None = None,
) -> tuple[ArgLayout, ...]:
    """FlashAttention 2's forward and split-KV forward kernels of one build (its mangled
    `namespace`), which take the same Flash_fwd_params: ids `id` and `id` + 1."""
    kernels = (("", "16flash_fwd_kernelI"), ("_splitkv", "24flash_fwd_splitkv_kernelI"))
    return tuple(
        ArgLayout(
            id + i,
            name + suffix,
            f"_ZN{namespace}{kernel}",
            slices,
            fields,
            names,
            decode,
            source,
            varlen,
        )  # fmt: skip
        for i, (suffix, kernel) in enumerate(kernels)
    )


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
    *_flash2_kernels(
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
    *(
        ArgLayout(
            id,
            name,
            # PackGQA, the mainloop's 11th bool, reshapes Q: the fields after it move
            "16FlashAttnFwdSm90I*25CollectiveMainloopFwdSm90I*4Sm90E" + "Lb?E" * 10 + pack_gqa,
            ((0, 8, 12), (0, shape_k + 8, 4), (0, rotary, 4), (0, pages, 4)),
            "<6i",
            ("seqlen_q", "d", "h", "h_k", "max_seqlen_k", "b"),
            "fa3",
            VLLM_FA3,
            varlen=(0, pages, 1904, 1936, 1912),
        )
        for id, name, pack_gqa, shape_k, rotary, pages in (
            (17, "vllm_fa3_fwd", "Lb1E", 112, 368, 416),
            (19, "vllm_fa3_fwd_unpacked", "Lb0E", 96, 336, 384),
        )
    ),
    *_flash2_kernels(
        20,
        "vllm_fa2_fwd",
        "5flash",
        ((0, 96, 8), (0, 176, 12), (0, 192, 4)),
        "<6i",
        ("h", "h_k", "b", "seqlen_q", "seqlen_k", "d"),
        "flash_varlen",
        VLLM_FA2,
        varlen=(0, 176, 224, 248, 232),
    ),  # fmt: skip
    *(
        ArgLayout(
            id,
            name,
            pattern,
            tuple((arg, 0, 4) for arg in args),
            f"<{len(args)}i",
            names,
            "vllm_rowwise",
            VLLM_ROWWISE + signature,
        )  # fmt: skip
        for id, name, pattern, args, names, signature in (
            (
                22,
                "vllm_act_and_mul",
                "4vllm18act_and_mul_kernelI",
                (2,),
                ("d",),
                "activation_kernels.cu act_and_mul_kernel<scalar_t, ...>(scalar_t* out, const "
                "scalar_t* input [tokens, 2, d], const int d, ...)",
            ),
            (
                23,
                "vllm_rms_norm",
                "4vllm15rms_norm_kernelI",
                (11,),
                ("hidden_size",),
                "layernorm_kernels.cu rms_norm_kernel<scalar_t, ...>(scalar_t* out, const scalar_t* "
                "input, int64_t x5 strides, const scalar_t* weight, int64_t, float epsilon, int "
                "num_tokens, int hidden_size (argument 11))",
            ),
            (
                24,
                "vllm_fused_add_rms_norm",
                "4vllm25fused_add_rms_norm_kernelI",
                (6,),
                ("hidden_size",),
                "layernorm_kernels.cu fused_add_rms_norm_kernel<scalar_t, ...>(scalar_t* input, "
                "int64_t input_stride, scalar_t* residual, const scalar_t* weight, float epsilon, "
                "int num_tokens, int hidden_size (argument 6), int64_t)",
            ),
            (
                25,
                "vllm_rotary_embedding",
                "4vllm23rotary_embedding_kernelI",
                (4, 8, 9, 10),
                ("rot_dim", "num_heads", "num_kv_heads", "head_size"),
                "pos_encoding_kernels.cu rotary_embedding_kernel<scalar_t, ...>(const int64_t* "
                "positions, scalar_t* query, scalar_t* key, const scalar_t* cos_sin_cache, int "
                "rot_dim (argument 4), int64_t query_stride, key_stride, head_stride, int num_heads "
                "(argument 8), int num_kv_heads, int head_size, ...)",
            ),
        )
    ),
    ArgLayout(
        18,
        "vllm_reshape_and_cache_flash",
        "4vllm30reshape_and_cache_flash_kernelI",
        ((10, 0, 4), (11, 0, 4), (12, 0, 4)),
        "<3i",
        ("num_heads", "head_size", "block_size"),
        "kv_cache_write",
        VLLM_CACHE,
    ),
)

BY_ID = {layout.id: layout for layout in LAYOUTS}
assert len(BY_ID) == len(LAYOUTS) and all(0 < i < 256 for i in BY_ID)


def config_lines() -> str:
    """The table as config.txt lines: `kernel_args=<id>;<pattern>;<arg>:<offset>:<length>,...`."""
    return "".join(f"kernel_args={layout.config_line()}\n" for layout in LAYOUTS)
