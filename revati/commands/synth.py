"""`revati synth`: write a deterministic synthetic multi-rank trace (tests, benchmarks, TUI)."""

from __future__ import annotations

import argparse
import time

from revati.errors import RevatiUsageError
from revati.recorder.output import atomic_output, check_output
from revati.recorder.synth import synthesize


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="write a synthetic multi-rank serving trace (deterministic, seeded)",
        description="Write a synthetic trace of a tensor-parallel LLM serving loop: per rank a "
        "host thread launching transformer layers on compute, NCCL and copy streams, prefill and "
        "decode iterations with stream syncs, clock jumps, all-reduce barriers (the last rank "
        "straggles), NVTX ranges and request markers. The same --seed gives the same trace.",
        epilog="Examples:\n"
        "  revati synth -o small.duckdb --events 1000\n"
        "  revati synth -o big.duckdb --ranks 8 --events 10000000 --seed 7",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-o", "--output", required=True, metavar="TRACE", help="trace to write")
    parser.add_argument("--ranks", type=int, default=4, help="tensor-parallel ranks (default 4)")
    parser.add_argument(
        "--events",
        type=float,
        default=100_000,
        help="about how many events (1e3 .. 1e7; default 1e5)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--small-blocks",
        action="store_true",
        help="16 KiB storage blocks: a far smaller file for a small trace "
        "(traces/sample.duckdb is made with --events 5000 --small-blocks)",
    )
    parser.add_argument("--force", action="store_true", help="replace TRACE if it exists")
    parser.set_defaults(handler=run_synth)


def run_synth(args: argparse.Namespace) -> int:
    events = int(args.events)
    if not 1 <= args.ranks <= 1024:
        raise RevatiUsageError(f"--ranks {args.ranks}: give 1 to 1024 ranks")
    if not 100 <= events <= 100_000_000:
        raise RevatiUsageError(f"--events {args.events:g}: give 100 to 1e8 events")
    out = check_output(args.output, force=args.force)
    t0 = time.perf_counter()
    with atomic_output(out) as tmp:
        summary = synthesize(
            tmp, ranks=args.ranks, events=events, seed=args.seed, small_blocks=args.small_blocks
        )
    took = time.perf_counter() - t0
    print(
        f"{out}: {summary.events:,} events, {summary.ranks} ranks, {summary.layers} layers, "
        f"{summary.iterations} iterations (seed {args.seed}) in {took:.1f} s"
    )
    return 0
