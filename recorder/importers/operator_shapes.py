"""Shapes of the operators that launched kernels, from PyTorch-profiler traces with shapes.

A trace recorded with `record_shapes=True` gives every `cpu_op` event `Input Dims`, `Input type`
and `Concrete Inputs`. A kernel is linked to the operator that launched it through its runtime
call: the call's `External id` names the innermost operator open on that thread, and when it is
missing the innermost operator whose time range holds the call's start stands in. From the
operator's inputs come:

- GEMMs (`aten::mm`, `addmm`, `bmm`, `baddbmm`, `linear`, `matmul`): m, n, k, batch, dtype and
  the bytes of A, B and C;
- convolutions (`aten::conv2d`, `convolution`, `cudnn_convolution`, ...): the implicit GEMM
  (m = batch · output positions, n = output channels, k = input channels · filter size);
- attention (`aten::scaled_dot_product_attention` and its flash / efficient / cuDNN variants,
  `aten::_flash_attention_forward`, `aten::_efficient_attention_forward`): batch, query and KV
  lengths, query and KV heads, head size, causal flag and dtype (feature keys `attn_*`);
- `aten::embedding` / `aten::index_select`: bytes of the rows picked, read and written;
- any other operator with tensor inputs (tensor lists count at 2 bytes an element): bytes
  moved, taken as every input read once plus an output the size of their broadcast (a
  per-kernel fit absorbs the constant factor of reductions and in-place operators).

Only the first tensor-holding operator found from the innermost outwards is used.
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from revati.recorder.importers.builder import TraceBuilder

# PyTorch's C++ type names in `Input type` -> (revati dtype, bytes per element)
TENSOR_TYPES = {
    "c10::BFloat16": ("bf16", 2),
    "c10::Half": ("fp16", 2),
    "float": ("fp32", 4),
    "double": ("fp64", 8),
    "c10::Float8_e4m3fn": ("fp8", 1),
    "c10::Float8_e5m2": ("fp8", 1),
    "c10::complex<float>": ("c64", 8),
    "c10::complex<double>": ("c128", 16),
    "c10::complex<c10::Half>": ("c32", 4),
    "long int": ("int64", 8),
    "int": ("int32", 4),
    "short int": ("int16", 2),
    "signed char": ("int8", 1),
    "unsigned char": ("uint8", 1),
    "bool": ("bool", 1),
}
GEMM_OPS = frozenset(
    ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::linear", "aten::matmul")
)
# convolution operator -> index of (stride, padding, dilation, groups) in Concrete Inputs
CONV_OPS = {
    "aten::conv1d": (3, 4, 5, 6),
    "aten::conv2d": (3, 4, 5, 6),
    "aten::conv3d": (3, 4, 5, 6),
    "aten::convolution": (3, 4, 5, 8),
    "aten::_convolution": (3, 4, 5, 8),
    "aten::cudnn_convolution": (3, 2, 4, 5),
}
# attention operator -> (layout of q/k/v dims, index of is_causal in Concrete Inputs)
ATTENTION_OPS = {
    "aten::scaled_dot_product_attention": ("bhsd", 5),
    "aten::_scaled_dot_product_flash_attention": ("bhsd", 4),
    "aten::_scaled_dot_product_efficient_attention": ("bhsd", 5),
    "aten::_scaled_dot_product_cudnn_attention": ("bhsd", 6),
    "aten::_flash_attention_forward": ("bshd", 8),
    "aten::_efficient_attention_forward": ("bshd", 9),
}
GATHER_OPS = frozenset(("aten::embedding", "aten::index_select"))  # (table, ..., index)
LIST_ELEMENT_BYTES = 2  # a tensor list's element size (its types are not recorded)
UNTYPED_ELEMENT_BYTES = 2  # element size of tensors whose type was not recorded (NVTX)
OP_CATEGORIES = ("cpu_op", "operator")
_SIZES = ", sizes = "
MAX_LOOKBACK = 256  # operators scanned back from a launch for those still open at it


@dataclass(frozen=True)
class HostOp:
    """One PyTorch operator call with the inputs the profiler recorded."""

    name: str
    start: float
    end: float
    dims: list
    types: list
    concrete: list


class OperatorIndex:
    """Operators by host thread and time (and, from Kineto, by External id)."""

    def __init__(
        self, by_thread: dict[Any, list[HostOp]], by_external: dict[int, HostOp] | None = None
    ) -> None:
        self.by_external = by_external or {}
        self.threads = {k: sorted(v, key=lambda op: op.start) for k, v in by_thread.items()}
        self.starts = {k: [op.start for op in v] for k, v in self.threads.items()}

    @classmethod
    def from_kineto(cls, events: list[dict[str, Any]]) -> OperatorIndex:
        """The `cpu_op` events with recorded inputs, keyed by (pid, tid)."""
        by_external: dict[int, HostOp] = {}
        by_thread: dict[Any, list[HostOp]] = {}
        for e in events:
            op = _host_op(e)
            if op is None:
                continue
            external = e["args"].get("External id")
            if isinstance(external, int):
                by_external[external] = op
            by_thread.setdefault((e.get("pid"), e.get("tid")), []).append(op)
        return cls(by_thread, by_external)

    @classmethod
    def from_nvtx(cls, ranges: list[tuple[Any, str, float, float]]) -> OperatorIndex:
        """NVTX ranges (thread, text, start, end) that PyTorch's `emit_nvtx(record_shapes=True)`
        names "aten::addmm, seq = 1, op_id = 2, sizes = [[768], [788, 768], ...]"."""
        by_thread: dict[Any, list[HostOp]] = {}
        for thread, text, start, end in ranges:
            op = nvtx_op(text, start, end)
            if op is not None:
                by_thread.setdefault(thread, []).append(op)
        return cls(by_thread)

    def __bool__(self) -> bool:
        return bool(self.threads)

    def enclosing(self, thread: Any, ts: float) -> list[HostOp]:
        """The operators of `thread` open at `ts`, innermost first."""
        ops = self.threads.get(thread)
        if not ops:
            return []
        stop = bisect.bisect_right(self.starts[thread], ts)
        nearest = ops[max(0, stop - MAX_LOOKBACK) : stop]
        return [op for op in reversed(nearest) if op.end >= ts]

    def features_at(self, thread: Any, ts: float, external: Any = None) -> dict[str, Any]:
        """Shape features of the operator that launched at `ts` on `thread` ({} if none):
        the operator named by `external` first, then those open at `ts`, innermost first."""
        candidates = self.enclosing(thread, ts)
        direct = self.by_external.get(external) if isinstance(external, int) else None
        if direct is not None and all(direct is not op for op in candidates):
            candidates.insert(0, direct)
        for op in candidates:
            features = op_features(op)
            if features:
                return features
        return {}

    def launcher_features(self, call: dict[str, Any]) -> dict[str, Any]:
        """Shape features of the operator that made Kineto runtime call `call`, or {}."""
        ts = call.get("ts")
        if not isinstance(ts, (int, float)):
            return {}
        external = (call.get("args") or {}).get("External id")
        return self.features_at((call.get("pid"), call.get("tid")), float(ts), external)


def nvtx_op(text: str, start: float, end: float) -> HostOp | None:
    """The operator an `emit_nvtx` range names, with its input sizes (None without sizes)."""
    at = text.find(_SIZES)
    if at < 0:
        return None
    raw = text[at + len(_SIZES) :]
    depth = 0
    for i, ch in enumerate(raw):
        depth += (ch == "[") - (ch == "]")
        if depth == 0:
            raw = raw[: i + 1]
            break
    try:
        dims = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(dims, list):
        return None
    return HostOp(text.split(",", 1)[0].strip(), float(start), float(end), dims, [], [])


def _host_op(e: dict[str, Any]) -> HostOp | None:
    cat = e.get("cat")
    args = e.get("args")
    if not isinstance(cat, str) or cat.lower() not in OP_CATEGORIES or not isinstance(args, dict):
        return None
    dims, ts, dur = args.get("Input Dims"), e.get("ts"), e.get("dur")
    if not isinstance(dims, list) or not isinstance(ts, (int, float)):
        return None
    types = args.get("Input type")
    concrete = args.get("Concrete Inputs")
    return HostOp(
        name=str(e.get("name")),
        start=float(ts),
        end=float(ts) + (float(dur) if isinstance(dur, (int, float)) else 0.0),
        dims=dims,
        types=types if isinstance(types, list) else [],
        concrete=concrete if isinstance(concrete, list) else [],
    )


def op_features(op: HostOp) -> dict[str, Any]:
    """Kernel features implied by operator `op`'s inputs ({} when it has no tensor input)."""
    tensors = _tensors(op)
    if not tensors:
        return {}
    if op.name in GEMM_OPS:
        return _gemm(op.name, tensors)
    if op.name in ATTENTION_OPS:
        return _attention(op, tensors)
    if op.name in CONV_OPS:
        return _convolution(op, tensors)
    if op.name in GATHER_OPS and len(tensors) >= 2:  # rows of a table picked by an index
        (table, _, size), (index, _, _) = tensors[0], tensors[-1]
        return {"bytes": 2 * _numel(index) * _numel(table[1:]) * size}
    total = sum(_numel(d) * size for d, _, size in tensors)
    return {"bytes": total + _output_bytes(tensors)} if total else {}


