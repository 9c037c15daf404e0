"""Predicted durations of device operations, in batches (through `revati.predict`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from revati.errors import RevatiConfigError
from revati.predict import OpBatch, Predictor, get_device, load_predictor


@dataclass
class OpRequests:
    """Device operations of one drained batch, waiting for their durations."""

    kind: list[str] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    grid: list[tuple[int, int, int]] = field(default_factory=list)
    block: list[tuple[int, int, int]] = field(default_factory=list)
    shared_mem: list[int] = field(default_factory=list)
    nbytes: list[int] = field(default_factory=list)
    copy_kind: list[str] = field(default_factory=list)
    arrays: tuple[np.ndarray, ...] | None = None  # the same columns as arrays (fast path)
    shapes: dict[str, np.ndarray] | None = None  # launch shapes (launch_shapes.PREDICTOR_COLUMNS)

    def add(
        self,
        kind: str,
        name: str = "",
        grid=(0, 0, 0),
        block=(0, 0, 0),
        shared_mem: int = 0,
        nbytes: int = 0,
        copy_kind: str = "",
    ) -> int:
        self.kind.append(kind)
        self.name.append(name)
        self.grid.append(grid)
        self.block.append(block)
        self.shared_mem.append(shared_mem)
        self.nbytes.append(nbytes)
        self.copy_kind.append(copy_kind)
        return len(self.kind) - 1

    def __len__(self) -> int:
        return len(self.kind)

    @classmethod
    def from_arrays(
        cls,
        *,
        kind: np.ndarray,
        name: np.ndarray,
        grid: np.ndarray,
        block: np.ndarray,
        shared_mem: np.ndarray,
        nbytes: np.ndarray,
        copy_kind: np.ndarray,
    ) -> OpRequests:
        """A batch built from columns (grid and block: n x 3 arrays)."""
        ops = cls(
            kind.tolist(),
            name.tolist(),
            grid.tolist(),
            block.tolist(),
            shared_mem.tolist(),
            nbytes.tolist(),
            copy_kind.tolist(),
        )
        ops.arrays = (kind, name, grid, block, shared_mem, nbytes, copy_kind)
        return ops


class DurationModel:
    """Maps batches of operations to (duration_ns, model) with one predictor call per batch."""

    def __init__(self, device: str, profile: str | None) -> None:
        self.warning: str | None = None
        try:
            self.predictor: Predictor = load_predictor(device, profile)
        except RevatiConfigError as e:
            if profile is not None:
                raise
            # The shipped default profile is unusable: say so, predict with fallback models only.
            self.predictor = Predictor(get_device(device), None)
            self.warning = f"{e}; using fallback models only"

    @property
    def identity(self) -> str:
        return self.predictor.identity

    def predict(self, ops: OpRequests) -> tuple[np.ndarray, np.ndarray]:
        n = len(ops)
        if n == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object)
        batch = self._batch(ops)
        try:
            pred = self.predictor.predict(batch)
            return np.maximum(pred.duration_ns.astype(np.int64), 1), pred.model
        except (ValueError, IndexError, KeyError):  # a predictor bug must not stop the run
            return self._fallback(ops)

    @staticmethod
    def _batch(ops: OpRequests) -> OpBatch:
        n = len(ops)
        shapes = dict(ops.shapes or {})
        shape_bytes = shapes.pop("bytes", None)
        if ops.arrays is not None:
            kind, name, grid, block, smem, nbytes, copy_kind = ops.arrays
            nbytes = _merged_bytes(nbytes, shape_bytes)
            return OpBatch.from_columns(
                n,
                kind=kind,
                name=name,
                grid_x=grid[:, 0],
                grid_y=grid[:, 1],
                grid_z=grid[:, 2],
                block_x=block[:, 0],
                block_y=block[:, 1],
                block_z=block[:, 2],
                shared_mem=smem,
                bytes=nbytes,
                copy_kind=copy_kind,
                **shapes,
            )
        grid = np.asarray(ops.grid, dtype=np.int64).reshape(n, 3)
        block = np.asarray(ops.block, dtype=np.int64).reshape(n, 3)
        return OpBatch.from_columns(
            n,
            kind=np.asarray(ops.kind, dtype=object),
            name=np.asarray(ops.name, dtype=object),
            grid_x=grid[:, 0],
            grid_y=grid[:, 1],
            grid_z=grid[:, 2],
            block_x=block[:, 0],
            block_y=block[:, 1],
            block_z=block[:, 2],
            shared_mem=np.asarray(ops.shared_mem, dtype=np.int64),
            bytes=_merged_bytes(np.asarray(ops.nbytes, dtype=np.int64), shape_bytes),
            copy_kind=np.asarray(ops.copy_kind, dtype=object),
            **shapes,
        )

    def _fallback(self, ops: OpRequests) -> tuple[np.ndarray, np.ndarray]:
        """Kernels one by one through the predictor; copies and memsets by bandwidth."""
        spec = self.predictor.device
        out = np.ones(len(ops), dtype=np.int64)
        models = np.empty(len(ops), dtype=object)
        for i, kind in enumerate(ops.kind):
            if kind in ("copy", "memset"):
                link = (
                    spec.pcie_gbs
                    if ops.copy_kind[i] in ("HtoD", "DtoH", "HtoH")
                    else spec.memory_bandwidth_gbs
                )
                out[i] = 2000 + int(ops.nbytes[i] / (link * 0.8))
                models[i] = "revati-fallback:bandwidth"
            else:
                single = OpRequests()
                single.add(
                    kind, ops.name[i], ops.grid[i], ops.block[i], ops.shared_mem[i], ops.nbytes[i]
                )
                try:
                    pred = self.predictor.predict(self._batch(single))
                    out[i], models[i] = max(int(pred.duration_ns[0]), 1), pred.model[0]
                except (ValueError, IndexError, KeyError):
                    out[i], models[i] = 5000, "revati-fallback:constant"
        return out, models


def _merged_bytes(nbytes: np.ndarray, shape_bytes: np.ndarray | None) -> np.ndarray:
    """A record's bytes: from its launch shape where it has one, else its own."""
    if shape_bytes is None:
        return nbytes
    return np.where(shape_bytes > 0, shape_bytes, nbytes)
