"""The workload the synthetic traces replay: Llama-3-8B-like layers at tensor parallelism 4.

Durations are plausible H100 figures (ns) for 32 decode tokens and a 4096-token prefill; they
only need to look right in a timeline, not to be measurements.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

LAUNCH_LATENCY_NS = 2_500

# The kernels of one transformer layer, in two segments that each end in an all-reduce.
LAYER_SEGMENTS = (
    ("rmsnorm", "qkv", "rotary", "attention", "o_proj", "allreduce"),
    ("rmsnorm_add", "gate_up", "silu_mul", "down", "allreduce"),
)

_GEMM = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize{}_warpgroupsize{}_execute_segment_k_off_kernel__5x_cublas"
_FLASH = (
    "void {}<Flash_fwd_kernel_traits<128, {}, {}, 4, false, false, cutlass::bfloat16_t, "
    "Flash_kernel_traits<128, {}, {}, 4, cutlass::bfloat16_t> >, {}, true, false, false, "
    "true, true, false, false>(Flash_fwd_params)"
)
NAMES = {
    "rmsnorm": "void vllm::rms_norm_kernel<c10::BFloat16>(c10::BFloat16*, c10::BFloat16 const*, "
    "c10::BFloat16 const*, float, int, int)",
    "rmsnorm_add": "void vllm::fused_add_rms_norm_kernel<c10::BFloat16, 8>(c10::BFloat16*, "
    "c10::BFloat16*, c10::BFloat16 const*, float, int, int)",
    "gemm_small": _GEMM.format("64x128x64", "1x1x1"),
    "gemm": _GEMM.format("128x128x64", "1x1x1"),
    "gemm_large": _GEMM.format("128x256x64", "2x1x1"),
    "rotary": "void vllm::rotary_embedding_kernel<c10::BFloat16, true>(long const*, "
    "c10::BFloat16*, c10::BFloat16*, c10::BFloat16 const*, int, long, long, int, int, int)",
    "flash_prefill": _FLASH.format("flash_fwd_kernel", 128, 64, 128, 64, "false"),
    "flash_decode": _FLASH.format("flash_fwd_splitkv_kernel", 64, 128, 64, 128, "true"),
    "silu_mul": "void vllm::act_and_mul_kernel<c10::BFloat16, &(c10::BFloat16 vllm::silu_kernel"
    "<c10::BFloat16>(c10::BFloat16 const&)), true>(c10::BFloat16*, "
    "c10::BFloat16 const*, int)",
    "allreduce": "ncclDevKernel_AllReduce_Sum_bf16_RING_LL",
    "argmax": "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<c10::BFloat16, "
    "at::native::ArgMaxOps<c10::BFloat16>, unsigned int, long, 4, 4> >(at::native::"
    "ReduceOp<c10::BFloat16, at::native::ArgMaxOps<c10::BFloat16>, unsigned int, long, 4, 4>)",
}
HOST_NS = {
    "cudaLaunchKernel": 4_500,
    "cublasLtMatmul": 9_000,
    "ncclAllReduce": 12_000,
    "cudaMemcpyAsync": 6_000,
    "cudaMemsetAsync": 4_000,
}


@dataclass(frozen=True)
class KernelSpec:
    """One device op as launched by one host call."""

    name: str
    api: str
    stream: str  # "compute" | "nccl" | "copy"
    duration: int  # ns, before jitter
    model: str
    op: str = "kernel"  # "kernel" | "copy" | "memset"
    grid: tuple[int, int, int] = (1, 1, 1)
    block: tuple[int, int, int] = (256, 1, 1)
    gemm: tuple[int, int, int] | None = None
    features: str | None = None  # JSON
    nbytes: int = 0
    copy_kind: str | None = None

    @property
    def host_ns(self) -> int:
        return HOST_NS[self.api]


@dataclass(frozen=True)
class Phase:
    """One iteration's shape (prefill or decode) and the request markers it emits."""

    name: str
    tokens: int
    kernels: dict[str, KernelSpec]
    h2d: KernelSpec
    memset: KernelSpec
    logits: KernelSpec
    argmax: KernelSpec
    d2h: KernelSpec
    scheduler_ns: int
    arrivals: tuple[str, ...] = ()
    first_tokens: tuple[str, ...] = ()
    last_tokens: tuple[str, ...] = ()

    @property
    def allreduce_bytes(self) -> int:
        return self.tokens * 4096 * 2


