"""`revati calibrate`: fit a profile of model parameters from measured data."""

from __future__ import annotations

import argparse
from collections import Counter

from revati.predict.calibration.fit import fit_profile
from revati.predict.calibration.sources import DEFAULT_VIDUR_DEVICE, load_sources
from revati.predict.models.collective import DEFAULT_TOPOLOGY
from revati.recorder.output import atomic_output, check_output


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="fit a prediction profile from measured timings",
        description="Fit the duration models (tables, GEMM, attention, collectives, bandwidth) "
        "on measured data and write a profile JSON. SOURCE is a vidur-profiles folder, a revati "
        "trace recorded on a real GPU, or a PyTorch-profiler (.json/.json.gz) or Nsight Systems "
        "(.sqlite) trace, which is imported first.",
        epilog="Examples:\n"
        "  revati calibrate vidur-profiles/ -o traces/profiles/h100-vidur.json\n"
        "  revati calibrate real.duckdb run2.json.gz --device h100-sxm -o my-h100.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("sources", nargs="+", metavar="SOURCE", help="measured data to fit on")
    parser.add_argument(
        "-o", "--output", required=True, metavar="PROFILE", help="profile file to write"
    )
    parser.add_argument(
        "--device",
        help="catalog id the data was measured on (default: the GPU the traces name; "
        f"{DEFAULT_VIDUR_DEVICE} for vidur tables)",
    )
    parser.add_argument("--name", help="profile name (default: the output file's stem)")
    parser.add_argument(
        "--topology",
        default=DEFAULT_TOPOLOGY,
        help=f"collective topology to predict for (default {DEFAULT_TOPOLOGY}: one NVSwitch node)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing profile")
    parser.set_defaults(handler=run_calibrate)


def run_calibrate(args: argparse.Namespace) -> int:
    out = check_output(args.output, force=args.force, inputs=args.sources)
    data = load_sources(args.sources, args.device)
    profile = fit_profile(
        data, args.name or out.stem, [str(s) for s in args.sources], topology=args.topology
    )
    with atomic_output(out) as tmp:
        profile.save(tmp)
    families = Counter(str(f) for f in data.families)
    print(
        f"calibrated {len(data)} measured records on {data.device}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(families.items()))
    )
    print(f"fitted models: {', '.join(sorted(profile.models))}")
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB, sha256 {profile.sha256[:8]})")
    return 0
