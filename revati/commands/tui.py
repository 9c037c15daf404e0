"""`revati tui`: step through a trace in the Textual debugger (optionally against a real one)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tui",
        help="step through a trace in the terminal debugger",
        description="Open a trace in the revati debugger: per-rank timelines, debugger-like "
        "stepping (n/p, N/P, ]/[, }/{, b/B, g, :break/continue/reverse-continue), the state of "
        "every thread and stream at the cursor, a barrier inspector, and, with --against, a "
        "comparison with a real-GPU trace. Press ? inside for every key.",
        epilog="Examples:\n"
        "  revati tui trace.duckdb\n"
        "  revati tui emulated.duckdb --against real.duckdb",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("trace", help="trace file (.duckdb) to open")
    parser.add_argument(
        "--against",
        metavar="REAL",
        help="a real-GPU trace (e.g. from `revati import`) to compare with",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from revati.tui.app import run_app  # textual is imported only when the TUI runs

    return run_app(args.trace, args.against)
