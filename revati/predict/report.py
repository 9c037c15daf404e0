"""Accuracy on held-out data: cross-validated per-family error of the predictor.

Folds: compute records (GEMM, elementwise, attention) are held out one group at a time (a group is
one LLM's operator table, or one trace file): fit on the others, predict the held-out one.
Collectives are held out by message size: distinct sizes are dealt round-robin into
`SIZE_FOLDS` folds per topology, each fold predicted from a profile fitted on the rest. Only
the collectives of the topology predicted for are scored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from revati.predict.calibration.fit import fit_profile
from revati.predict.calibration.measurements import Measurements
from revati.predict.catalog import get_device
from revati.predict.models.collective import DEFAULT_TOPOLOGY
from revati.predict.predictor import Predictor
from revati.predict.profile import Profile

SIZE_FOLDS = 4
ALL_MODELS = ("table", "attention", "gemm", "collective", "bandwidth", "launch")
ANALYTIC_MODELS = ("attention", "gemm", "collective", "bandwidth", "launch")


@dataclass
class FamilyError:
    """Absolute percentage error of one family's held-out predictions."""

    family: str
    count: int
    mape: float
    median_ape: float
    p90_ape: float
    models: dict[str, int]


@dataclass
class HeldOut:
    """Every held-out record's family, measured and predicted ns, model and fold."""

    family: np.ndarray
    measured_ns: np.ndarray
    predicted_ns: np.ndarray
    model: np.ndarray
    fold: np.ndarray

    def errors(self) -> list[FamilyError]:
        ape = np.abs(self.predicted_ns - self.measured_ns) / self.measured_ns * 100
        out = []
        for fam in sorted(set(self.family)):
            sel = self.family == fam
            labels, counts = np.unique(self.model[sel].astype(str), return_counts=True)
            out.append(
                FamilyError(
                    family=str(fam),
                    count=int(sel.sum()),
                    mape=round(float(ape[sel].mean()), 2),
                    median_ape=round(float(np.median(ape[sel])), 2),
                    p90_ape=round(float(np.percentile(ape[sel], 90)), 2),
                    models={str(k): int(v) for k, v in zip(labels, counts, strict=True)},
                )
            )
        return out


def fold_ids(data: Measurements) -> np.ndarray:
    """The cross-validation fold of every record (see the module docstring)."""
    folds = np.array([f"group:{g}" for g in data.group], dtype=object)
    coll = data.families == "collective"
    for topo in np.unique(data.topology[coll]):
        sel = coll & (data.topology == topo)
        sizes = np.unique(data.batch.bytes[sel])
        rank = np.searchsorted(sizes, data.batch.bytes[sel])
        folds[sel] = np.array([f"sizes:{r % SIZE_FOLDS}" for r in rank], dtype=object)
    return folds


def cross_validate(
    data: Measurements,
    *,
    tables: bool = True,
    topology: str = DEFAULT_TOPOLOGY,
    prior: Profile | None = None,
) -> HeldOut:
    """Held-out predictions for every scored record of `data` (see the module docstring);
    with a `prior` profile (fitted on other data) each fold refines it instead of starting
    from nothing."""
    device = get_device(data.device)
    folds = fold_ids(data)
    families = data.families
    scored = (families != "collective") | np.isin(data.topology, ("", topology))
    models = ALL_MODELS if tables else ANALYTIC_MODELS
    parts = []
    for fold in np.unique(folds[scored]):
        test = scored & (folds == fold)
        trained = set(families[folds != fold])  # a family only this fold has is not scored
        test &= np.isin(families, list(trained))
        if not test.any():
            continue
        test_fams = set(families[test])
        train = data.take(folds != fold)
        fit_models = tuple(m for m in models if m == "table" or _serves(m, test_fams))
        profile = fit_profile(train, "cv", [], models=fit_models, topology=topology, prior=prior)
        pred = Predictor(device, profile).predict(data.batch.take(test))
        parts.append((test, pred.duration_ns, pred.model, fold))
    idx = np.concatenate([np.flatnonzero(p[0]) for p in parts]) if parts else np.zeros(0, int)
    return HeldOut(
        family=families[idx],
        measured_ns=data.measured_ns[idx],
        predicted_ns=np.concatenate([p[1] for p in parts]) if parts else np.zeros(0),
        model=np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, dtype=object),
        fold=np.concatenate([np.full(p[0].sum(), p[3], dtype=object) for p in parts])
        if parts
        else np.zeros(0, dtype=object),
    )


def _serves(model: str, families: set[str]) -> bool:
    from revati.predict.models import MODELS

    return bool(set(MODELS[model].families) & families)


def against_profile(data: Measurements, profile: Profile) -> HeldOut:
    """Predictions of a fixed profile on `data` (no refitting: the data must be held out)."""
    pred = Predictor(get_device(profile.device), profile).predict(data.batch)
    return HeldOut(
        family=data.families,
        measured_ns=data.measured_ns,
        predicted_ns=pred.duration_ns.astype(np.float64),
        model=pred.model,
        fold=np.full(len(data), "profile", dtype=object),
    )


def errors_json(errors: list[FamilyError]) -> list[dict]:
    return [asdict(e) for e in errors]
