"""Library GEMM shapes (REC_GEMM records) paired with the launch records of their kernels.

cuBLAS and cuBLASLt calls reach the ring as a REC_GEMM record (m, n, k, batch, types,
transposes, leading dimensions, strides, epilogue) followed by the REC_LAUNCH record of the
kernel that stands for the call, from the same thread; another thread's records may come
between, and a drained batch may end between the two. `pair_gemms` finds each shape's launch;
the predictor reads the shape's columns, the trace gets them in `kernel_features`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from revati import shim

# cublasComputeType_t -> name (CUBLAS_COMPUTE_<name>)
COMPUTE_TYPES = {
    64: "16F", 65: "16F_PEDANTIC", 68: "32F", 69: "32F_PEDANTIC", 70: "64F", 71: "64F_PEDANTIC",
    72: "32I", 73: "32I_PEDANTIC", 74: "32F_FAST_16F", 75: "32F_FAST_16BF", 77: "32F_FAST_TF32",
    78: "32F_EMULATED_16BFX9", 79: "64F_EMULATED_FIXEDPOINT",
}  # fmt: skip
_OPS = "ntc?"
# fp32 inputs that the compute type lets cuBLAS down-convert run at that type's peak
_FAST_FP32 = {77: "tf32", 74: "fp16", 75: "bf16"}


@dataclass(frozen=True)
class GemmShape:
    """One GEMM call's shape, as the predictor and the trace see it."""

    m: int
    n: int
    k: int
    batch: int
    dtype: str  # the predictor's element type: "bf16", "fp16", "fp32", "tf32", "fp8", ...
    features: str  # JSON: types, transposes, leading dimensions, strides, epilogue, api

    def columns(self) -> dict[str, object]:
        """The `kernel_features` columns of the GEMM's kernel row."""
        return dict(gemm_m=self.m, gemm_n=self.n, gemm_k=self.k, batch=self.batch,
                    dtype=self.dtype, features=self.features)  # fmt: skip


def _type_name(value: int) -> str:
    return shim.DATA_TYPES.get(value, f"type{value}")


def shape_of(g: np.void, kind: int) -> GemmShape:
    """The shape held by one REC_GEMM record (`g`: a GEMM_DTYPE row, `kind`: its kind byte)."""
    a, compute = int(g["a_type"]), int(g["compute"])
    dtype = _type_name(a)
    if dtype == "fp32":
        dtype = _FAST_FP32.get(compute, dtype)
    elif dtype.startswith("fp8"):
        dtype = "fp8"
    flags, epilogue = int(g["flags"]), int(g["epilogue"])
    device_scalars = bool(flags & shim.REC_GEMM_X_DEVICE_SCALARS)
    features = {
        "api": "cublasLt" if kind & shim.REC_GEMM_F_LT else "cublas",
        "a_type": _type_name(a),
        "b_type": _type_name(int(g["b_type"])),
        "c_type": _type_name(int(g["c_type"])),
        "compute_type": COMPUTE_TYPES.get(compute, str(compute)),
        "scale_type": _type_name(int(g["scale_type"])),
        "transa": _OPS[kind & 3],
        "transb": _OPS[(kind >> 2) & 3],
        "lda": int(g["lda"]),
        "ldb": int(g["ldb"]),
        "ldc": int(g["ldc"]),
        "stride_a": int(g["stride_a"]),
        "stride_b": int(g["stride_b"]),
        "epilogue": shim.EPILOGUES.get(epilogue, str(epilogue)),
        "bias": bool(flags & shim.REC_GEMM_X_BIAS),
        "fp8_scales": bool(flags & shim.REC_GEMM_X_FP8_SCALES),
        "pointer_array": bool(kind & shim.REC_GEMM_F_PTR_ARRAY),
        "beta_nonzero": None if device_scalars else bool(flags & shim.REC_GEMM_X_BETA),
    }
    return GemmShape(int(g["m"]), int(g["n"]), int(g["k"]), max(int(g["batch"]), 1), dtype,
                     json.dumps(features, separators=(",", ":")))  # fmt: skip


