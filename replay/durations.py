"""Durations of a trace's device ops for a replay: as recorded, or predicted for a device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from revati.recorder.reader import TraceReader

from revati.errors import RevatiUsageError
from revati.predict import kernel_family, load_predictor
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


def scale_families(
    durations: OpDurations, names: np.ndarray, factors: dict[str, float]
) -> OpDurations:
    """What-if: the ops of each kernel family in `factors` take that many times as long."""
    if not factors:
        return durations
    uniq, codes = np.unique(names.astype(str), return_inverse=True)
    fams = np.array([kernel_family(n) for n in uniq], dtype=object)[codes]
    factor = np.ones(len(names))
    for family, f in factors.items():
        take = fams == family
        if not take.any():
            have = ", ".join(sorted(set(fams.tolist()))) or "none"
            raise RevatiUsageError(
                f"--scale {family}={f:g}: no kernel of family {family!r} in this trace "
                f"(families here: {have})"
            )
        factor[take] = f
    scaled = np.rint(durations.duration_ns * factor).astype(np.int64)
    return OpDurations(scaled, durations.model, durations.predictor)


def parse_scales(specs: list[str]) -> dict[str, float]:
    """'gemm=1.5' -> {'gemm': 1.5}; raises RevatiUsageError on anything else."""
    out: dict[str, float] = {}
    for spec in specs:
        family, _, value = spec.partition("=")
        try:
            factor = float(value)
        except ValueError:
            factor = -1.0
        if not family or factor < 0:
            raise RevatiUsageError(
                f"--scale {spec!r}: expected FAMILY=FACTOR with FACTOR >= 0, e.g. gemm=1.5"
            )
        out[family] = factor
    return out
