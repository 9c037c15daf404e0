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
MAX_DURATION_NS = 10**15  # ~11.6 days: absurd shapes must not overflow int64 virtual time
UNMODELLED_LABELS = ("roofline:unmodelled", "grid:unmodelled", "constant:unmodelled")


class Predictor:
    """Durations for a batch of records on `device`; never raises for an unknown kernel."""

    def __init__(self, device: DeviceSpec, profile: Profile | None) -> None:
        self.device = device
        self.profile = profile
        fitted = profile.models if profile is not None else {}
        self.models: list[DurationModel] = _build_models(device, fitted, profile)
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
        ns = np.clip(np.rint(duration), 1, MAX_DURATION_NS).astype(np.int64)
        unmodelled = np.zeros(n, dtype=bool)
        for label in UNMODELLED_LABELS:
            unmodelled |= model == label
        return Prediction(duration_ns=ns, model=model, unmodelled=unmodelled)


# One record per family: building the models and predicting these shows a malformed profile
# at load time, as a configuration error, rather than in the middle of a run.
PROBE = OpBatch.from_columns(
    6,
    kind=["kernel", "kernel", "kernel", "collective", "copy", "memset"],
    name=["probe_gemm", "probe_flash_attention", "probe_elementwise", "nccl_probe", "", ""],
    gemm_m=[64, 0, 0, 0, 0, 0], gemm_n=[64, 0, 0, 0, 0, 0], gemm_k=[64, 0, 0, 0, 0, 0],
    bytes=[0, 0, 4096, 4096, 4096, 4096], world_size=[0, 0, 0, 8, 0, 0],
    collective=["", "", "", "allreduce", "", ""], copy_kind=["", "", "", "", "HtoD", ""],
    attn_batch=[0, 1, 0, 0, 0, 0], attn_q_len=[0, 16, 0, 0, 0, 0], attn_kv_len=[0, 16, 0, 0, 0, 0],
    attn_heads=[0, 8, 0, 0, 0, 0], attn_head_dim=[0, 64, 0, 0, 0, 0],
)  # fmt: skip


def _build_models(device: DeviceSpec, fitted: dict, profile: Profile | None) -> list[DurationModel]:
    models = []
    for cls in MODEL_CLASSES:
        if cls is FallbackModel:
            continue
        params = fitted.get(cls.name)
        try:
            if params is not None and not isinstance(params, dict):
                raise TypeError("parameters must be an object")
            model = cls(device, params)
            families = batch_families(PROBE)
            probe = PROBE.take(model.claims(PROBE, families))
            model.predict(probe)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
            where = f"profile {profile.name}" if profile else "default parameters"
            raise RevatiConfigError(
                f"{where}: model {cls.name} has malformed parameters ({e!r}); recalibrate it "
                "with `revati calibrate`"
            ) from e
        models.append(model)
    return models


def load_predictor(device: str = "h100-sxm", profile: str | None = None) -> Predictor:
    """A predictor for catalog device `device` with `profile` (a path or shipped name).

    profile None -> the device's shipped default profile if any, else fallback-only models.
    """
    spec = get_device(device)
    prof = load_profile(profile) if profile is not None else default_profile_for(spec.id)
    return Predictor(spec, prof)
