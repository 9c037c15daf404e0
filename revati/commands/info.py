"""`revati info`: what a trace holds — run, ranks, counts, virtual duration, top kernels."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from revati.errors import RevatiUsageError
from revati.recorder.live import (
    SNAPSHOT_WAIT_S,
    Recording,
    live_recording,
    stop_following,
    wait_snapshot,
)
from revati.recorder.reader import TraceReader, being_recorded, open_trace
from revati.recorder.records import exit_text
from revati.serving.trace_requests import request_summary


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info",
        help="summarise a trace: run, ranks, counts per table, virtual duration, top kernels",
        description="Summarise a revati trace. --json prints the same as one JSON object.",
        epilog="Examples:\n  revati info trace.duckdb\n  revati info trace.duckdb --json | jq .counts\n"
        "  revati info --follow trace.duckdb   # while `revati record -o trace.duckdb` runs",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("trace", metavar="TRACE", help="revati trace (.duckdb)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--top", type=int, default=10, metavar="N", help="top N kernels (10)")
    parser.add_argument(
        "--follow",
        action="store_true",
        help="a trace being recorded: print its summary again as rows land, until the run ends "
        "(with --json: one object per line)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds between two summaries with --follow (default: %(default)s)",
    )
    parser.set_defaults(handler=run_info)


def trace_info(reader: TraceReader, top: int = 10) -> dict[str, Any]:
    """Everything `revati info` shows, as plain data."""
    run = reader.run()
    processes = reader.processes()
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
        | {k: run.get(k) for k in RUN_ENDING}
        | {"started_at": str(run["started_at"]), "ending": run_ending(run)},
        "ranks": [{"rank": p.rank, "pid": p.pid, "argv": p.argv} for p in processes],
        "processes": [p.__dict__ | {"ending": p.ending} for p in processes],
        "counts": reader.counts(),
        "events": reader.event_count(),
        "virtual_start_ns": first,
        "virtual_end_ns": int(end) if end is not None else last,
        "virtual_duration_ns": (int(end) if end is not None else last) - min(first, 0),
        "clock": clock_summary(reader, run),
        "top_kernels": [k.__dict__ for k in reader.kernel_stats(limit=top)],
        "requests": request_summary(reader),
        "model_shares": reader.model_shares(),
    }


def clock_summary(reader: TraceReader, run: dict[str, Any]) -> dict[str, Any] | None:
    """How the virtual clock moved: the program's wall time (from its start to its end), the
    jumps, and the wall time the clock ran unfrozen (flowing at wall speed because a participant
    thread counted as running). None for traces without the run's wall time."""
    wall = run.get("wall_ns")
    if not wall:
        return None
    config = run.get("config") or {}
    jumps, jumped = reader.sql("SELECT count(*), coalesce(sum(to_ns - from_ns), 0) FROM jumps")[0]
    return {
        "wall_ns": int(config.get("program_wall_ns") or wall),
        "jumps": int(jumps),
        "jumped_ns": int(jumped),
        "unfrozen_wall_ns": config.get("unfrozen_wall_ns"),
        "cpu_wait_ns": config.get("cpu_wait_ns"),
        "cpu_wait_discount_ns": config.get("cpu_wait_discount_ns"),
    }


def format_clock(clock: dict[str, Any]) -> str:
    text = (
        f"{clock['wall_ns'] / 1e9:,.1f} s wall, {clock['jumps']:,} jumps ({_s(clock['jumped_ns'])})"
    )
    unfrozen = clock["unfrozen_wall_ns"]
    if unfrozen is None:
        return text
    share = unfrozen / clock["wall_ns"] * 100
    text = f"{text}, unfrozen {_s(unfrozen)} of wall ({share:.0f}%)"
    waited, discounted = clock.get("cpu_wait_ns"), clock.get("cpu_wait_discount_ns")
    if waited:
        text += f"; threads waited {_s(int(waited))} for a CPU"
        if discounted is not None:
            text += f", {_s(int(discounted))} of host time discounted"
    return text


def _s(ns: int) -> str:
    return f"{ns / 1e9:,.3f} s"


def run_info(args: argparse.Namespace) -> int:
    path = Path(args.trace)
    if args.interval <= 0:
        raise RevatiUsageError("--interval must be positive")
    if live_recording(path) is None:
        _show(path, args)
        return 0
    snapshot_at = 0.0
    while True:
        snap = wait_snapshot(path, snapshot_at, SNAPSHOT_WAIT_S)
        rec = live_recording(path)
        if rec is None:
            stop_following(path)
            break  # the run ended: show the complete trace
        if snap is None:
            being_recorded(path)  # no snapshot came: say who records it
            continue
        snapshot_at = snap.stat().st_mtime
        _show(snap, args, shown_as=path, live=rec)
        if not args.follow:
            return 0
        time.sleep(args.interval)
    _show(path, args)
    return 0


