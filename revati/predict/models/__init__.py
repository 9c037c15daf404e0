"""The model registry: every duration model, in the order the predictor offers records to them.

A record goes to the first model that claims it: a measured table for a known signature, then
the analytical model of its family; the fallback claims everything left.
"""

from __future__ import annotations

from revati.predict.models.attention import AttentionModel
from revati.predict.models.bandwidth import BandwidthModel
from revati.predict.models.base import DurationModel
from revati.predict.models.collective import CollectiveModel
from revati.predict.models.fallback import FallbackModel
from revati.predict.models.gemm import GemmModel
from revati.predict.models.launch import LaunchModel
from revati.predict.models.table import TableModel

MODEL_CLASSES: tuple[type[DurationModel], ...] = (
    TableModel,
    AttentionModel,
    GemmModel,
    CollectiveModel,
    BandwidthModel,
    LaunchModel,
    FallbackModel,
)
MODELS: dict[str, type[DurationModel]] = {cls.name: cls for cls in MODEL_CLASSES}

__all__ = ["MODELS", "MODEL_CLASSES", "DurationModel"]
