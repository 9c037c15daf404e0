"""Shapes of launches, from the record that precedes a launch record in the ring.

Two records carry a launch's shape and come just before its REC_LAUNCH record, from the same
thread (another thread's records may come between, and a drained batch may end between the
two): REC_GEMM (a library GEMM's m, n, k, types; `gemm_shapes.py`) and REC_KERNEL_ARGS (kept
argument bytes of a kernel whose layout is known; `kernel_args.py`). `pair_shapes` finds each
one's launch and decodes it; the predictor reads the shape's columns, the trace gets them in
`kernel_features`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from revati import shim
from revati.engine import kernel_args
from revati.engine.gemm_shapes import GemmShape, shape_of
from revati.engine.kernel_args import ArgsShape

LaunchShape = GemmShape | ArgsShape
PREFIX_TYPES = (shim.REC_GEMM, shim.REC_KERNEL_ARGS)
# predictor columns a shape may set, with their empty value
PREDICTOR_COLUMNS: dict[str, object] = {
    "gemm_m": 0, "gemm_n": 0, "gemm_k": 0, "batch": 0, "dtype": "", "bytes": 0,
    **dict.fromkeys(kernel_args.ATTENTION_COLUMNS, 0), "attn_causal": 0,
}  # fmt: skip
FEATURE_COLUMNS = ("gemm_m", "gemm_n", "gemm_k", "batch", "dtype", "bytes", "features")

_SHAPES: dict[tuple[bytes, str, int], LaunchShape | None] = {}  # a workload repeats a few shapes
_SHAPES_MAX = 1 << 14


def shape_of_record(record: bytes, name: str, blocks: int) -> LaunchShape | None:
    """The shape a REC_GEMM or REC_KERNEL_ARGS record (its 64 bytes) gives a launch of the
    kernel `name` (demangled) on `blocks` thread blocks, or None."""
    head = record[4:]  # everything but `commit`
    key = (head, name, blocks) if record[4] == shim.REC_KERNEL_ARGS else (head, "", 0)
    if key in _SHAPES:
        return _SHAPES[key]
    if len(_SHAPES) >= _SHAPES_MAX:
        _SHAPES.clear()
    shape: LaunchShape | None
    if record[4] == shim.REC_GEMM:
        row = np.frombuffer(record, dtype=shim.GEMM_DTYPE)[0]
        shape = shape_of(row, record[5])
    else:
        shape = kernel_args.decode(record[5], record[12:], name, blocks)
    _SHAPES[key] = shape
    return shape


def pair_shapes(
    records: np.ndarray, pending: dict[int, bytes], name_of: Callable[[int], str]
) -> dict[int, LaunchShape]:
    """{position of a launch record in `records`: its shape}.

    `pending` holds, per thread, a shape record whose launch had not been drained yet: it
    pairs with that thread's first launch here. Shape records left without a launch go back
    into `pending`. `name_of(kernel id)` is a kernel's demangled name."""
    types, threads = records["type"], records["thread"]
    is_prefix = (types == shim.REC_GEMM) | (types == shim.REC_KERNEL_ARGS)
    if not is_prefix.any() and not pending:
        return {}
    is_launch = types == shim.REC_LAUNCH
    launch = shim.launch_view(records)
    kernels = launch["kernel"]
    blocks = launch["grid_x"].astype(np.int64) * launch["grid_y"] * launch["grid_z"]
    out: dict[int, LaunchShape] = {}
    for thread in set(threads[is_prefix].tolist()) | set(pending):
        mine = threads == thread
        launches = np.flatnonzero(is_launch & mine)
        queue: list[tuple[int, bytes]] = []
        if thread in pending:
            queue.append((-1, pending.pop(thread)))
        queue += [(int(i), records[i].tobytes()) for i in np.flatnonzero(is_prefix & mine)]
        following = np.searchsorted(launches, [pos for pos, _ in queue], side="right")
        for (_pos, record), j in zip(queue, following.tolist(), strict=True):
            if j >= len(launches):
                pending[thread] = record
                continue
            at = int(launches[j])
            shape = shape_of_record(record, name_of(int(kernels[at])), int(blocks[at]))
            if shape is not None:
                out[at] = shape
    return out


def predictor_columns(
    shapes: dict[int, LaunchShape], positions: np.ndarray
) -> dict[str, np.ndarray]:
    """Predictor columns of the records at `positions` (sorted), from the shapes of some."""
    n = len(positions)
    cols = {
        name: np.full(n, empty, dtype=object if isinstance(empty, str) else np.int64)
        for name, empty in PREDICTOR_COLUMNS.items()
    }
    if not shapes:
        return cols
    keys = np.fromiter(shapes, dtype=np.int64, count=len(shapes))
    at = np.searchsorted(positions, keys)
    for i, shape in zip(at.tolist(), shapes.values(), strict=True):
        for name, value in shape.predictor_columns().items():
            cols[name][i] = value
    return cols


def feature_columns(shapes: list[LaunchShape | None]) -> dict[str, np.ndarray]:
    """`kernel_features` columns for kernel rows whose shapes are `shapes` (None: no shape);
    empty if none has one."""
    if not any(shape is not None for shape in shapes):
        return {}
    rows = [shape.columns() if shape is not None else {} for shape in shapes]
    return {
        name: np.array([row.get(name) for row in rows], dtype=object) for name in FEATURE_COLUMNS
    }
