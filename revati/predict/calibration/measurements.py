"""Measured records for calibration and accuracy reports: an `OpBatch` with measured durations."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from revati.predict.batch import INT_COLUMNS, STR_COLUMNS, OpBatch
from revati.predict.families import batch_families


@dataclass
class Measurements:
    """n measured records: features, measured ns, and the group each came from.

    `group` names where a record came from for cross-validation (e.g. the LLM whose operator table
    it is, or the trace file); `device` is the catalog id the measurements were taken on;
    `topology` says how a collective's GPUs were connected (e.g. "dgx/1node"; "" unknown).
    """

    batch: OpBatch
    measured_ns: np.ndarray
    group: np.ndarray
    device: str
    topology: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))

    def __post_init__(self) -> None:
        if len(self.topology) != self.batch.n:
            self.topology = np.full(self.batch.n, "", dtype=object)

    def __len__(self) -> int:
        return self.batch.n

    @property
    def families(self) -> np.ndarray:
        return batch_families(self.batch)

    def take(self, idx: np.ndarray) -> Measurements:
        return Measurements(
            self.batch.take(idx),
            self.measured_ns[idx],
            self.group[idx],
            self.device,
            self.topology[idx],
        )

    @staticmethod
    def concat(parts: list[Measurements]) -> Measurements:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Measurements(OpBatch.from_columns(0), np.zeros(0), np.zeros(0, dtype=object), "")
        cols = {
            c: np.concatenate([getattr(p.batch, c) for p in parts])
            for c in (*INT_COLUMNS, *STR_COLUMNS)
        }
        n = sum(len(p) for p in parts)
        return Measurements(
            OpBatch.from_columns(n, **cols),
            np.concatenate([p.measured_ns for p in parts]).astype(np.float64),
            np.concatenate([p.group for p in parts]),
            parts[0].device,
            np.concatenate([p.topology for p in parts]),
        )
