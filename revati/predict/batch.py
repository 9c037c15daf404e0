"""Columnar records in (`OpBatch`) and durations out (`Prediction`) of the predictor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# attention problem dims (0: unknown)
ATTENTION_COLUMNS = (
    "attn_batch",
    "attn_q_len",
    "attn_kv_len",
    "attn_heads",
    "attn_kv_heads",
    "attn_head_dim",
)
INT_COLUMNS = (
    "grid_x",
    "grid_y",
    "grid_z",
    "block_x",
    "block_y",
    "block_z",
    "shared_mem",
    "registers",
    "bytes",
    "gemm_m",
    "gemm_n",
    "gemm_k",
    "batch",
    "world_size",
    *ATTENTION_COLUMNS,
    "attn_causal",
)
STR_COLUMNS = ("kind", "name", "dtype", "copy_kind", "collective", "topology")
KINDS = ("kernel", "copy", "memset", "collective")
_COLUMN_SET = frozenset((*INT_COLUMNS, *STR_COLUMNS))


class OpBatch:
    """n operation records, one numpy array per column (ints int64, strings object arrays).

    `kind` is "kernel" | "copy" | "memset" | "collective"; GEMM features (gemm_m/n/k, batch,
    dtype), attention features (attn_*; attn_causal is 1 causal, -1 not, 0 unknown), `bytes`
    moved, and collective/world_size describe the operation where known; 0 or "" means unknown. A collective's `topology` names how its members
    are connected ("dgx/1node": NVSwitch within one node; "dgx/<k>pernode": k members on each of
    several nodes); "" is the profile's topology.
    """

    __slots__ = ("n", "_names", "_source", *INT_COLUMNS, *STR_COLUMNS)

    n: int
    _names: tuple[list, np.ndarray] | None
    _source: tuple[OpBatch, np.ndarray] | None
    kind: np.ndarray
    name: np.ndarray
    dtype: np.ndarray
    copy_kind: np.ndarray
    collective: np.ndarray
    topology: np.ndarray
    grid_x: np.ndarray
    grid_y: np.ndarray
    grid_z: np.ndarray
    block_x: np.ndarray
    block_y: np.ndarray
    block_z: np.ndarray
    shared_mem: np.ndarray
    registers: np.ndarray
    bytes: np.ndarray
    gemm_m: np.ndarray
    gemm_n: np.ndarray
    gemm_k: np.ndarray
    batch: np.ndarray
    world_size: np.ndarray
    attn_batch: np.ndarray
    attn_q_len: np.ndarray
    attn_kv_len: np.ndarray
    attn_heads: np.ndarray
    attn_kv_heads: np.ndarray
    attn_head_dim: np.ndarray
    attn_causal: np.ndarray

    @classmethod
    def from_columns(cls, n: int, **columns: Any) -> OpBatch:
        """Build a batch of `n` records; absent columns default to 0 / "" ("kernel" for kind)."""
        unknown = set(columns) - set(INT_COLUMNS) - set(STR_COLUMNS)
        if unknown:
            raise ValueError(f"OpBatch has no column(s) {sorted(unknown)}")
        batch = cls.__new__(cls)
        batch.n = int(n)
        batch._names = None
        batch._source = None
        for col in INT_COLUMNS:
            setattr(batch, col, _int_column(columns.get(col), n, col))
        for col in STR_COLUMNS:
            default = "kernel" if col == "kind" else ""
            setattr(batch, col, _str_column(columns.get(col), n, col, default))
        return batch

    def take(self, idx: np.ndarray) -> OpBatch:
        """The records at positions `idx` (an index or boolean mask array)."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        sub = OpBatch.__new__(OpBatch)
        sub._source = (self, idx)  # columns are taken when first read (see __getattr__)
        sub.n = len(idx)
        sub._names = None if self._names is None else (self._names[0], self._names[1][idx])
        return sub

    def __getattr__(self, col: str) -> np.ndarray:
        """A column of a `take`n batch, gathered from its source on first use."""
        source = object.__getattribute__(self, "_source") if col in _COLUMN_SET else None
        if source is None:
            raise AttributeError(col)
        values = getattr(source[0], col).take(source[1])
        setattr(self, col, values)
        return values

    def name_index(self) -> tuple[list[str], np.ndarray]:
        """(distinct names, index of each record's name in them); computed once per batch."""
        if self._names is None:
            self._names = value_index(self.name)
        return self._names

    def __len__(self) -> int:
        return self.n


def value_index(values: np.ndarray) -> tuple[list, np.ndarray]:
    """(distinct values, index of each value in them), through one hash per value."""
    hashes = np.fromiter(map(hash, values), np.int64, len(values))
    _, first, codes = np.unique(hashes, return_index=True, return_inverse=True)
    return list(values[first]), codes.reshape(-1)


def _int_column(values: Any, n: int, col: str) -> np.ndarray:
    if values is None:
        return np.zeros(n, dtype=np.int64)
    arr = np.asarray(values)
    if arr.ndim == 0:
        return np.full(n, int(arr), dtype=np.int64)
    if len(arr) != n:
        raise ValueError(f"OpBatch column {col} has {len(arr)} values, expected {n}")
    if arr.dtype.kind == "f":
        arr = np.nan_to_num(arr, nan=0.0)
    return arr.astype(np.int64, copy=False)


def _str_column(values: Any, n: int, col: str, default: str) -> np.ndarray:
    if values is None:
        return np.full(n, default, dtype=object)
    if isinstance(values, str):
        return np.full(n, values, dtype=object)
    arr = np.asarray(values, dtype=object)
    if len(arr) != n:
        raise ValueError(f"OpBatch column {col} has {len(arr)} values, expected {n}")
    arr = arr.copy()
    arr[np.equal(arr, np.array(None, dtype=object))] = default
    return arr


@dataclass
class Prediction:
    """Durations (int64 ns, >= 1), the model that produced each, and the unmodelled flag."""

    duration_ns: np.ndarray
    model: np.ndarray
    unmodelled: np.ndarray

    def __len__(self) -> int:
        return len(self.duration_ns)
