"""`revati replay`: re-simulate a trace on another device or profile, without running it."""

from __future__ import annotations

import argparse

from revati.replay.durations import parse_scales
from revati.replay.session import replay_trace


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="re-simulate a trace with other durations (another device or profile)",
        description="Re-simulate TRACE without running the program: each thread's host time "
        "between CUDA calls is kept; streams, events, syncs and barriers are re-run with new "
        "kernel durations, and every later call on a thread shifts by what it waited for. "
        "Without --device/--profile the recorded durations are kept and every timestamp "
        "comes out exactly as recorded. The output is a normal trace (run.source = "
        "'replayed', the parent in run.config.replay).",
        epilog="Examples:\n"
        "  revati replay trace.duckdb --device a100-sxm-80gb -o on-a100.duckdb\n"
        "  revati replay trace.duckdb --profile my.json -o calibrated.duckdb\n"
        "  revati replay trace.duckdb --scale attention=0.5 -o faster-attention.duckdb\n"
        "  revati compare on-a100.duckdb real-a100.duckdb",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("trace", metavar="TRACE", help="revati trace to replay (.duckdb)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="trace to write")
    parser.add_argument("--device", metavar="D", help="catalog device (revati devices)")
    parser.add_argument("--profile", metavar="P", help="calibration profile (name or .json)")
    parser.add_argument(
        "--scale",
        action="append",
        default=[],
        metavar="FAMILY=FACTOR",
        help="what-if: kernels of FAMILY (gemm, attention, elementwise, collective, memcpy, "
        "memset, ...) take FACTOR times as long; repeatable",
    )
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    parser.set_defaults(handler=run_replay)


def run_replay(args: argparse.Namespace) -> int:
    s = replay_trace(
        args.trace,
        args.output,
        device=args.device,
        profile=args.profile,
        overwrite=args.force,
        scale=parse_scales(args.scale),
    )
    print(
        f"{s.out}: {s.ops:,} device ops, {s.syncs:,} syncs, {s.barriers:,} barriers on "
        f"{s.device or 'the recorded device'} ({s.durations}); end {s.parent_end_ns / 1e6:.3f} ms "
        f"-> {s.end_ns / 1e6:.3f} ms; re-simulated at {s.ops_per_s / 1e6:.2f} M ops/s"
    )
    return 0
