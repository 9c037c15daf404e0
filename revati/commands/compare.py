"""`revati compare`: where an emulated trace and a real one part (alignment and attribution)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from revati.recorder.reader import open_trace
from revati.replay.report import compare_report


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="report where an emulated and a real trace of one workload part",
        description="Align EMULATED to REAL (per rank and stream, kernel by kernel) and report "
        "the error of total time, per step (syncs as step boundaries), per kernel family and "
        "per kernel name, how much of the difference is device time, host time and barrier "
        "waiting, and TTFT/TPOT/throughput where the traces have requests. Works on recorded, "
        "replayed and imported (Kineto, Nsight Systems) traces alike.",
        epilog="Examples:\n"
        "  revati compare emulated.duckdb real.duckdb\n"
        "  revati compare emulated.duckdb real.duckdb --json | jq '.families[0]'\n"
        "  revati import kineto rank0.json.gz -o real.duckdb && "
        "revati compare trace.duckdb real.duckdb",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("emulated", metavar="EMULATED", help="emulated (or replayed) trace")
    parser.add_argument("real", metavar="REAL", help="real-GPU (recorded or imported) trace")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--top", type=int, default=10, metavar="N", help="top N kernel names")
    parser.set_defaults(handler=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    with open_trace(args.emulated) as emulated, open_trace(args.real) as real:
        report = compare_report(emulated, real, args.top)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print("\n".join(format_report(report)))
    return 0


def _ms(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:,.3f}"


def _pct(p: float | None) -> str:
    return "-" if p is None else f"{p:+.1f}%"


def format_report(r: dict[str, Any]) -> list[str]:
    e, re_ = r["emulated"], r["real"]
    a = r["alignment"]
    out = [
        f"emulated  {e['path']} ({e['source']}, {e['device'] or '-'})",
        f"real      {re_['path']} ({re_['source']}, {re_['device'] or '-'})",
        f"aligned   {a['matched']:,} ops matched, {a['extra']:,} only emulated, "
        f"{a['missing']:,} only real, {len(a['streams'])} stream pairs",
        "",
        f"{'':24}{'emulated ms':>14}{'real ms':>14}{'delta ms':>12}{'error':>9}",
    ]
    for d in [r["total"], *r["figures"]]:
        out.append(
            f"{d['label']:24}{_ms(d['emulated_ns']):>14}{_ms(d['real_ns']):>14}"
            f"{_ms(d['delta_ns']):>12}{_pct(d['error_pct']):>9}"
        )
    s = r["steps"]
    if s["compared"]:
        out += [
            "",
            f"steps (syncs of the busiest thread): {s['emulated_steps']} emulated, "
            f"{s['real_steps']} real; mean |error| {s['mean_abs_error_pct']:.1f}% over "
            f"{s['compared']}; worst: "
            + ", ".join(f"#{w['step']} {_pct(w['error_pct'])}" for w in s["worst"]),
        ]
    out += ["", "difference by part (sums over streams / threads):"]
    for p in r["split"]:
        out.append(
            f"  {p['part']:14}{_ms(p['emulated_ns']):>14}{_ms(p['real_ns']):>14}"
            f"{_ms(p['delta_ns']):>12}  share {p['share']:+.0%}"
        )
    out += ["", "kernel families (delta = emulated - real device time):"]
    for f in r["families"]:
        out.append(
            f"  {f['family']:14}{f['count']:>8} matched{f['extra']:>6} extra{f['missing']:>6} "
            f"missing  delta {_ms(f['delta_ns']):>10} ms  error {_pct(f['error_pct']):>8}  "
            f"share {f['share']:+.0%}"
        )
    out += ["", "top mispredicted kernels (by absolute time):"]
    for k in r["kernel_names"]:
        out.append(
            f"  {_ms(k['delta_ns']):>10} ms {_pct(k['error_pct']):>8} {k['count']:>7}x  "
            f"{k['name'][:80]}"
        )
    if r["serving"]:
        se, sr = r["serving"]["emulated"], r["serving"]["real"]
        out += ["", "serving       emulated        real"]
        out.append(f"  TTFT ms   {_ms(se['ttft_ns']):>10}  {_ms(sr['ttft_ns']):>10}")
        out.append(f"  TPOT ms   {_ms(se['tpot_ns']):>10}  {_ms(sr['tpot_ns']):>10}")
        thr = [x["throughput_rps"] for x in (se, sr)]
        out.append("  req/s     " + "  ".join("-" if t is None else f"{t:>10.2f}" for t in thr))
    return out
