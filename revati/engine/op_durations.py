"""Durations of a drained batch's kernels, copies and memsets, predicted once per distinct shape.

A batch's operations are reduced to the fields a prediction depends on (record type, copy kind,
kernel and launch geometry, bytes); operations that agree on all of them get one prediction,
and every prediction is kept for the rest of the run, so a batch of 65,536 launches of one
kernel costs a few vectorised passes and no predictor call after the first. The predictor maps
each record on its own (`revati.predict`), so a cached duration is exactly what it would return.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from revati import shim
from revati.engine.durations import DurationModel, OpRequests
from revati.engine.gemm_shapes import GemmShape, gemm_columns
from revati.recorder.writer import StringCodes

# Odd 64-bit multipliers that spread the key words before they are combined.
_MIX = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5],
    dtype=np.uint64,
)
OP_TYPES = (shim.REC_LAUNCH, shim.REC_COPY, shim.REC_MEMSET)
SMALL_BATCH = 32
SHAPE_SHIFT = 16  # a GEMM shape id's place in key word 0 (above type and copy kind)  # up to this many operations, keys are built in Python (no array passes)


def op_mask(records: np.ndarray) -> np.ndarray:
    """Which records are device operations (kernels, copies, memsets)."""
    t = records["type"]
    return (t == shim.REC_LAUNCH) | (t == shim.REC_COPY) | (t == shim.REC_MEMSET)


def op_keys(ops: np.ndarray, shape_ids: np.ndarray | None = None) -> np.ndarray:
    """n x 4 uint64: what a prediction of each operation record depends on.

    A launch's words a, b and c hold its kernel, grid, block, shared memory and graph flag
    (the stream is in d and left out); a copy has its kind and bytes (c), a memset its bytes (b).
    A library GEMM's launch also has the id of its shape (`OpDurations.shape_ids`) in word 0."""
    t = ops["type"].astype(np.uint64)
    is_k, is_c = t == shim.REC_LAUNCH, t == shim.REC_COPY
    kind = np.where(is_c, ops["kind"] & shim.COPY_KIND_MASK, 0).astype(np.uint64)
    zero = np.zeros(len(ops), dtype=np.uint64)
    shape = zero if shape_ids is None else shape_ids.astype(np.uint64) << np.uint64(SHAPE_SHIFT)
    return np.stack(
        [
            t | (kind << np.uint64(8)) | shape,
            np.where(is_k, ops["a"], zero),
            np.where(is_k | ~is_c, ops["b"], zero),
            np.where(is_k | is_c, ops["c"], zero),
        ],
        axis=1,
    )


