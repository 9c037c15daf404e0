"""`revati devices`: the device catalog, one line per target GPU."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from revati.predict.catalog import DEVICES_DIR, list_devices

GIB = 1 << 30


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "devices",
        help="list the target GPUs durations can be predicted for",
        description=f"List the device catalog ({DEVICES_DIR}/<id>.toml, each figure with its "
        "source in a comment). Pass an id to `revati record --device`.",
    )
    parser.add_argument("--json", action="store_true", help="print the full specs as JSON")
    parser.set_defaults(handler=run_devices)


def run_devices(args: argparse.Namespace) -> int:
    devices = list_devices()
    if args.json:
        print(json.dumps([asdict(d) for d in devices], indent=1))
        return 0
    header = f"{'id':<15}{'name':<24}{'SMs':>5}{'mem GiB':>9}{'HBM GB/s':>10}"
    header += f"{'bf16 TF':>9}{'fp8 TF':>8}{'NVLink GB/s':>13}{'CC':>6}"
    print(header)
    for d in devices:
        cc = f"{d.compute_capability[0]}.{d.compute_capability[1]}"
        fp8 = f"{d.peak_tflops['fp8']:.0f}" if d.peak_tflops["fp8"] else "-"
        print(
            f"{d.id:<15}{d.name:<24}{d.sm_count:>5}{d.memory_bytes / GIB:>9.1f}"
            f"{d.memory_bandwidth_gbs:>10.0f}{d.peak_tflops['bf16']:>9.0f}"
            f"{fp8:>8}{d.nvlink_gbs:>13.0f}{cc:>6}"
        )
    return 0
