"""`revati export`: write a trace in another format (Chrome trace JSON for Perfetto)."""

from __future__ import annotations

import argparse

from revati.errors import RevatiUsageError
from revati.recorder.chrome_export import export_chrome
from revati.recorder.output import atomic_output, check_output
from revati.recorder.reader import open_trace

FORMATS = ("chrome",)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a trace as Chrome trace JSON (Perfetto UI, chrome://tracing)",
        description="Export a trace as Chrome trace-event JSON: one process per rank, one track "
        "per host thread and per stream, flow arrows from each launch to its kernel, and a "
        "'virtual clock' process with the jumps and barriers. Load it at https://ui.perfetto.dev.",
        epilog="Example:\n  revati export trace.duckdb --format chrome -o trace.json.gz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("trace", metavar="TRACE", help="revati trace (.duckdb)")
    parser.add_argument("--format", choices=FORMATS, default="chrome", help="output format")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="output file (.json or .json.gz, gzip when it ends in .gz)",
    )
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")
    parser.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    if not args.output.endswith((".json", ".json.gz")):
        raise RevatiUsageError(f"{args.output}: name the output .json or .json.gz")
    out = check_output(args.output, force=args.force, inputs=[args.trace])
    with open_trace(args.trace) as reader, atomic_output(out) as tmp:
        n = export_chrome(reader, tmp, compress=out.suffix == ".gz")
    print(f"{out}: {n:,} trace events (open in https://ui.perfetto.dev or chrome://tracing)")
    return 0
