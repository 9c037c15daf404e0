"""What every duration model is: it claims records, predicts their durations, fits parameters."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from revati.predict.batch import OpBatch
from revati.predict.catalog import DeviceSpec
from revati.predict.families import in_families

Params = dict[str, Any]
MIN_NS = 1.0


class DurationModel(ABC):
    """One family's model: built from a device and (optionally) fitted profile parameters.

    `claims` picks the records it can predict (the predictor asks models in registry order and
    gives each record to the first that claims it); `predict` returns float ns for those records.
    `fit` (a classmethod) returns parameters from measured records; `label` is what the trace
    records as the record's model ("gemm", or "gemm:uncalibrated" when running on defaults).
    """

    name: ClassVar[str]
    families: ClassVar[tuple[str, ...]] = ()

    def __init__(self, device: DeviceSpec, params: Params | None) -> None:
        self.device = device
        self.calibrated = params is not None
        self.params: Params = params if params is not None else self.default_params(device)

    @property
    def label(self) -> str:
        return self.name if self.calibrated else f"{self.name}:uncalibrated"

    @classmethod
    def default_params(cls, device: DeviceSpec) -> Params:
        """Parameters used when the profile has none for this model."""
        return {}

    def claims(self, batch: OpBatch, families: np.ndarray) -> np.ndarray:
        """Boolean mask of the records this model predicts (default: its families)."""
        return in_families(families, self.families)

    @abstractmethod
    def predict(self, batch: OpBatch) -> np.ndarray:
        """Durations in ns (float) for every record of `batch` (all claimed by this model)."""

    def predict_claimed(
        self, batch: OpBatch, mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | str]:
        """(durations, labels) of the records of `batch` selected by `mask` (claimed here)."""
        sub = batch.take(mask)
        return self.predict(sub), self.labels(sub)

    def labels(self, batch: OpBatch) -> np.ndarray | str:
        """The model recorded for each record: one label for all, or one per record."""
        return self.label

    @classmethod
    def fit(
        cls,
        device: DeviceSpec,
        batch: OpBatch,
        measured_ns: np.ndarray,
        groups: np.ndarray | None = None,
    ) -> Params | None:
        """Parameters fitted on measured records of this model's families (None: cannot fit)."""
        return None

    @classmethod
    def fit_with_prior(
        cls,
        device: DeviceSpec,
        batch: OpBatch,
        measured_ns: np.ndarray,
        groups: np.ndarray | None,
        prior: Params | None,
    ) -> Params | None:
        """Parameters refining `prior` (another profile's, fitted on other data) with these
        records; by default the records' own fit, else the prior."""
        fitted = cls.fit(device, batch, measured_ns, groups)
        return fitted if fitted is not None else prior


def safe_log(x: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.asarray(x, dtype=np.float64), 1.0))


def peak_flops_of(device: DeviceSpec, dtypes: np.ndarray) -> np.ndarray:
    """Dense peak FLOP/s per record for its dtype ("" -> fp16)."""
    uniq, inverse = np.unique(dtypes.astype(str), return_inverse=True)
    return np.array([device.peak_flops(d) for d in uniq], dtype=np.float64)[inverse]
