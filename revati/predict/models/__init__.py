"""The model registry: every duration model, in the order the predictor offers records to them.

A record goes to the first model that claims it; the fallback claims everything left.
"""

from __future__ import annotations

from revati.predict.models.base import DurationModel
from revati.predict.models.fallback import FallbackModel

MODEL_CLASSES: tuple[type[DurationModel], ...] = (FallbackModel,)
MODELS: dict[str, type[DurationModel]] = {cls.name: cls for cls in MODEL_CLASSES}

__all__ = ["MODELS", "MODEL_CLASSES", "DurationModel"]
