"""Measured tables: per kernel signature, piecewise-linear interpolation in log-log space.

A signature is the kernel name plus what fixes its shape apart from one size axis:
GEMMs key on (name, n, k, batch, dtype) and interpolate over m; collectives key on
(name, collective, world size) over bytes; other kernels with bytes key on the name over bytes;
the rest key on (name, threads per block) over the grid's block count. A record is claimed only
when its signature was measured and its size lies within a factor `REACH` of the measured range
(beyond the largest point, time scales linearly with size).

Profiles store each table under a readable key "name|gemm|n|k|batch|dtype", "name|coll|
collective|world", "name|bytes" or "name|grid|threads"; at prediction time signatures are
compared as integer tuples, so 100k records cost a few vectorised passes.
"""

from __future__ import annotations

import numpy as np

from revati.predict.batch import OpBatch, value_index
from revati.predict.catalog import DeviceSpec
from revati.predict.models.base import DurationModel, Params
from revati.predict.models.collective import DEFAULT_TOPOLOGY

REACH = 2.0
MAX_POINTS = 48
TAGS = {"gemm": 1, "coll": 2, "bytes": 3, "grid": 4}
Signature = tuple[str, int, int, int, int, str]  # name, tag, a, b, c, text


def record_signatures(batch: OpBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(tag, int fields [n, 3], text field, size) of each record."""
    gemm = batch.gemm_m > 0
    coll = (batch.kind == "collective") & ~gemm
    by_bytes = (batch.bytes > 0) & ~gemm & ~coll
    threads = batch.block_x * np.maximum(batch.block_y, 1) * np.maximum(batch.block_z, 1)
    blocks = np.maximum(batch.grid_x, 1) * np.maximum(batch.grid_y, 1) * np.maximum(batch.grid_z, 1)
    tag = np.where(gemm, 1, np.where(coll, 2, np.where(by_bytes, 3, 4)))
    zero = np.zeros(batch.n, dtype=np.int64)
    a = np.where(
        gemm, batch.gemm_n, np.where(coll, batch.world_size, np.where(by_bytes, 0, threads))
    )
    fields = np.column_stack(
        [a, np.where(gemm, batch.gemm_k, zero), np.where(gemm, batch.batch, zero)]
    )
    text = np.where(gemm, batch.dtype, np.where(coll, batch.collective, ""))
    size = np.where(gemm, batch.gemm_m, np.where(coll | by_bytes, batch.bytes, blocks))
    return tag, fields, text, np.maximum(size, 1).astype(np.float64)


def key_text(sig: Signature) -> str:
    name, tag, a, b, c, text = sig
    if tag == TAGS["gemm"]:
        return f"{name}|gemm|{a}|{b}|{c}|{text}"
    if tag == TAGS["coll"]:
        return f"{name}|coll|{text}|{a}"
    return f"{name}|bytes" if tag == TAGS["bytes"] else f"{name}|grid|{a}"


def parse_key(key: str) -> Signature:
    name, kind, *rest = key.rsplit("|", {"gemm": 5, "coll": 3, "bytes": 1, "grid": 2}[_kind(key)])
    if kind == "gemm":
        return (name, 1, int(rest[0]), int(rest[1]), int(rest[2]), rest[3])
    if kind == "coll":
        return (name, 2, int(rest[1]), 0, 0, rest[0])
    return (name, 3, 0, 0, 0, "") if kind == "bytes" else (name, 4, int(rest[0]), 0, 0, "")


def _kind(key: str) -> str:
    for kind, parts in (("bytes", 1), ("grid", 2), ("coll", 3), ("gemm", 5)):
        pieces = key.rsplit("|", parts)
        if len(pieces) == parts + 1 and pieces[1] == kind:
            return kind
    raise ValueError(f"malformed table key {key!r}")


def group_signatures(batch: OpBatch) -> tuple[list[Signature], np.ndarray, np.ndarray]:
    """(distinct signatures, index of each record's signature, size of each record)."""
    tag, fields, text, size = record_signatures(batch)
    names, name_codes = batch.name_index()
    texts, text_codes = value_index(text)
    stacked = np.column_stack([name_codes, tag, fields, text_codes])
    mixed = np.zeros(batch.n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for col in stacked.T:
            mixed = (mixed ^ col.astype(np.uint64)) * np.uint64(0x100000001B3)
    _, first, inverse = np.unique(mixed, return_index=True, return_inverse=True)
    rows = stacked[first]
    sigs = [
        (str(names[r[0]]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), str(texts[r[5]]))
        for r in rows
    ]
    return sigs, inverse.reshape(-1), size


class TableModel(DurationModel):
    name = "table"

    def __init__(self, device: DeviceSpec, params: Params | None) -> None:
        super().__init__(device, params)
        self.tables = {
            parse_key(k): (np.asarray(v[0]), np.asarray(v[1]))
            for k, v in self.params["tables"].items()
        }
        self.names = {sig[0] for sig in self.tables}
        # claims() computes the durations too; predict_claimed() hands them out once
        self._claimed: tuple[OpBatch, np.ndarray, np.ndarray, np.ndarray] | None = None

    @classmethod
    def default_params(cls, device: DeviceSpec) -> Params:
        return {"tables": {}}

    def claims(self, batch: OpBatch, families: np.ndarray) -> np.ndarray:
        out = np.zeros(batch.n, dtype=bool)
        if not self.tables:
            return out
        uniq, codes = batch.name_index()
        known_codes = [i for i, name in enumerate(uniq) if name in self.names]
        if not known_codes:
            return out
        # tables hold the profile's own topology: a collective across nodes is not theirs
        known = np.isin(codes, known_codes) & np.isin(batch.topology, ("", DEFAULT_TOPOLOGY))
        idx = np.flatnonzero(known)
        if not len(idx):
            return out
        sigs, inverse, size = group_signatures(batch.take(idx))
        values = np.zeros(len(idx))
        for i, sig in enumerate(sigs):
            table = self.tables.get(sig)
            if table is not None:
                sel = np.flatnonzero(inverse == i)
                log_size = np.log(size[sel])
                # GEMM time is a staircase over m: a table never extrapolates one
                reach = (0.0 if sig[1] == TAGS["gemm"] else np.log(REACH)) + 1e-4
                sel = sel[(log_size >= table[0][0] - reach) & (log_size <= table[0][-1] + reach)]
                out[idx[sel]] = True
                values[sel] = interpolate(table[0], table[1], np.log(size[sel]))
        self._claimed = (batch, out.copy(), idx, values)
        return out

    def predict_claimed(
        self, batch: OpBatch, mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | str]:
        claimed = self._claimed
        if claimed is None or claimed[0] is not batch:
            return super().predict_claimed(batch, mask)
        self._claimed = None
        full = np.zeros(batch.n)
        full[claimed[2]] = claimed[3]
        return full[mask], self.label

    def predict(self, batch: OpBatch) -> np.ndarray:
        sigs, inverse, size = group_signatures(batch)
        out = np.zeros(batch.n)
        for i, sig in enumerate(sigs):
            xs, ys = self.tables[sig]
            sel = inverse == i
            out[sel] = interpolate(xs, ys, np.log(size[sel]))
        return out

    @classmethod
    def fit(
        cls,
        device: DeviceSpec,
        batch: OpBatch,
        measured_ns: np.ndarray,
        groups: np.ndarray | None = None,
    ) -> Params | None:
        # Size-over-bytes tables of bandwidth-bound kernels add nothing to the bandwidth model's
        # per-name fit (and cross-validate worse), so tables keep exact shapes only.
        keep = (measured_ns > 0) & ~(
            (batch.bytes > 0) & (batch.gemm_m == 0) & (batch.kind != "collective")
        )
        if not keep.any():
            return None
        sigs, inverse, size = group_signatures(batch.take(keep))
        y = measured_ns[keep]
        tables = {}
        for i, sig in enumerate(sigs):
            sel = inverse == i
            xs, inv = np.unique(size[sel], return_inverse=True)
            med = np.array([np.median(y[sel][inv == j]) for j in range(len(xs))])
            pick = np.unique(np.linspace(0, len(xs) - 1, min(len(xs), MAX_POINTS)).astype(int))
            tables[key_text(sig)] = [
                [round(float(v), 5) for v in np.log(xs[pick])],
                [round(float(v), 5) for v in np.log(med[pick])],
            ]
        return {"tables": tables, "samples": int(keep.sum())}


def interpolate(log_x: np.ndarray, log_t: np.ndarray, q: np.ndarray) -> np.ndarray:
    """ns at log sizes `q`: log-log interpolation inside, t ∝ size beyond the largest point."""
    inside = np.exp(np.interp(q, log_x, log_t))
    above = np.exp(log_t[-1] + (q - log_x[-1]))
    return np.where(q > log_x[-1], above, inside)
