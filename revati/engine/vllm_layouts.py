"""Argument layouts of vLLM 0.33.0's kernels (its FlashAttention 2 and 3 builds, its own
one-block-per-token kernels); the table `kernel_layouts.LAYOUTS` includes them. How they were
worked out and checked: docs/prediction.md, "Shapes decoded from launch arguments"."""

from __future__ import annotations

from revati.engine.arg_layout import ArgLayout, flash2_kernels

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
VLLM_CUSTOM_ALLREDUCE = (
    "vLLM 0.33.0 (csrc/custom_all_reduce.cuh, the signature in its mangled name): "
    "cross_device_reduce_1stage / _2stage<T, int ngpus>(RankData* _dp, RankSignals sg (by value: "
    "Signal* signals[8], one per rank, its own and its peers' IPC-mapped flag buffers), Signal* "
    "self_sg, T* result, int rank (argument 4), int size (argument 5): 16-byte packs of T, the "
    "message's bytes / 16)"
)
VLLM_ROWWISE = (
    "vLLM 0.33.0 (csrc/; the argument positions the demangled signatures give, checked on a "
    "recorded run): one thread block per token; "
)


VLLM_LAYOUTS: tuple[ArgLayout, ...] = (
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
    *flash2_kernels(
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
    ArgLayout(
        26,
        "vllm_custom_allreduce",
        "4vllm26cross_device_reduce_?stageI",
        ((1, 0, 8), (4, 0, 4), (5, 0, 4)),
        "<Q2i",
        ("signal0", "rank", "packs"),
        "custom_allreduce",
        VLLM_CUSTOM_ALLREDUCE,
        group_unit=16,
    ),
)
