"""Calibration sources: a vidur-profiles folder, revati traces, or profiler traces to import."""

from __future__ import annotations

from pathlib import Path

from revati.errors import RevatiConfigError
from revati.predict.calibration.measurements import Measurements
from revati.predict.calibration.traces import load_trace
from revati.predict.calibration.vidur import GPU_DEVICES, is_vidur_root, load_vidur

VIDUR_GPU = {device: gpu for gpu, device in GPU_DEVICES.items()}


def load_sources(sources: list[str], device: str) -> Measurements:
    """Every measured record of `sources` taken on `device` (a catalog id)."""
    parts = []
    for source in sources:
        path = Path(source)
        if not path.exists():
            raise RevatiConfigError(f"calibration source {source} does not exist; check the path")
        if is_vidur_root(path):
            if device not in VIDUR_GPU:
                raise RevatiConfigError(
                    f"vidur tables {source} hold {sorted(VIDUR_GPU)} timings, not {device}; "
                    "pass --device h100-sxm or a100-sxm-80gb"
                )
            parts.append(load_vidur(path, VIDUR_GPU[device]))
        elif path.is_dir():
            raise RevatiConfigError(
                f"{source} is a folder but not a vidur-profiles folder (no compute/ or network/)"
            )
        else:
            data = load_trace(path, None)
            if data.device != device:
                raise RevatiConfigError(
                    f"trace {source} was measured on {data.device}, not {device}; calibrate per device"
                )
            parts.append(data)
    data = Measurements.concat(parts)
    if len(data) == 0:
        raise RevatiConfigError(
            f"no measured records in {', '.join(sources)}; nothing to calibrate"
        )
    data.device = device
    return data
