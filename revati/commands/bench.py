"""`revati bench`: a serving benchmark in virtual time — server, load and report in one run."""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
from pathlib import Path

from revati.commands.record import add_run_options, record_config
from revati.commands.report import add_report_options, print_report, trace_report
from revati.engine.session import record
from revati.errors import RevatiRunError, RevatiUsageError
from revati.serving.client import ENDPOINTS
from revati.serving.config import LoadConfig
from revati.serving.driver import drive
from revati.serving.metrics import compute, parse_slo


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench",
        help="benchmark an OpenAI-compatible server under emulation (TTFT, TPOT, throughput)",
        description="Start SERVER_CMD under emulation as `revati record` does, wait (in virtual "
        "time) until it answers GET /v1/models, send the load as one more participant of the "
        "run, stop the server (SIGINT, SIGTERM, SIGKILL) and print vLLM's serving report. Every "
        "arrival and latency is virtual time; the trace holds the requests, their tokens and "
        "every kernel and sync. The server's output goes to OUTPUT.server.log.",
        epilog="Examples:\n"
        "  revati bench -o run.duckdb --num-prompts 32 -- transformers serve --port 8000\n"
        "  revati bench --request-rate 4 --input-len 64:512 --output-len 128 -- ./server\n"
        "  revati record -- sh -c './server & revati bench --no-launch --num-prompts 8'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_options(p)
    add_load_options(p)
    add_report_options(p)
    p.add_argument(
        "--no-launch",
        action="store_true",
        help="send the load to a server already running inside the same `revati record`",
    )
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- SERVER_CMD ARGS...: the server")
    p.set_defaults(handler=run_bench)


def add_load_options(p: argparse.ArgumentParser) -> None:
    d = LoadConfig()
    p.add_argument("--url", default=d.url, help="server base URL (default: %(default)s)")
    p.add_argument("--endpoint", default=d.endpoint, choices=ENDPOINTS, help="API to load")
    p.add_argument("--model", default=None, help="model name (default: the server's first)")
    p.add_argument("--num-prompts", type=int, default=d.num_prompts, help="requests to send")
    p.add_argument(
        "--request-rate",
        type=float,
        default=d.request_rate,
        help="mean requests/s, Poisson arrivals (default: inf, all at once)",
    )
    p.add_argument(
        "--burstiness", type=float, default=d.burstiness, help="gamma shape of the gaps (1)"
    )
    p.add_argument("--max-concurrency", type=int, default=None, help="requests in flight at most")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of arrivals and lengths")
    p.add_argument("--input-len", default=d.input_len, help="prompt tokens: N or LOW:HIGH")
    p.add_argument("--output-len", default=d.output_len, help="output tokens: N or LOW:HIGH")
    p.add_argument(
        "--dataset",
        default=None,
        metavar="PATH",
        help="JSON or JSONL of prompt_len/output_len (or ShareGPT conversations)",
    )
    p.add_argument(
        "--ready-timeout",
        type=float,
        default=d.ready_timeout,
        metavar="S",
        help="virtual seconds to wait for the server to answer (default: %(default)s)",
    )


def load_config(args: argparse.Namespace) -> LoadConfig:
    if args.num_prompts < 1:
        raise RevatiUsageError("--num-prompts must be at least 1")
    if args.max_concurrency is not None and args.max_concurrency < 1:
        raise RevatiUsageError("--max-concurrency must be at least 1")
    if args.ready_timeout <= 0 or math.isnan(args.request_rate):
        raise RevatiUsageError("--ready-timeout and --request-rate must be positive numbers")
    config = LoadConfig(
        url=args.url,
        endpoint=args.endpoint,
        model=args.model,
        num_prompts=args.num_prompts,
        request_rate=args.request_rate,
        burstiness=args.burstiness,
        max_concurrency=args.max_concurrency,
        seed=args.seed,
        input_len=args.input_len,
        output_len=args.output_len,
        dataset=os.path.abspath(args.dataset) if args.dataset else None,
        ready_timeout=args.ready_timeout,
    )
    config.plan()  # bad lengths or a malformed dataset fail here, before anything starts
    return config


def _server_argv(args: argparse.Namespace) -> list[str]:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if args.no_launch:
        if cmd:
            raise RevatiUsageError("--no-launch loads a running server; give no SERVER_CMD")
        return []
    if not cmd:
        raise RevatiUsageError("no server given: use `revati bench [options] -- SERVER_CMD ARGS`")
    if shutil.which(cmd[0]) is None:
        raise RevatiRunError(f"{cmd[0]}: command not found; give the server's path after `--`")
    return cmd


def run_bench(args: argparse.Namespace) -> int:
    slo = parse_slo(args.slo)
    config = load_config(args)
    server = _server_argv(args)
    if args.no_launch:
        return _run_inside(config, slo, args.json)
    log = os.path.abspath(args.output) + ".server.log"
    driver = (sys.executable, "-m", "revati.serving.driver", config.to_json(), log, *server)
    run = record_config(args, driver)
    result = record(run)
    if result.exit_status != 0:
        print(f"revati: the trace is kept: {result.output}", file=sys.stderr)
        return result.exit_status
    print_report(trace_report(result.output, slo), args.json)
    return 0


def _run_inside(config: LoadConfig, slo: dict[str, float], as_json: bool) -> int:
    """--no-launch: this process is the load generator of a run someone else records."""
    records = drive(config, Path(os.devnull), [])
    print_report(compute([r.times() for r in records], slo), as_json)
    return 0
