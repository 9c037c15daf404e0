"""`revati report`: serving metrics (TTFT, TPOT, ITL, E2EL, throughput) of a trace's requests."""

from __future__ import annotations

import argparse
import json

from revati.errors import RevatiTraceError
from revati.recorder.reader import open_trace
from revati.serving.metrics import ServingReport, compute, format_report, parse_slo
from revati.serving.trace_requests import trace_requests


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="serving metrics of a trace with requests (vLLM benchmark layout)",
        description="Compute the serving metrics of a trace's requests (recorded by `revati "
        "bench`): successful/failed requests, duration, request and token throughput, and "
        "mean/median/P99 of TTFT, TPOT, ITL and E2EL, under the names vLLM's serving "
        "benchmark prints. All times are virtual.",
        epilog="Examples:\n  revati report run.duckdb\n"
        "  revati report run.duckdb --slo ttft:200,tpot:50 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("trace", metavar="TRACE", help="revati trace (.duckdb) with requests")
    add_report_options(p)
    p.set_defaults(handler=run_report)


def add_report_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.add_argument(
        "--slo",
        default=None,
        metavar="NAME:MS,...",
        help="service-level objectives for goodput, e.g. ttft:200,tpot:50 (ttft, tpot, e2el)",
    )


def trace_report(path: str, slo: dict[str, float]) -> ServingReport:
    with open_trace(path) as reader:
        requests = trace_requests(reader)
    if not requests:
        raise RevatiTraceError(
            f"{path}: the trace has no requests; record a serving run with `revati bench`"
        )
    return compute(requests, slo)


def print_report(report: ServingReport, as_json: bool) -> None:
    print(json.dumps(report.to_json(), indent=2) if as_json else format_report(report))


def run_report(args: argparse.Namespace) -> int:
    print_report(trace_report(args.trace, parse_slo(args.slo)), args.json)
    return 0
