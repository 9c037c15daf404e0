"""Durations of a trace's device ops for a replay: as recorded, or predicted for a device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from revati.recorder.reader import TraceReader

from revati.predict import load_predictor
from revati.predict.calibration.traces import trace_ops

# The ops `replay/reader.py` reads, in the same order (kernels, copies, memsets by id).
OPS_WHERE = "start_ns IS NOT NULL AND end_ns IS NOT NULL"


@dataclass(frozen=True)
class OpDurations:
    """One duration per op; `model` is None when they are the recorded ones."""

    duration_ns: np.ndarray
    model: np.ndarray | None
    predictor: str | None


def recorded_durations(start: np.ndarray, end: np.ndarray) -> OpDurations:
    return OpDurations(end - start, None, None)


def predicted_durations(reader: TraceReader, device: str, profile: str | None) -> OpDurations:
    """Every op's duration on `device` with `profile`, from the same columns a recording feeds
    the predictor (so a trace replayed on its own device and profile gets its own durations)."""
    predictor = load_predictor(device, profile)
    batch, _ = trace_ops(reader, OPS_WHERE)
    pred = predictor.predict(batch)
    return OpDurations(
        np.maximum(pred.duration_ns.astype(np.int64), 1), pred.model, predictor.identity
    )