_SHAPES: dict[bytes, GemmShape] = {}  # by record payload: a workload repeats a few shapes
_SHAPES_MAX = 1 << 14


def cached_shape(payload: np.ndarray, gemms: np.ndarray, kinds: np.ndarray, i: int) -> GemmShape:
    """`shape_of` record i, looked up by its bytes after the 12-byte head (and its kind byte)."""
    key = payload[i].tobytes() + bytes((int(kinds[i]),))
    shape = _SHAPES.get(key)
    if shape is None:
        if len(_SHAPES) >= _SHAPES_MAX:
            _SHAPES.clear()
        shape = _SHAPES[key] = shape_of(gemms[i], int(kinds[i]))
    return shape


def pair_gemms(records: np.ndarray, pending: dict[int, GemmShape]) -> dict[int, GemmShape]:
    """{position of a launch record in `records`: the shape of its GEMM}.

    `pending` holds, per thread, a shape whose launch had not been drained yet: it pairs with
    that thread's first launch here. Shapes left without a launch go back into `pending`."""
    types, threads = records["type"], records["thread"]
    is_gemm = types == shim.REC_GEMM
    if not is_gemm.any() and not pending:
        return {}
    is_launch = types == shim.REC_LAUNCH
    gemms = shim.gemm_view(records)
    kinds = records["kind"]
    payload = records.view(np.uint8).reshape(len(records), shim.RECORD_SIZE)[:, 12:]
    out: dict[int, GemmShape] = {}
    for thread in set(threads[is_gemm].tolist()) | set(pending):
        mine = threads == thread
        launches = np.flatnonzero(is_launch & mine)
        shapes = np.flatnonzero(is_gemm & mine)
        queue: list[tuple[int, GemmShape]] = []
        if thread in pending:
            queue.append((-1, pending.pop(thread)))
        queue += [(int(i), cached_shape(payload, gemms, kinds, int(i))) for i in shapes]
        following = np.searchsorted(launches, [pos for pos, _ in queue], side="right")
        for (_pos, shape), j in zip(queue, following.tolist(), strict=True):
            if j < len(launches):
                out[int(launches[j])] = shape
            else:
                pending[thread] = shape
    return out


def gemm_columns(shapes: dict[int, GemmShape], positions: np.ndarray) -> dict[str, np.ndarray]:
    """Predictor columns (gemm_m/n/k, batch, dtype) for the records at `positions` (sorted)."""
    n = len(positions)
    cols: dict[str, np.ndarray] = {
        name: np.zeros(n, dtype=np.int64) for name in ("gemm_m", "gemm_n", "gemm_k", "batch")
    }
    cols["dtype"] = np.full(n, "", dtype=object)
    if not shapes:
        return cols
    keys = np.fromiter(shapes, dtype=np.int64, count=len(shapes))
    at = np.searchsorted(positions, keys)
    for i, shape in zip(at.tolist(), shapes.values(), strict=True):
        cols["gemm_m"][i], cols["gemm_n"][i], cols["gemm_k"][i] = shape.m, shape.n, shape.k
        cols["batch"][i], cols["dtype"][i] = shape.batch, shape.dtype
    return cols


def feature_columns(shapes: list[GemmShape | None]) -> dict[str, np.ndarray]:
    """`kernel_features` columns for kernel rows whose shapes are `shapes` (None: not a GEMM);
    empty if none is a GEMM."""
    known = [(i, shape) for i, shape in enumerate(shapes) if shape is not None]
    if not known:
        return {}
    names = ("gemm_m", "gemm_n", "gemm_k", "batch", "dtype", "features")
    columns = {name: np.full(len(shapes), None, dtype=object) for name in names}
    for i, shape in known:  # only the GEMMs: the other rows stay None
        for name, value in shape.columns().items():
            columns[name][i] = value
    return columns
