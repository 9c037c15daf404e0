"""`revati predict-report`: per-family accuracy of a profile's models on held-out data."""

from __future__ import annotations

import argparse
import json

from revati.errors import RevatiUsageError
from revati.predict.calibration.sources import load_sources
from revati.predict.chart import scatter_chart
from revati.predict.models.collective import DEFAULT_TOPOLOGY
from revati.predict.profile import load_profile
from revati.predict.report import HeldOut, against_profile, cross_validate, errors_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict-report",
        help="measure prediction error on held-out data",
        description="Report per-family error (MAPE, median and p90 absolute % error) of "
        "predicted against measured durations. By default the calibration is cross-validated on "
        "SOURCE: operator tables leave one LLM out (fit on the others), collectives leave one "
        "fold of message sizes out; --fixed instead predicts SOURCE with PROFILE as it is (use it "
        "on data the profile was not fitted on).",
        epilog="Examples:\n"
        "  revati predict-report h100-vidur --against vidur-profiles/\n"
        "  revati predict-report my-h100.json --against other-run.duckdb --fixed --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("profile", metavar="PROFILE", help="profile file or shipped profile name")
    parser.add_argument(
        "--against", nargs="+", required=True, metavar="SOURCE", help="measured data"
    )
    parser.add_argument(
        "--device",
        help="catalog id the data was measured on, for traces that do not name a catalog GPU "
        "(default: the profile's device)",
    )
    parser.add_argument("--fixed", action="store_true", help="no refitting: predict with PROFILE")
    parser.add_argument(
        "--prior",
        action="store_true",
        help="each fold refines PROFILE with its training data instead of fitting from nothing "
        "(PROFILE must not have been fitted on SOURCE)",
    )
    parser.add_argument("--no-tables", action="store_true", help="score the analytic models only")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--no-chart", action="store_true", help="omit the text chart")
    parser.set_defaults(handler=run_predict_report)


def run_predict_report(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    data = load_sources(args.against, args.device, vidur_device=profile.device)
    if args.fixed and data.device != profile.device:
        raise RevatiUsageError(
            f"profile {profile.name} predicts {profile.device} but the data was measured on "
            f"{data.device}; score a fixed profile on its own device's data, or drop --fixed"
        )
    topology = profile.models.get("collective", {}).get("topology", DEFAULT_TOPOLOGY)
    if args.fixed:
        held = against_profile(data, profile)
        method = "fixed profile"
    else:
        prior = profile if args.prior else None
        held = cross_validate(data, tables=not args.no_tables, topology=topology, prior=prior)
        method = "cross-validated (leave one group out; collectives: leave size folds out)"
        if prior is not None:
            method += f", refining {profile.name}"
    if len(held.family) == 0:
        raise RevatiUsageError(
            f"nothing to hold out in {', '.join(args.against)}: cross-validation needs two or more "
            "groups (trace files, LLM tables) per family; pass more sources or use --fixed"
        )
    errors = errors_json(held.errors())
    if args.json:
        doc = {
            "profile": profile.name,
            "device": profile.device,
            "method": method,
            "tables": not args.no_tables,
            "families": errors,
        }
        print(json.dumps(doc, indent=1))
        return 0
    print(
        f"profile {profile.name} on {profile.device}; {method}; {len(held.family)} held-out records"
    )
    print(f"{'family':<13}{'count':>7}{'MAPE %':>9}{'median %':>10}{'p90 %':>8}  models")
    for e in errors:
        models = ", ".join(f"{k} {v}" for k, v in e["models"].items())
        print(
            f"{e['family']:<13}{e['count']:>7}{e['mape']:>9.2f}{e['median_ape']:>10.2f}{e['p90_ape']:>8.2f}  {models}"
        )
    if not args.no_chart:
        print()
        print(_chart(held))
    return 0


def _chart(held: HeldOut) -> str:
    step = max(1, len(held.family) // 4000)  # a sample keeps the chart fast on large sets
    return scatter_chart(held.measured_ns[::step], held.predicted_ns[::step], held.family[::step])
