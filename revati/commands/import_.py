"""`revati import`: turn a real-GPU trace (PyTorch profiler, Nsight Systems) into a revati trace."""

from __future__ import annotations

import argparse
from pathlib import Path

from revati.recorder.importers import ImportSummary, import_kineto, import_nsys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import",
        help="import a real-GPU trace (PyTorch profiler JSON, Nsight Systems SQLite)",
        description="Import a trace measured on a real GPU into a revati trace (run.source = "
        "'real', every duration measured), so `revati info`, the TUI and comparisons work on it.",
        epilog="Examples:\n"
        "  revati import kineto rank0.json.gz rank1.json.gz -o real.duckdb\n"
        "  revati import nsys report1.sqlite -o real.duckdb --force",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    formats = parser.add_subparsers(dest="format", required=True)
    kineto = formats.add_parser(
        "kineto",
        help="PyTorch-profiler (Kineto) trace JSON, one file per rank of one run",
        description="Import PyTorch-profiler traces (.json or .json.gz). Several files are the "
        "ranks of one run (rank from distributedInfo); their NCCL kernels become barriers.",
    )
    kineto.add_argument(
        "files", nargs="+", metavar="FILE", help="trace .json or .json.gz, or a folder of them"
    )
    nsys = formats.add_parser(
        "nsys",
        help="Nsight Systems SQLite export (nsys export --type sqlite)",
        description="Import an Nsight Systems SQLite export (CUPTI kernel, runtime, memcpy, "
        "memset and NVTX tables).",
    )
    nsys.add_argument("files", nargs=1, metavar="FILE", help="report .sqlite file")
    for sub in (kineto, nsys):
        sub.add_argument(
            "-o",
            "--output",
            metavar="TRACE",
            help="trace to write (default: FILE's name with .duckdb, in the current folder)",
        )
        sub.add_argument(
            "--force",
            action="store_true",
            help="replace TRACE if it exists (only once the import succeeded)",
        )
        sub.set_defaults(handler=run_import)


def run_import(args: argparse.Namespace) -> int:
    output = args.output or default_output(args.files[0])
    summary: ImportSummary
    if args.format == "kineto":
        summary = import_kineto(args.files, output, force=args.force)
    else:
        summary = import_nsys(args.files[0], output, force=args.force)
    print(summary.line())
    return 0


def default_output(first_input: str) -> str:
    """`trace.pt.trace.json.gz` -> `trace.duckdb` in the current folder."""
    name = Path(first_input).name
    for suffix in (".gz", ".json", ".sqlite", ".trace", ".pt"):
        name = name.removesuffix(suffix)
    return f"{name or 'imported'}.duckdb"
