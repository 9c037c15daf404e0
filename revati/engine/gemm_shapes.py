"""Library GEMM shapes (REC_GEMM records).

cuBLAS and cuBLASLt calls reach the ring as a REC_GEMM record (m, n, k, batch, types,
transposes, leading dimensions, strides, epilogue) followed by the REC_LAUNCH record of the
kernel that stands for the call (`launch_shapes.pair_shapes` pairs them); the predictor reads
the shape's columns, the trace gets them in `kernel_features`.
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

    def predictor_columns(self) -> dict[str, object]:
        """Predictor columns (OpBatch names)."""
        return dict(gemm_m=self.m, gemm_n=self.n, gemm_k=self.k, batch=self.batch,
                    dtype=self.dtype)  # fmt: skip


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