def distinct_values(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct values of a 1-D array, each value's position among them)."""
    if len(values) and (values == values[0]).all():  # one kernel in the whole run of launches
        return values[:1], np.zeros(len(values), dtype=np.int64)
    uniq, inverse = np.unique(values, return_inverse=True)
    return uniq, inverse.reshape(-1)


def distinct_rows(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of one row per distinct key, inverse: each row's position among them)."""
    if len(keys) and (keys == keys[0]).all():  # the common case: one shape in the whole batch
        return np.zeros(1, dtype=np.int64), np.zeros(len(keys), dtype=np.int64)
    with np.errstate(over="ignore"):
        h = np.bitwise_xor.reduce(keys * _MIX, axis=1)
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    if (keys[first][inverse] != keys).any():  # a hash collision: compare whole keys
        _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
    return first, inverse


class OpDurations:
    """Predicted (duration_ns, model code) per operation, cached per distinct operation key."""

    def __init__(self, durations: DurationModel, strings: StringCodes) -> None:
        self.durations = durations
        self.strings = strings
        self._cache: dict[tuple[int, ...], tuple[int, int]] = {}
        self._shapes: list[GemmShape | None] = [None]  # GEMM shapes by id (0: not a GEMM)
        self._shape_ids: dict[GemmShape, int] = {}

    def shape_ids(self, shapes: dict[int, GemmShape], n: int) -> np.ndarray:
        """For n records of which those at `shapes`' positions are GEMM launches: each record's
        shape id (0 for the others), the same id for the same shape all run long."""
        ids = np.zeros(n, dtype=np.uint64)
        for pos, shape in shapes.items():
            ids[pos] = self.shape_id(shape)
        return ids

    def shape_id(self, shape: GemmShape) -> int:
        """The id of a GEMM shape (the same for the same shape all run long)."""
        sid = self._shape_ids.get(shape)
        if sid is None:
            sid = self._shape_ids[shape] = len(self._shapes)
            self._shapes.append(shape)
        return sid

    def predict(
        self, ops: np.ndarray, name_of: Callable[[int], str], shape_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Durations (int64) and model codes (int32, into `strings`) of operation records
        `ops`; `name_of(kernel id)` is a kernel's name, `shape_ids` the ids of library GEMMs'
        shapes (`shape_ids`; None: no GEMM among them)."""
        if not len(ops):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
        if shape_ids is not None and not shape_ids.any():
            shape_ids = None
        if len(ops) <= SMALL_BATCH:
            return self._predict_few(ops, name_of, shape_ids)
        if shape_ids is None and _all_like_first(ops):  # e.g. a run of launches of one kernel
            d, m = self._predict_few(ops[:1], name_of, None)
            return np.full(len(ops), d[0], dtype=np.int64), np.full(len(ops), m[0], np.int32)
        keys = op_keys(ops, shape_ids)
        first, inverse = distinct_rows(keys)
        distinct = [tuple(k) for k in keys[first].tolist()]
        missing = [i for i, k in enumerate(distinct) if k not in self._cache]
        if missing:
            self._predict_missing(ops[first[missing]], [distinct[i] for i in missing], name_of)
        values = np.array([self._cache[k] for k in distinct], dtype=np.int64).reshape(-1, 2)
        return values[inverse, 0], values[inverse, 1].astype(np.int32)

    def _predict_few(
        self, ops: np.ndarray, name_of: Callable[[int], str], shape_ids: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """`predict` for a handful of records: plain Python, no array passes."""
        sids = [0] * len(ops) if shape_ids is None else shape_ids.tolist()
        values = self.predict_rows(ops.tolist(), sids, lambda rows: ops[rows], name_of)
        return (
            np.array([d for d, _ in values], dtype=np.int64),
            np.array([m for _, m in values], dtype=np.int32),
        )

    def predict_rows(
        self,
        rows: list[tuple],
        shape_ids: list[int],
        select: Callable[[list[int]], np.ndarray],
        name_of: Callable[[int], str],
    ) -> list[tuple[int, int]]:
        """(duration, model code) of each operation record in `rows` (tuples of RECORD_DTYPE's
        fields, with their GEMM shape ids); `select(positions)` gives those records as an array,
        which only a prediction not cached yet needs."""
        keys = [_key(r, sid) for r, sid in zip(rows, shape_ids, strict=True)]
        missing = [i for i, k in enumerate(keys) if k not in self._cache]
        if missing:
            unique = list(dict.fromkeys(keys[i] for i in missing))
            first = [keys.index(k) for k in unique]
            self._predict_missing(select(first), unique, name_of)
        return [self._cache[k] for k in keys]

    def _predict_missing(
        self, ops: np.ndarray, keys: list[tuple[int, ...]], name_of: Callable[[int], str]
    ) -> None:
        shapes = [self._shapes[k[0] >> SHAPE_SHIFT] for k in keys]
        durations, models = self.durations.predict(_requests(ops, name_of, shapes))
        for key, d, m in zip(keys, durations.tolist(), models.tolist(), strict=True):
            self._cache[key] = (int(d), self.strings.code(str(m)))


_TYPE_AND_KIND = np.uint64(0xFFFF << 32)  # their bits in a record's first 64-bit word


def _all_like_first(ops: np.ndarray) -> bool:
    """Whether every record agrees with the first on every field a key is made of (type and kind
    in word 0, a, b and c in words 4-6 of the record's eight 64-bit words)."""
    words = ops.view(np.uint64).reshape(len(ops), 8)
    if ((words[:, 0] ^ words[0, 0]) & _TYPE_AND_KIND).any():
        return False
    return bool((words[:, 4:7] == words[0, 4:7]).all())


def _key(r: tuple, shape_id: int = 0) -> tuple[int, ...]:
    """`op_keys` of one record (a tuple of RECORD_DTYPE's fields)."""
    t, kind, a, b, c = r[1], r[2], r[8], r[9], r[10]
    if t == shim.REC_LAUNCH:
        return (t | shape_id << SHAPE_SHIFT, a, b, c)
    if t == shim.REC_COPY:
        return (t | (kind & shim.COPY_KIND_MASK) << 8, 0, 0, c)
    return (t, 0, b, 0)


def _requests(
    ops: np.ndarray, name_of: Callable[[int], str], shapes: list[GemmShape | None]
) -> OpRequests:
    """Operation records as predictor requests (one per record; `shapes`: their GEMM shapes)."""
    lv = shim.launch_view(ops)
    reqs = OpRequests()
    for r, launch in zip(ops.tolist(), lv.tolist(), strict=True):
        t, kind, b, c = r[1], r[2], r[9], r[10]
        if t == shim.REC_LAUNCH:
            _h, kernel, gx, gy, gz, bx, by, bz, _flag, smem, _stream = launch
            reqs.add("kernel", name_of(int(kernel)), (gx, gy, gz), (bx, by, bz), smem)
        elif t == shim.REC_COPY:
            ckind = shim.COPY_KINDS[kind & shim.COPY_KIND_MASK]
            reqs.add("copy", f"memcpy {ckind}", nbytes=int(c), copy_kind=ckind)
        else:
            reqs.add("memset", "memset", nbytes=int(b))
    if any(shape is not None for shape in shapes):
        known = {i: shape for i, shape in enumerate(shapes) if shape is not None}
        reqs.gemm = gemm_columns(known, np.arange(len(shapes)))
    return reqs
