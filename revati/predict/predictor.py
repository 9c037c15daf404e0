"""The predictor: a device, a profile and the registry's models, applied to an `OpBatch`."""

from __future__ import annotations

import numpy as np

from revati.errors import RevatiConfigError
from revati.predict.batch import OpBatch, Prediction, value_index
from revati.predict.catalog import DeviceSpec, get_device
from revati.predict.families import batch_families
from revati.predict.models import MODEL_CLASSES, DurationModel
from revati.predict.models.fallback import FallbackModel
from revati.predict.profile import Profile, default_profile_for, load_profile

PREDICTOR_VERSION = 1
UNMODELLED_LABELS = ("roofline:unmodelled", "constant:unmodelled")


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
        model_code = np.zeros(n, dtype=np.int64)
        labels: list[str] = []
        families = batch_families(batch)
        free = np.ones(n, dtype=bool)
        for m in [*self.models, self.fallback]:
            if not free.any():
                break
            take = free & m.claims(batch, families)
            if not take.any():
                continue
            duration[take], taken_labels = m.predict_claimed(batch, take)
            if isinstance(taken_labels, str):
                model_code[take] = len(labels)
                labels.append(taken_labels)
            else:
                names, codes = value_index(taken_labels)
                model_code[take] = codes + len(labels)
                labels.extend(str(x) for x in names)
            free &= ~take
        model = np.array(labels or [""], dtype=object)[model_code]
        bad = ~np.isfinite(duration)
        if bad.any():  # a model failed on odd inputs: the record is unmodelled, never an error
            duration[bad] = self.fallback.params["constant_ns"]
            model[bad] = "constant:unmodelled"
        ns = np.maximum(np.rint(duration), 1).astype(np.int64)
        unmodelled = np.zeros(n, dtype=bool)
        for label in UNMODELLED_LABELS:
            unmodelled |= model == label
        return Prediction(duration_ns=ns, model=model, unmodelled=unmodelled)


def load_predictor(device: str = "h100-sxm", profile: str | None = None) -> Predictor:
    """A predictor for catalog device `device` with `profile` (a path or shipped name).

    profile None -> the device's shipped default profile if any, else fallback-only models.
    """
    spec = get_device(device)
    prof = load_profile(profile) if profile is not None else default_profile_for(spec.id)
    return Predictor(spec, prof)
