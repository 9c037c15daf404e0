"""Kernel-duration prediction: device catalog, models, profiles (docs/prediction.md).

predictor = load_predictor("h100-sxm")
pred = predictor.predict(OpBatch.from_columns(n, name=names, gemm_m=m, ...))
pred.duration_ns, pred.model, pred.unmodelled

The names below are imported on first use, so that `revati.predict.catalog` (what `revati
record` needs before it starts a program) comes without numpy and the models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from revati.predict.batch import OpBatch, Prediction
    from revati.predict.catalog import DeviceSpec, get_device, list_devices
    from revati.predict.families import kernel_family
    from revati.predict.predictor import Predictor, load_predictor

_MODULE_OF = {
    "OpBatch": "revati.predict.batch",
    "Prediction": "revati.predict.batch",
    "DeviceSpec": "revati.predict.catalog",
    "get_device": "revati.predict.catalog",
    "list_devices": "revati.predict.catalog",
    "kernel_family": "revati.predict.families",
    "Predictor": "revati.predict.predictor",
    "load_predictor": "revati.predict.predictor",
}

__all__ = [
    "DeviceSpec",
    "OpBatch",
    "Prediction",
    "Predictor",
    "get_device",
    "kernel_family",
    "list_devices",
    "load_predictor",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'revati.predict' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