def _output_bytes(tensors: list[tuple[list[int], str, int]]) -> int:
    """Bytes of the broadcast of the inputs (else of the largest), in the first's dtype."""
    try:
        shape = np.broadcast_shapes(*(tuple(d) for d, _, _ in tensors))
        return _numel(list(shape)) * tensors[0][2]
    except ValueError:
        return max(_numel(d) * size for d, _, size in tensors)


def _tensors(op: HostOp) -> list[tuple[list[int], str, int]]:
    """(dims, dtype, element size) of each tensor input, in order."""
    out = []
    for i, dims in enumerate(op.dims):
        if not op.types:  # NVTX sizes carry no types: tensors of unknown 16-bit elements
            if _is_dims(dims):
                out.append((dims, "", UNTYPED_ELEMENT_BYTES))
            continue
        kind = op.types[i] if i < len(op.types) else None
        if kind == "TensorList" and isinstance(dims, list):  # element types are not recorded
            members = [d for d in dims if _is_dims(d)]
            if members:
                out.append(([sum(_numel(d) for d in members)], "", LIST_ELEMENT_BYTES))
            continue
        known = TENSOR_TYPES.get(kind) if isinstance(kind, str) else None
        if known and _is_dims(dims):
            out.append((dims, known[0], known[1]))
    return out


