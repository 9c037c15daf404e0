"""`revati info`: what a trace holds — run, ranks, counts, virtual duration, top kernels."""

from __future__ import annotations

import argparse
import json
from typing import Any

from revati.recorder.reader import TraceReader, open_trace
from revati.serving.trace_requests import request_summary


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info",
        help="summarise a trace: run, ranks, counts per table, virtual duration, top kernels",
        description="Summarise a revati trace. --json prints the same as one JSON object.",
        epilog="Examples:\n  revati info trace.duckdb\n  revati info trace.duckdb --json | jq .counts",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("trace", metavar="TRACE", help="revati trace (.duckdb)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--top", type=int, default=10, metavar="N", help="top N kernels (10)")
    parser.set_defaults(handler=run_info)


def trace_info(reader: TraceReader, top: int = 10) -> dict[str, Any]:
    """Everything `revati info` shows, as plain data."""
    run = reader.run()
    first, last = reader.time_range()
    end = run.get("virtual_end_ns")
    return {
        "path": str(reader.path),
        "run": {
            k: run[k]
            for k in (
                "source",
                "argv",
                "device",
                "predictor",
                "profile",
                "dilation",
                "revati_version",
                "host",
                "exit_status",
            )
        }
        | {"started_at": str(run["started_at"])},
        "ranks": [{"rank": p.rank, "pid": p.pid, "argv": p.argv} for p in reader.processes()],
        "counts": reader.counts(),
        "events": reader.event_count(),
        "virtual_start_ns": first,
        "virtual_end_ns": int(end) if end is not None else last,
        "virtual_duration_ns": (int(end) if end is not None else last) - min(first, 0),
        "top_kernels": [k.__dict__ for k in reader.kernel_stats(limit=top)],
        "requests": request_summary(reader),
    }


def run_info(args: argparse.Namespace) -> int:
    with open_trace(args.trace) as reader:
        info = trace_info(reader, args.top)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(format_info(info))
    return 0


def format_info(info: dict[str, Any]) -> str:
    run = info["run"]
    lines = [
        f"trace     {info['path']}",
        f"source    {run['source']}   device {run['device'] or '-'}   "
        f"predictor {run['predictor'] or '-'}",
        f"command   {' '.join(run['argv'] or []) or '-'}",
        f"recorded  {run['started_at']} on {run['host'] or '-'} by revati {run['revati_version']}",
        f"virtual   {_ms(info['virtual_duration_ns'])} ms of virtual time, "
        f"{info['events']:,} events",
        "ranks     "
        + (
            ", ".join(
                f"{'-' if r['rank'] is None else r['rank']} (pid {r['pid']})" for r in info["ranks"]
            )
            or "-"
        ),
        "counts    " + ", ".join(f"{t} {n:,}" for t, n in info["counts"].items() if n),
    ]
    if info["requests"]:
        by_status = ", ".join(f"{n:,} {s}" for s, n in sorted(info["requests"].items()))
        lines.append(f"requests  {by_status}; serving metrics: revati report {info['path']}")
    if info["top_kernels"]:
        lines.append("top kernels by device time:")
        lines.append(f"  {'share':>6} {'total ms':>10} {'count':>9} {'mean us':>9}  name")
        for k in info["top_kernels"]:
            lines.append(
                f"  {k['share'] * 100:5.1f}% {_ms(k['total_ns']):>10} {k['count']:>9,} "
                f"{k['mean_ns'] / 1e3:>9.2f}  {_short(k['name'])}"
            )
    return "\n".join(lines)


def _ms(ns: int) -> str:
    return f"{ns / 1e6:,.3f}"


def _short(name: str, width: int = 90) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"
