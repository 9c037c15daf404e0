"""Pairing REC_GEMM shape records with their kernels' launch records (revati.engine.launch_shapes)."""

from __future__ import annotations

import json

import numpy as np
from revati.recorder.writer import StringCodes

from revati import shim
from revati.engine.durations import DurationModel
from revati.engine.gemm_shapes import GemmShape, shape_of
from revati.engine.launch_shapes import pair_shapes, predictor_columns
from revati.engine.op_durations import SMALL_BATCH, OpDurations


def ring(*records: tuple) -> np.ndarray:
    """Records as the ring holds them: (type, thread) or (REC_GEMM, thread, m, n, k, a_type, kind)."""
    out = np.zeros(len(records), dtype=shim.RECORD_DTYPE)
    gemms = shim.gemm_view(out)
    for i, rec in enumerate(records):
        out["type"][i], out["thread"][i] = rec[0], rec[1]
        if rec[0] == shim.REC_GEMM:
            m, n, k, a_type, kind = rec[2:]
            out["kind"][i] = kind
            g = gemms[i]
            g["m"], g["n"], g["k"], g["batch"] = m, n, k, 1
            g["a_type"], g["b_type"], g["c_type"], g["compute"] = a_type, a_type, a_type, 68
            g["epilogue"] = 1
    return out


GEMM, LAUNCH, API = shim.REC_GEMM, shim.REC_LAUNCH, shim.REC_API
BF16, FP32 = 14, 0


def name_of(kernel: int) -> str:
    return "cublas_gemm"


def test_each_shape_pairs_with_the_next_launch_of_its_own_thread():
    records = ring(
        (GEMM, 1, 64, 32, 16, BF16, 1),  # thread 1's GEMM ...
        (LAUNCH, 2),  # ... another thread's kernel comes between
        (GEMM, 2, 8, 8, 8, FP32, 0),
        (API, 1),
        (LAUNCH, 1),  # thread 1's GEMM kernel
        (LAUNCH, 2),  # thread 2's GEMM kernel
        (LAUNCH, 1),  # a plain kernel
    )
    pending: dict[int, bytes] = {}
    shapes = pair_shapes(records, pending, name_of)
    assert sorted(shapes) == [4, 5]
    assert (shapes[4].m, shapes[4].n, shapes[4].k, shapes[4].dtype) == (64, 32, 16, "bf16")
    assert json.loads(shapes[4].features)["transa"] == "t"
    assert (shapes[5].m, shapes[5].dtype) == (8, "fp32")
    assert pending == {}


def test_a_shape_whose_launch_is_not_drained_yet_waits_for_the_next_batch():
    pending: dict[int, bytes] = {}
    assert pair_shapes(ring((LAUNCH, 1), (GEMM, 1, 128, 64, 32, BF16, 0)), pending, name_of) == {}
    assert list(pending) == [1]
    shapes = pair_shapes(ring((LAUNCH, 3), (LAUNCH, 1), (LAUNCH, 1)), pending, name_of)
    assert list(shapes) == [1] and shapes[1].m == 128
    assert pending == {}


def test_tf32_compute_on_fp32_inputs_is_predicted_at_tf32_peak():
    records = ring((GEMM, 1, 64, 64, 64, FP32, 0))
    shim.gemm_view(records)["compute"][0] = 77  # CUBLAS_COMPUTE_32F_FAST_TF32
    shape = shape_of(shim.gemm_view(records)[0], 0)
    assert shape.dtype == "tf32"
    assert json.loads(shape.features)["compute_type"] == "32F_FAST_TF32"


def test_gemm_columns_place_shapes_at_their_ops():
    shape = GemmShape(4, 5, 6, 2, "fp16", "{}")
    cols = predictor_columns({7: shape}, np.array([2, 7, 9]))
    assert cols["gemm_m"].tolist() == [0, 4, 0]
    assert cols["batch"].tolist() == [0, 2, 0]
    assert cols["dtype"].tolist() == ["", "fp16", ""]
    assert cols["bytes"].tolist() == [0, 0, 0]


def test_gemm_launches_alike_but_for_their_shape_get_their_own_durations():
    n = SMALL_BATCH + 8  # the array path; the first four take the per-record path below
    ops = np.zeros(n, dtype=shim.RECORD_DTYPE)
    ops["type"] = shim.REC_LAUNCH
    launches = shim.launch_view(ops)
    launches["kernel"], launches["grid_x"], launches["block_x"] = 1, 64, 256
    ops_durations = OpDurations(DurationModel("h100-sxm", None), StringCodes())
    shapes = {i: GemmShape(1024, 1024, 8192 if i % 2 else 64, 1, "bf16", "{}") for i in range(n)}
    ids = ops_durations.shape_ids(shapes, n)
    assert len(set(ids.tolist())) == 2
    durations, _ = ops_durations.predict(ops, lambda kernel: "cublas_gemm_bf16_nn", ids)
    assert durations[1] > 3 * durations[0] and len(set(durations.tolist())) == 2
    few, _ = ops_durations.predict(ops[:4], lambda kernel: "cublas_gemm_bf16_nn", ids[:4])
    assert few.tolist() == durations[:4].tolist()