def _is_dims(dims: Any) -> bool:
    return isinstance(dims, list) and bool(dims) and all(isinstance(d, int) for d in dims)


def _numel(dims: list[int]) -> int:
    return math.prod(max(d, 0) for d in dims)


def _gemm(name: str, tensors: list[tuple[list[int], str, int]]) -> dict[str, Any]:
    """m, n, k, batch (C = A·B, A m×k, B k×n) of a GEMM operator's inputs."""
    mats = [t for t in tensors if len(t[0]) >= 2]
    if name in ("aten::addmm", "aten::baddbmm") and len(mats) >= 3:
        mats = mats[1:]  # the bias is a matrix too
    if len(mats) < 2:
        return {}
    (a, dtype, size), (b, _, _) = mats[0], mats[1]
    if name == "aten::linear":  # input [..., k], weight [n, k]
        m, k, n, batch = _numel(a[:-1]), a[-1], b[0], 1
    else:  # mm / addmm [m, k] x [k, n]; bmm / matmul [..., m, k] x [..., k, n]
        m, k, n = a[-2], a[-1], b[-1]
        batch = max(_numel(a[:-2]), _numel(b[:-2]), 1)
        if name == "aten::matmul" and len(b) == 2:  # [..., m, k] x [k, n] folds into one GEMM
            m, batch = m * batch, 1
    if min(m, n, k) <= 0:
        return {}
    nbytes = (m * k + k * n + m * n) * size * batch
    return {"gemm_m": m, "gemm_n": n, "gemm_k": k, "batch": batch, "dtype": dtype, "bytes": nbytes}