def _show(
    path: Path,
    args: argparse.Namespace,
    shown_as: Path | None = None,
    live: Recording | None = None,
) -> None:
    with open_trace(path) as reader:
        info = trace_info(reader, args.top)
    if live is not None:
        info["path"] = str(shown_as)
        info["live"] = {"recorder_pid": live.pid}
        info["run"]["ending"] = f"not yet: being recorded by pid {live.pid} (a live snapshot)"
    if args.json:
        print(json.dumps(info, indent=None if args.follow else 2), flush=True)
        return
    if args.follow and sys.stdout.isatty():
        print("\x1b[H\x1b[2J", end="")  # a fresh screen per summary
    elif args.follow:
        print()
    print(format_info(info), flush=True)


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
        *([f"clock     {format_clock(info['clock'])}"] if info["clock"] else []),
        f"ended     {run['ending']}",
        f"ranks     {_ranks_line(info['ranks'])}",
        "counts    " + ", ".join(f"{t} {n:,}" for t, n in info["counts"].items() if n),
    ]
    if info["requests"]:
        by_status = ", ".join(f"{n:,} {s}" for s, n in sorted(info["requests"].items()))
        lines.append(f"requests  {by_status}; serving metrics: revati report {info['path']}")
    if info["processes"]:
        lines.append("processes:")
        lines.extend(f"  {_process_line(p)}" for p in info["processes"])
    shares = info["model_shares"]
    if shares:
        fallback = sum(v for m, v in shares.items() if m.endswith(UNMODELLED))
        lines.append(
            f"predicted {fallback * 100:.1f}% of device time by a fallback model ("
            + ", ".join(f"{m} {v * 100:.1f}%" for m, v in shares.items())
            + ")"
        )
    if info["top_kernels"]:
        lines.append("top kernels by device time:")
        lines.append(f"  {'share':>6} {'total ms':>10} {'count':>9} {'mean us':>9}  name")
        for k in info["top_kernels"]:
            lines.append(
                f"  {k['share'] * 100:5.1f}% {_ms(k['total_ns']):>10} {k['count']:>9,} "
                f"{k['mean_ns'] / 1e3:>9.2f}  {_short(k['name'])}"
            )
    return "\n".join(lines)


RUN_ENDING = ("exit_code", "exit_signal", "core_dumped", "interrupted_by")
UNMODELLED = ":unmodelled"  # how a fallback prediction names its model


def _ranks_line(ranks: list[dict[str, Any]]) -> str:
    """The ranks with their pids; processes without a rank (a launcher, the tools a program
    runs) only counted, since a serving stack starts dozens of them."""
    ranked = [f"{r['rank']} (pid {r['pid']})" for r in ranks if r["rank"] is not None]
    others = len(ranks) - len(ranked)
    if others:
        ranked.append(f"{others:,} {'process' if others == 1 else 'processes'} without a rank")
    return ", ".join(ranked) or "-"


def run_ending(run: dict[str, Any]) -> str:
    """How the recorded program ended, in words (older traces: from exit_status alone)."""
    status = run.get("exit_status")
    if status is None:
        return "unknown: revati stopped before the program ended (this is what it had written)"
    if run.get("exit_code") is None and run.get("exit_signal") is None:
        text = f"program exit status {status}"
    else:
        text = "program " + exit_text(
            run.get("exit_code"), run.get("exit_signal"), bool(run.get("core_dumped"))
        )
    interrupted = run.get("interrupted_by")
    return f"interrupted by {interrupted}: {text}" if interrupted else text


def _process_line(p: dict[str, Any]) -> str:
    rank = "" if p["rank"] is None else f"rank {p['rank']} "
    when = (
        f" at {_ms(p['ended_ns'])} ms virtual"
        + (f", {_ms(p['ended_wall_ns'])} ms wall" if p["ended_wall_ns"] is not None else "")
        if p["ended_ns"] is not None
        else ""
    )
    held = p.get("running_wall_ns")
    running = f", ran {_ms(held)} ms wall" if held else ""
    return f"{rank}pid {p['pid']} {p['ending']}{when}{running}  {_short(' '.join(p['argv']), 60)}"


def _ms(ns: int) -> str:
    return f"{ns / 1e6:,.3f}"


def _short(name: str, width: int = 90) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"