def _gemm(name: str, m: int, n: int, k: int, ns: int) -> KernelSpec:
    grid = (max(1, n // 128), max(1, m // 128), 1)
    return KernelSpec(
        NAMES[name],
        "cublasLtMatmul",
        "compute",
        ns,
        "gemm",
        grid=grid,
        block=(384, 1, 1),
        gemm=(m, n, k),
    )


def _kernel(
    name: str,
    ns: int,
    grid: int,
    model: str = "elementwise",
    features: str | None = None,
    kernel_name: str | None = None,
) -> KernelSpec:
    return KernelSpec(
        kernel_name or NAMES[name],
        "cudaLaunchKernel",
        "compute",
        ns,
        model,
        grid=(grid, 1, 1),
        features=features,
    )


def _phase(prefill: bool) -> Phase:
    t = 4096 if prefill else 32
    attn = (
        '{"attn_batch": 8, "attn_q_len": 512, "attn_kv_len": 512, "attn_heads": 8, '
        '"attn_kv_heads": 2, "attn_head_dim": 128}'
        if prefill
        else '{"attn_batch": 32, "attn_q_len": 1, "attn_kv_len": 1024, "attn_heads": 8, '
        '"attn_kv_heads": 2, "attn_head_dim": 128}'
    )
    p = prefill
    kernels = {
        "rmsnorm": _kernel("rmsnorm", 18_000 if p else 2_200, t),
        "qkv": _gemm("gemm" if p else "gemm_small", t, 1536, 4096, 110_000 if p else 6_500),
        "rotary": _kernel("rotary", 14_000 if p else 1_600, t),
        "attention": _kernel(
            "flash_prefill" if p else "flash_decode",
            240_000 if p else 9_000,
            64 if p else 32,
            "attention",
            attn,
        ),
        "o_proj": _gemm("gemm" if p else "gemm_small", t, 4096, 1024, 70_000 if p else 4_200),
        "allreduce": KernelSpec(
            NAMES["allreduce"],
            "ncclAllReduce",
            "nccl",
            180_000 if p else 11_000,
            "collective",
            grid=(24, 1, 1),
            block=(512, 1, 1),
            nbytes=t * 4096 * 2,
        ),
        "rmsnorm_add": _kernel("rmsnorm_add", 22_000 if p else 2_600, t),
        "gate_up": _gemm("gemm_large" if p else "gemm", t, 7168, 4096, 480_000 if p else 14_000),
        "silu_mul": _kernel("silu_mul", 30_000 if p else 2_000, t),
        "down": _gemm("gemm" if p else "gemm_small", t, 4096, 3584, 240_000 if p else 8_000),
    }
    m = 8 if p else 32  # logits only for the last token of each sequence
    return Phase(
        name="prefill" if p else "decode",
        tokens=t,
        kernels=kernels,
        h2d=KernelSpec(
            "memcpy HtoD",
            "cudaMemcpyAsync",
            "copy",
            5_000 if p else 3_000,
            "bandwidth",
            op="copy",
            nbytes=t * 8,
            copy_kind="HtoD",
        ),
        memset=KernelSpec(
            "memset",
            "cudaMemsetAsync",
            "compute",
            1_500,
            "bandwidth",
            op="memset",
            nbytes=m * 32064 * 4,
        ),
        logits=_gemm("gemm_large", m, 32064, 4096, 30_000),
        argmax=_kernel("argmax", 5_000, m, "reduction"),
        d2h=KernelSpec(
            "memcpy DtoH",
            "cudaMemcpyAsync",
            "compute",
            2_500,
            "bandwidth",
            op="copy",
            nbytes=m * 8,
            copy_kind="DtoH",
        ),
        scheduler_ns=900_000 if p else 250_000,
    )


PREFILL, DECODE = _phase(True), _phase(False)
DECODE_STEPS = 8  # decode iterations after each prefill; a wave of requests lives this long
WAVE_SIZE = 8


def iteration_phases(iterations: int) -> Iterator[Phase]:
    """Prefill a wave of requests, decode it DECODE_STEPS times, repeat."""
    for i in range(iterations):
        wave, step = divmod(i, DECODE_STEPS + 1)
        reqs = tuple(f"req-{wave}-{j}" for j in range(WAVE_SIZE))
        if step == 0:
            yield replace(PREFILL, arrivals=reqs, first_tokens=reqs)
        elif step == DECODE_STEPS or i == iterations - 1:
            yield replace(DECODE, last_tokens=reqs)
        else:
            yield DECODE