def _convolution(op: HostOp, tensors: list[tuple[list[int], str, int]]) -> dict[str, Any]:
    """The implicit GEMM of a forward convolution: m = N·output positions, n = output
    channels, k = input channels · filter positions (per group; groups are the batch)."""
    if len(tensors) < 2 or len(tensors[0][0]) < 3 or len(tensors[1][0]) != len(tensors[0][0]):
        return {}
    (x, dtype, size), (w, _, _) = tensors[0], tensors[1]
    spatial = len(x) - 2
    at = CONV_OPS[op.name]
    stride, padding, dilation = (
        _int_list(op, i, spatial, d) for i, d in zip(at[:3], (1, 0, 1), strict=True)
    )
    groups = max(_int_list(op, at[3], 1, 1)[0], 1)
    out = [
        (x[2 + i] + 2 * padding[i] - dilation[i] * (w[2 + i] - 1) - 1) // max(stride[i], 1) + 1
        for i in range(spatial)
    ]
    m, n, k = x[0] * _numel(out), w[0] // groups, w[1] * _numel(w[2:])
    if min(m, n, k, *out) <= 0:
        return {}
    nbytes = (_numel(x) + _numel(w) + m * n * groups) * size
    return {"gemm_m": m, "gemm_n": n, "gemm_k": k, "batch": groups, "dtype": dtype, "bytes": nbytes}


def _int_list(op: HostOp, index: int, count: int, default: int) -> list[int]:
    """Concrete input `index` ("[16, 16]" or "1") as `count` ints (else `default`s)."""
    raw = op.concrete[index] if index < len(op.concrete) else ""
    try:
        values = [int(v) for v in str(raw).strip("[]").split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        return [default] * count
    return (
        values * count if len(values) == 1 else values[:count] + [default] * (count - len(values))
    )


def _attention(op: HostOp, tensors: list[tuple[list[int], str, int]]) -> dict[str, Any]:
    layout, causal_at = ATTENTION_OPS[op.name]
    qkv = [t for t in tensors if len(t[0]) == 4][:2]
    if len(qkv) < 2:
        return {}
    (q, dtype, _), (k, _, _) = qkv
    if layout == "bhsd":
        b, h, s, d = q
        g, s_kv = k[1], k[2]
    else:
        b, s, h, d = q
        s_kv, g = k[1], k[2]
    features: dict[str, Any] = {
        "attn_batch": b,
        "attn_q_len": s,
        "attn_kv_len": s_kv,
        "attn_heads": h,
        "attn_kv_heads": g,
        "attn_head_dim": d,
        "dtype": dtype,
    }
    flag = op.concrete[causal_at] if causal_at < len(op.concrete) else ""
    if flag in ("True", "False"):
        features["attn_causal"] = flag == "True"
    return features


def kernel_columns(shape: dict[str, Any]) -> dict[str, Any]:
    """The `kernels` columns a shape fills (attention dims go into `features`)."""
    return {k: shape.get(k) for k in ("gemm_m", "gemm_n", "gemm_k", "batch", "bytes")} | {
        "dtype": shape.get("dtype") or None
    }


def attach_nvtx_shapes(b: TraceBuilder) -> int:
    """Fill the shapes of the kernels of builder `b` from the `emit_nvtx` ranges open on the
    launching thread at each launch; the number of kernels that gained one."""
    ranges, kernels = b.tables.get("nvtx_ranges"), b.tables.get("kernels")
    if not ranges or not kernels:
        return 0
    columns = ("thread_id", "name", "start_ns", "end_ns")
    index = OperatorIndex.from_nvtx(list(zip(*(ranges[c] for c in columns), strict=True)))
    if not index:
        return 0
    calls = {cid: i for i, cid in enumerate(b.column("api_calls", "call_id"))}
    threads, enters = b.column("api_calls", "thread_id"), b.column("api_calls", "enter_ns")
    gained = 0
    for i, call_id in enumerate(kernels["call_id"]):
        row = calls.get(call_id)
        shape = index.features_at(threads[row], enters[row]) if row is not None else {}
        if not shape:
            continue
        for col, value in kernel_columns(shape).items():
            kernels[col][i] = value if value is not None else kernels[col][i]
        attn = {k: v for k, v in shape.items() if k.startswith("attn_")}
        if attn:
            kernels["features"][i] = json.dumps(json.loads(kernels["features"][i] or "{}") | attn)
        gained += 1
    return gained
