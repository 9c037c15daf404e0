"""Durations predicted once per distinct operation equal the predictor's, record by record."""

from __future__ import annotations

import numpy as np
from revati.recorder.writer import StringCodes

from revati import shim
from revati.engine.durations import DurationModel, OpRequests
from revati.engine.op_durations import SMALL_BATCH, OpDurations, _key, distinct_rows, op_keys

NAMES = {1: "gemm_kernel", 2: "vectorized_elementwise_kernel", 3: "reduce_kernel"}


def _records(n: int, seed: int) -> np.ndarray:
    """n launches, copies and memsets with a few distinct shapes each."""
    rng = np.random.default_rng(seed)
    r = np.zeros(n, dtype=shim.RECORD_DTYPE)
    r["type"] = rng.choice([shim.REC_LAUNCH, shim.REC_COPY, shim.REC_MEMSET], n)
    r["kind"] = rng.integers(0, 4, n) | shim.F_ASYNC
    r["b"] = rng.choice([4096, 1 << 20, 1 << 26], n)
    r["c"] = rng.choice([4096, 1 << 20], n)
    lv = shim.launch_view(r)
    launch = r["type"] == shim.REC_LAUNCH
    lv["kernel"][launch] = rng.integers(1, 4, launch.sum())
    lv["grid_x"][launch] = rng.choice([1, 128, 4096], launch.sum())
    lv["block_x"][launch] = 256
    lv["stream"] = rng.integers(0, 3, n)  # not part of a prediction
    return r


def _direct(r: np.ndarray) -> tuple[list[int], list[str]]:
    """The predictor on each record, the way the engine asked before it cached."""
    reqs = OpRequests()
    for rec, launch in zip(r.tolist(), shim.launch_view(r).tolist(), strict=True):
        t, kind, b, c = rec[1], rec[2], rec[9], rec[10]
        if t == shim.REC_LAUNCH:
            _h, k, gx, gy, gz, bx, by, bz, _f, smem, _s = launch
            reqs.add("kernel", NAMES[k], (gx, gy, gz), (bx, by, bz), smem)
        elif t == shim.REC_COPY:
            ck = shim.COPY_KINDS[kind & shim.COPY_KIND_MASK]
            reqs.add("copy", f"memcpy {ck}", nbytes=c, copy_kind=ck)
        else:
            reqs.add("memset", "memset", nbytes=b)
    d, m = DurationModel("h100-sxm", None).predict(reqs)
    return d.tolist(), [str(x) for x in m]


def test_cached_durations_equal_the_predictors_record_by_record() -> None:
    strings = StringCodes()
    ops = OpDurations(DurationModel("h100-sxm", None), strings)
    same = np.repeat(_records(1, 6), 5000)  # one shape throughout: the single-key path
    for r in (_records(5000, 1), _records(SMALL_BATCH, 2), _records(3, 3), _records(5000, 4), same):
        durations, models = ops.predict(r, NAMES.__getitem__)
        want_d, want_m = _direct(r)
        assert durations.tolist() == want_d
        assert [strings.values[c] for c in models] == want_m


def test_one_key_per_prediction_input() -> None:
    r = _records(2000, 5)
    keys = op_keys(r)
    assert [tuple(k) for k in keys.tolist()] == [_key(x) for x in r.tolist()]
    first, inverse = distinct_rows(keys)
    assert (keys[first][inverse] == keys).all()
    assert len(first) == len({tuple(k) for k in keys.tolist()})
    same = np.repeat(keys[:1], 100, axis=0)
    assert distinct_rows(same)[0].tolist() == [0]
