"""The predictor: a device, a profile and the registry's models, applied to an `OpBatch`."""

from __future__ import annotations

import numpy as np

from revati.errors import RevatiConfigError
from revati.predict.batch import OpBatch, Prediction
from revati.predict.catalog import DeviceSpec, get_device
from revati.predict.families import families_of
from revati.predict.models import MODEL_CLASSES, DurationModel
from revati.predict.models.fallback import FallbackModel
from revati.predict.profile import Profile, default_profile_for, load_profile

PREDICTOR_VERSION = 1


class Predictor:
    """Durations for a batch of records on `device`; never raises for an unknown kernel."""

    def __init__(self, device: DeviceSpec, profile: Profile | None) -> None:
        self.device = device
        self.profile = profile
        fitted = profile.models if profile is not None else {}
        for name, params in fitted.items():
            if not isinstance(params, dict):
                raise RevatiConfigError(
                    f"profile {profile.name if profile else ''}: model {name} "
                    "parameters must be an object"
                )
        self.models: list[DurationModel] = [
            cls(device, fitted.get(cls.name)) for cls in MODEL_CLASSES if cls is not FallbackModel
        ]
        self.fallback = FallbackModel(device, fitted.get(FallbackModel.name))
        prof = f"profile={profile.name} sha256={profile.sha256[:8]}" if profile else "profile=none"
        self.identity = f"revati-predict {PREDICTOR_VERSION} device={device.id} {prof}"

    def predict(self, batch: OpBatch) -> Prediction:
        n = batch.n
        duration = np.zeros(n, dtype=np.float64)
        model = np.empty(n, dtype=object)
        families = families_of(batch.name, batch.kind)
        free = np.ones(n, dtype=bool)
        for m in [*self.models, self.fallback]:
            if not free.any():
                break
            take = free & m.claims(batch, families)
            if not take.any():
                continue
            sub = batch.take(take)
            duration[take] = m.predict(sub)
            model[take] = m.labels(sub)
            free &= ~take
        duration = np.where(
            np.isfinite(duration),
            duration,
            FallbackModel.default_params(self.device)["constant_ns"],
        )
        ns = np.maximum(np.rint(duration), 1).astype(np.int64)
        unmodelled = (
            np.array([str(label).endswith(":unmodelled") for label in model], dtype=bool)
            if n
            else np.zeros(0, dtype=bool)
        )
        return Prediction(duration_ns=ns, model=model, unmodelled=unmodelled)


def load_predictor(device: str = "h100-sxm", profile: str | None = None) -> Predictor:
    """A predictor for catalog device `device` with `profile` (a path or shipped name).

    profile None -> the device's shipped default profile if any, else fallback-only models.
    """
    spec = get_device(device)
    prof = load_profile(profile) if profile is not None else default_profile_for(spec.id)
    return Predictor(spec, prof)
