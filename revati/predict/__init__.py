"""Kernel-duration prediction: device catalog, models, profiles (docs/prediction.md).

predictor = load_predictor("h100-sxm")
pred = predictor.predict(OpBatch.from_columns(n, name=names, gemm_m=m, ...))
pred.duration_ns, pred.model, pred.unmodelled
"""

from revati.predict.batch import OpBatch, Prediction
from revati.predict.catalog import DeviceSpec, get_device, list_devices
from revati.predict.families import kernel_family
from revati.predict.predictor import Predictor, load_predictor

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
