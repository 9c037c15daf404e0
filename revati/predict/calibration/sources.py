"""Calibration sources: a vidur-profiles folder, revati traces, measurement files written by
`revati profile`, or profiler traces to import."""

from __future__ import annotations

from pathlib import Path

from revati.errors import RevatiConfigError
from revati.predict.calibration.measured import is_measurements_file, read_measurements
from revati.predict.calibration.measurements import Measurements
from revati.predict.calibration.traces import load_trace
from revati.predict.calibration.vidur import GPU_DEVICES, is_vidur_root, load_vidur

VIDUR_GPU = {device: gpu for gpu, device in GPU_DEVICES.items()}
DEFAULT_VIDUR_DEVICE = "h100-sxm"


def load_sources(
    sources: list[str], device: str | None, vidur_device: str = DEFAULT_VIDUR_DEVICE
) -> Measurements:
    """Every measured record of `sources`, all taken on one device.

    `device` (a catalog id) is what the user says the data was measured on; None takes it from
    the traces themselves, and vidur tables are then read for `vidur_device`."""
    parts = []
    for source in sources:
        path = Path(source)
        if not path.exists():
            raise RevatiConfigError(f"calibration source {source} does not exist; check the path")
        if is_vidur_root(path):
            parts.append(_vidur(path, device or vidur_device))
        elif path.is_dir():
            raise RevatiConfigError(
                f"{source} is a folder but not a vidur-profiles folder (no compute/ or network/)"
            )
        elif is_measurements_file(path):
            parts.append(_measured(path, device))
        else:
            parts.append(load_trace(path, device))
    devices = sorted({p.device for p in parts})
    if len(devices) > 1:
        raise RevatiConfigError(
            f"the sources were measured on different devices ({', '.join(devices)}); "
            "calibrate per device"
        )
    data = Measurements.concat(parts)
    if len(data) == 0:
        raise RevatiConfigError(
            f"no measured records in {', '.join(sources)}; nothing to calibrate"
        )
    data.device = devices[0]
    return data


def _measured(path: Path, device: str | None) -> Measurements:
    data = read_measurements(path)
    if device and data.device and device != data.device:
        raise RevatiConfigError(
            f"{path} was measured on {data.device}, not {device}; calibrate per device"
        )
    data.device = data.device or device or ""
    if not data.device:
        raise RevatiConfigError(f"{path} names no catalog device; pass --device")
    return data


def _vidur(path: Path, device: str) -> Measurements:
    if device not in VIDUR_GPU:
        raise RevatiConfigError(
            f"vidur tables {path} hold {sorted(VIDUR_GPU)} timings, not {device}; "
            "pass --device h100-sxm or a100-sxm-80gb"
        )
    return load_vidur(path, VIDUR_GPU[device])
