"""The device catalog: one TOML file per target GPU under `traces/devices/<id>.toml`.

Each figure in those files carries its source in a comment. `get_device(id)` is the one way the
rest of revati learns what a target GPU is; an unknown id is a `RevatiConfigError` that names
the known ids.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

from revati.errors import RevatiConfigError

DEVICES_DIR = Path(__file__).resolve().parents[2] / "traces" / "devices"
PEAK_DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8")


@dataclass(frozen=True)
class DeviceSpec:
    """What a target GPU is: the figures the predictor and the emulated device properties use."""

    id: str
    name: str
    sm_count: int
    sm_clock_mhz: int
    mem_clock_mhz: int
    memory_bus_width_bits: int
    compute_capability: tuple[int, int]
    memory_bytes: int
    memory_bandwidth_gbs: float
    l2_bytes: int
    peak_tflops: dict[str, float]
    nvlink_gbs: float
    nvlink_links: int  # NVLink links per device (0: none); NVML reports their state
    power_watts: int  # board power limit, as NVML reports it
    pcie_gbs: float
    network_gbs: float  # one GPU's share of the network between nodes, one direction
    launch_latency_ns: int
    shared_mem_per_block: int
    shared_mem_per_block_optin: int
    shared_mem_per_sm: int
    regs_per_block: int
    regs_per_sm: int
    max_threads_per_block: int
    max_threads_per_sm: int
    warp_size: int
    max_blocks_per_sm: int

    def peak_flops(self, dtype: str) -> float:
        """Dense peak FLOP/s for `dtype` ("" or unknown -> fp16; fp8 absent -> fp16)."""
        key = dtype if dtype in PEAK_DTYPES else "fp16"
        tflops = self.peak_tflops.get(key, 0.0) or self.peak_tflops["fp16"]
        return tflops * 1e12


def _spec_from_toml(path: Path) -> DeviceSpec:
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise RevatiConfigError(f"device file {path} is not readable TOML ({e}); fix it") from e
    names = [f.name for f in fields(DeviceSpec)]
    missing = [n for n in names if n not in raw]
    if missing:
        raise RevatiConfigError(f"device file {path} lacks {', '.join(missing)}; add them")
    peaks = raw["peak_tflops"]
    if not isinstance(peaks, dict) or any(k not in peaks for k in PEAK_DTYPES):
        raise RevatiConfigError(f"device file {path}: peak_tflops needs keys {PEAK_DTYPES}")
    values = {n: raw[n] for n in names}
    values["compute_capability"] = tuple(int(v) for v in raw["compute_capability"])
    values["peak_tflops"] = {k: float(v) for k, v in peaks.items()}
    for n in ("memory_bandwidth_gbs", "nvlink_gbs", "pcie_gbs", "network_gbs"):
        values[n] = float(values[n])
    return DeviceSpec(**values)


@cache
def _catalog(devices_dir: Path = DEVICES_DIR) -> dict[str, DeviceSpec]:
    specs = [_spec_from_toml(p) for p in sorted(devices_dir.glob("*.toml"))]
    return {s.id: s for s in specs}


def list_devices() -> list[DeviceSpec]:
    """Every device in the catalog, sorted by id."""
    return [spec for _, spec in sorted(_catalog().items())]


def get_device(device_id: str) -> DeviceSpec:
    """The catalog entry for `device_id`; an unknown id is a `RevatiConfigError`."""
    catalog = _catalog()
    if device_id not in catalog:
        known = ", ".join(sorted(catalog))
        raise RevatiConfigError(f"unknown device {device_id!r}; known devices: {known}")
    return catalog[device_id]
