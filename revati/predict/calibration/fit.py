"""Fit a profile: each registered model fits the measured records of its families."""

from __future__ import annotations

import numpy as np

from revati.predict.calibration.measurements import Measurements
from revati.predict.catalog import get_device
from revati.predict.models import MODEL_CLASSES
from revati.predict.models.collective import DEFAULT_TOPOLOGY
from revati.predict.models.table import TableModel
from revati.predict.profile import Profile


def fit_profile(
    data: Measurements,
    name: str,
    sources: list[str],
    models: tuple[str, ...] | None = None,
    topology: str = DEFAULT_TOPOLOGY,
    prior: Profile | None = None,
) -> Profile:
    """A profile for `data.device` fitted on `data` (optionally only the named models).

    Collectives measured on another `topology` than the one predicted for feed only the
    collective model's per-topology fits, never the measured tables. With a `prior` (a profile
    fitted on other data for the same device) each model refines the prior's parameters
    (`DurationModel.fit_with_prior`); models without records here keep the prior's.
    """
    device = get_device(data.device)
    families = data.families
    fitted: dict[str, dict] = {}
    for cls in MODEL_CLASSES:
        if models is not None and cls.name not in models:
            continue
        sel = np.isin(families, cls.families) if cls.families else np.ones(len(data), dtype=bool)
        if cls is TableModel:
            sel &= np.isin(data.topology, ("", topology))
        base = prior.models.get(cls.name) if prior is not None else None
        if not sel.any():
            if base is not None:
                fitted[cls.name] = base
            continue
        topo = np.where(data.topology == "", topology, data.topology)
        batch, measured = data.batch.take(sel), data.measured_ns[sel]
        params = cls.fit_with_prior(device, batch, measured, topo[sel], base)
        if params is not None:
            fitted[cls.name] = params
    if "collective" in fitted:
        fitted["collective"]["topology"] = topology
    return Profile(name=name, device=device.id, models=fitted, sources=sources)
