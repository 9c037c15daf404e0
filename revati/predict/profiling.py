"""`revati profile`: time operations on a real GPU the way the calibration sources describe them.

With PyTorch on a CUDA GPU it times, each as the median of `reps` CUDA-event-timed repetitions
after `warmup` untimed ones:
- the four GEMMs of each chosen LLM's layer (the shapes of the vidur tables: QKV, output, up,
  down projections) at a range of token counts, as `F.linear` calls;
- attention through `F.scaled_dot_product_attention`: causal prefill at those token counts and
  decode (one query token) over KV lengths and batch sizes;
- elementwise bandwidth curves (add, copy, SiLU) and memsets over sizes;
- host-to-device, device-to-host (pinned) and device-to-device copies over sizes.
Collectives are not measured (one process times one GPU).

The records become a measurements file (`revati.predict.calibration.measured`) that
`revati calibrate` and `revati predict-report` read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from revati.errors import RevatiRunError
from revati.predict.batch import OpBatch
from revati.predict.calibration.measurements import Measurements
from revati.predict.calibration.vidur import GEMM_OPS, gemm_shape

# name -> (hidden, intermediate, heads, KV heads, gated MLP), from each model's config.json
LLM_SHAPES = {
    "llama-2-7b": (4096, 11008, 32, 32, True),
    "llama-3-8b": (4096, 14336, 32, 8, True),
    "qwen2.5-7b": (3584, 18944, 28, 4, True),
    "codellama-34b": (8192, 22016, 64, 8, True),
    "phi-2": (2560, 10240, 32, 32, False),
}
TOKENS = (1, 2, 4, 8, 16, 32, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 4096, 8192)
QUICK_TOKENS = (1, 16, 128, 512, 2048)
DECODE_KV = (128, 512, 2048, 8192)
DECODE_BATCH = (1, 8, 32)
ELEMENTS = tuple(2**p for p in range(12, 29, 2))
COPY_BYTES = tuple(2**p for p in range(12, 31, 2))
SIZE_FOLDS = 4


@dataclass
class ProfilePlan:
    """What `revati profile` measures."""

    models: tuple[str, ...] = ("llama-2-7b", "llama-3-8b", "qwen2.5-7b")
    tokens: tuple[int, ...] = TOKENS
    dtype: str = "bf16"
    reps: int = 20
    warmup: int = 5


@dataclass
class RecordList:
    """Measured records as they are taken: OpBatch columns, ns and group."""

    columns: dict[str, list] = field(default_factory=dict)
    measured_ns: list[float] = field(default_factory=list)
    group: list[str] = field(default_factory=list)

    def add(self, ns: float, group: str, **cols: Any) -> None:
        n = len(self.measured_ns)
        for key in set(self.columns) | set(cols):
            self.columns.setdefault(key, [None] * n).append(cols.get(key))
        self.measured_ns.append(ns)
        self.group.append(group)

    def measurements(self, device: str) -> Measurements:
        n = len(self.measured_ns)
        batch = OpBatch.from_columns(n, **{k: _filled(v) for k, v in self.columns.items()})
        group = np.array(self.group, dtype=object)
        return Measurements(batch, np.array(self.measured_ns), group, device)


def _filled(values: list) -> np.ndarray:
    if any(isinstance(v, str) for v in values):
        return np.array(["" if v is None else v for v in values], dtype=object)
    return np.array([0 if v is None else v for v in values], dtype=np.int64)


def require_cuda() -> Any:
    """The torch module, once a CUDA GPU is known to be usable (else one clear error)."""
    try:
        import torch
    except ImportError as e:
        raise RevatiRunError(
            "revati profile needs PyTorch with CUDA; install torch on the GPU machine"
        ) from e
    if not torch.cuda.is_available():
        raise RevatiRunError(
            "revati profile needs a CUDA GPU and torch sees none (torch.cuda.is_available() is "
            "False); run it on the machine whose GPU you want to measure"
        )
    return torch


def profile_device(torch: Any, plan: ProfilePlan, log: Callable[[str], None]) -> RecordList:
    """Every measurement of `plan` on the current CUDA device."""
    timer = Timer(torch, plan.reps, plan.warmup)
    records = RecordList()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[plan.dtype]
    for model in plan.models:
        log(f"GEMMs and attention of {model}")
        _gemms(torch, timer, records, model, plan, dtype)
        _attention(torch, timer, records, model, plan, dtype)
    log("elementwise, memset and copy bandwidth")
    _bandwidth(torch, timer, records, dtype, 2 if plan.dtype != "fp32" else 4)
    _copies(torch, timer, records)
    return records


class Timer:
    """Median CUDA-event time of a callable, in ns."""

    def __init__(self, torch: Any, reps: int, warmup: int) -> None:
        self.torch, self.reps, self.warmup = torch, reps, warmup

    def __call__(self, fn: Callable[[], object]) -> float:
        cuda = self.torch.cuda
        for _ in range(self.warmup):
            fn()
        start, end = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
        times = []
        for _ in range(self.reps):
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) * 1e6)
        return float(np.median(times))


def _layer(model: str) -> dict[str, int]:
    hidden, inter, heads, kv_heads, gated = LLM_SHAPES[model]
    return dict(
        n_embd=hidden, n_expanded_embd=inter, n_head=heads, n_kv_head=kv_heads,
        use_gated_mlp=int(gated), num_tensor_parallel_workers=1,
    )  # fmt: skip


def _gemms(torch, timer: Timer, records: RecordList, model: str, plan, dtype) -> None:
    row = _layer(model)
    for op in GEMM_OPS:
        _, n, k = gemm_shape(op, row, 1)
        weight = torch.randn(n, k, device="cuda", dtype=dtype)
        for m in plan.tokens:
            x = torch.randn(m, k, device="cuda", dtype=dtype)
            ns = timer(partial(torch.nn.functional.linear, x, weight))
            nbytes = (m * k + k * n + m * n) * x.element_size()
            records.add(
                ns, model, name=f"gemm:{op}", gemm_m=m, gemm_n=n, gemm_k=k, batch=1,
                dtype=plan.dtype, bytes=nbytes,
            )  # fmt: skip


def _attention(torch, timer: Timer, records: RecordList, model: str, plan, dtype) -> None:
    hidden, _, heads, kv_heads, _ = LLM_SHAPES[model]
    d = hidden // heads
    sdpa = torch.nn.functional.scaled_dot_product_attention
    shapes = [(1, s, s, True) for s in plan.tokens if s >= 16]
    shapes += [(b, 1, kv, False) for b in DECODE_BATCH for kv in DECODE_KV]
    for b, q_len, kv_len, causal in shapes:
        q = torch.randn(b, heads, q_len, d, device="cuda", dtype=dtype)
        kv = torch.randn(b, kv_heads, kv_len, d, device="cuda", dtype=dtype)
        ns = timer(partial(sdpa, q, kv, kv, is_causal=causal, enable_gqa=True))
        records.add(
            ns, model, name=f"attention:{'prefill' if causal else 'decode'}", attn_batch=b,
            attn_q_len=q_len, attn_kv_len=kv_len, attn_heads=heads, attn_kv_heads=kv_heads,
            attn_head_dim=d, attn_causal=1 if causal else -1, dtype=plan.dtype,
        )  # fmt: skip


def _bandwidth(torch, timer: Timer, records: RecordList, dtype, elem: int) -> None:
    for i, n in enumerate(ELEMENTS):
        a = torch.randn(n, device="cuda", dtype=dtype)
        b = torch.randn(n, device="cuda", dtype=dtype)
        group = f"size-fold-{i % SIZE_FOLDS}"
        ops: list[tuple[str, Callable[[], object], int]] = [
            ("add", partial(torch.add, a, b), 3),
            ("copy", partial(b.copy_, a), 2),
            ("silu", partial(torch.nn.functional.silu, a), 2),
        ]
        for op, fn, moved in ops:
            records.add(timer(fn), group, name=f"elementwise:{op}", bytes=moved * n * elem)
        records.add(timer(a.zero_), group, kind="memset", name="memset", bytes=n * elem)


def _copies(torch, timer: Timer, records: RecordList) -> None:
    for i, nbytes in enumerate(COPY_BYTES):
        host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
        dev = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
        dev2 = torch.empty_like(dev)
        group = f"size-fold-{i % SIZE_FOLDS}"
        copies: list[tuple[str, Callable[[], object]]] = [
            ("HtoD", partial(dev.copy_, host, non_blocking=True)),
            ("DtoH", partial(host.copy_, dev, non_blocking=True)),
            ("DtoD", partial(dev2.copy_, dev)),
        ]
        for kind, fn in copies:
            records.add(
                timer(fn), group, kind="copy", name=f"memcpy {kind}", copy_kind=kind, bytes=nbytes
            )
