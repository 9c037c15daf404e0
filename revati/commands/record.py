"""`revati record`: run a CUDA program with no GPU on a virtual clock and write its trace."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from revati.engine.config import RecordConfig
from revati.engine.session import Progress, RecordResult, record
from revati.errors import RevatiRunError, RevatiUsageError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "vector_add"
EXAMPLE_NAMES = ("vector-add", "llama")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "record",
        help="run a CUDA program under emulation and record a trace",
        description="Run CMD (built with `-cudart shared`) with no GPU: every kernel is skipped, a "
        "virtual clock advances by predicted durations, and every CUDA call lands in a DuckDB "
        "trace. Exits with CMD's exit status.",
        epilog="Examples:\n"
        "  revati record -o demo.duckdb --example        # the bundled vector-add demo\n"
        "  revati record --example llama -- --batch 32 --graph   # the Llama-shaped decoder\n"
        "  revati record --example llama --nproc 4 -- --tp 4     # 4 tensor-parallel ranks\n"
        "  revati record -o t.duckdb -- torchrun --nproc-per-node 4 train.py   # one GPU per rank\n"
        "  revati record -o t.duckdb -- ./my_program --size 1024\n"
        "  revati record --device h200 -- python train.py\n"
        "  revati record --real -o real.duckdb -- ./my_program   # measured, on a real GPU",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_options(p)
    p.add_argument(
        "--real",
        action="store_true",
        help="ground truth: run CMD on this machine's NVIDIA GPU and record measured times "
        "(CUPTI activity: kernels, copies, memsets, syncs, API calls) into the same tables",
    )
    p.add_argument(
        "--example",
        nargs="?",
        const="vector-add",
        choices=EXAMPLE_NAMES,
        metavar="NAME",
        help="record a bundled workload: vector-add (the default, a CUDA C++ program) or llama "
        "(a Llama-shaped decoder in PyTorch; arguments after -- go to it, see "
        "`python -m revati.examples.llama --help`)",
    )
    p.add_argument(
        "--nproc",
        type=int,
        default=None,
        metavar="N",
        help="with --example llama: start N ranks of it under torchrun (give the split after --: "
        "`--tp N`, `--pp 2`, or both with tp × pp = N)",
    )
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ARGS...: the program to run")
    p.set_defaults(handler=run, exit_at_once=True)  # the trace is closed when `run` returns


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Options of the run itself, shared by `record` and `bench`."""
    p.add_argument(
        "-o", "--output", default="trace.duckdb", help="trace file to write (default: %(default)s)"
    )
    p.add_argument(
        "--device",
        default="h100-sxm",
        help="virtual GPU from the catalog (default: %(default)s; see `revati devices`)",
    )
    p.add_argument(
        "--profile",
        default=None,
        help="calibration profile for the predictor (default: the device's shipped one)",
    )
    p.add_argument(
        "--dilation",
        type=float,
        default=1.0,
        help="host time dilation K: host CPU work counts 1/K in virtual time (default: 1)",
    )
    p.add_argument(
        "--cpu-wait",
        choices=("discount", "count"),
        default="discount",
        help="time participant threads wait for a CPU (more runnable threads than cores, "
        "revati's own work, other programs): 'discount' slows the virtual clock by the share "
        "of their CPU demand that waited, so a busy machine does not lengthen host phases; "
        "'count' lets host time flow at wall speed (over --dilation) however busy the machine "
        "is (default: %(default)s)",
    )
    p.add_argument(
        "--backed-max",
        type=int,
        default=4 << 20,
        metavar="BYTES",
        help="allocations up to BYTES hold real data; larger ones are virtual (default: 4 MiB)",
    )
    p.add_argument(
        "--devices",
        type=int,
        default=None,
        metavar="N",
        help="virtual GPUs each process sees, i.e. per node (default: torchrun's "
        "--nproc-per-node when CMD is torchrun, so rank r uses cuda:LOCAL_RANK; else 1)",
    )
    p.add_argument(
        "--nodes",
        type=int,
        default=1,
        metavar="M",
        help="nodes of N (--devices) GPUs each: NCCL rank r (RANK from the environment when a "
        "process sets it) is on node r // N; a collective within one node runs on NVLink/NVSwitch, "
        "one that spans nodes on the catalog device's network (default: 1)",
    )
    p.add_argument(
        "--graph-nodes-every-launch",
        action="store_true",
        help="every CUDA-graph launch sends its nodes to the engine (default: a graph of "
        "kernels, copies and memsets sends its nodes once, its later launches replay them; the "
        "trace is the same)",
    )
    p.add_argument("--force", action="store_true", help="overwrite the output trace if it exists")
    p.add_argument("--quiet", action="store_true", help="no live status line and no summary")


def record_config(args: argparse.Namespace, argv: tuple[str, ...]) -> RecordConfig:
    """The run's configuration from the options `add_run_options` added."""
    if args.dilation <= 0:
        raise RevatiUsageError("--dilation must be positive")
    devices = args.devices if args.devices is not None else default_devices(argv)
    if devices < 1 or args.nodes < 1:
        raise RevatiUsageError("--devices and --nodes must be at least 1")
    return RecordConfig(
        argv=argv,
        output=args.output,
        device=args.device,
        profile=args.profile,
        device_count=devices,
        nodes=args.nodes,
        dilation=args.dilation,
        cpu_wait=args.cpu_wait,
        backed_max=args.backed_max,
        graph_replay=not args.graph_nodes_every_launch,
        overwrite=args.force,
        status=not args.quiet,
    )


def torchrun_nproc(argv: tuple[str, ...]) -> int | None:
    """The --nproc-per-node of a torchrun command line (`torchrun …` or `python -m
    torch.distributed.run …`), if it names a number of processes."""
    names = [Path(a).name for a in argv[:3]]
    runner = "torchrun" in names or "torch.distributed.run" in argv[:3]
    if not runner:
        return None
    for i, arg in enumerate(argv):
        flag, _, value = arg.partition("=")
        if flag not in ("--nproc-per-node", "--nproc_per_node"):
            continue
        value = value or (argv[i + 1] if i + 1 < len(argv) else "")
        return int(value) if value.isdigit() else None
    return None


def default_devices(argv: tuple[str, ...]) -> int:
    """Virtual GPUs per process when --devices is not given: one per torchrun worker."""
    return max(torchrun_nproc(argv) or 1, 1)


def _command(args: argparse.Namespace) -> tuple[str, ...]:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if args.nproc is not None and args.example != "llama":
        raise RevatiUsageError(
            "--nproc starts the Llama example under torchrun: give --example llama"
        )
    if args.example == "llama":
        return _llama_example(cmd, args.nproc)
    if args.example:
        if cmd:
            raise RevatiUsageError(
                "--example runs the bundled demo; give either --example or -- CMD, not both"
            )
        if not EXAMPLE.exists():
            raise RevatiRunError(
                f"{EXAMPLE}: the bundled example is missing from this installation"
            )
        return (str(EXAMPLE),)
    if not cmd:
        raise RevatiUsageError(
            "no program given: use `revati record [-o trace.duckdb] -- CMD ARGS...`"
        )
    return tuple(cmd)


def _llama_example(extra: list[str], nproc: int | None) -> tuple[str, ...]:
    """The Llama-shaped decoder, run by this Python; `extra` goes to its own options. With
    `nproc`, torchrun starts that many ranks of it (a standalone rendezvous on a free port)."""
    if importlib.util.find_spec("torch") is None:
        raise RevatiRunError(
            "--example llama needs PyTorch: install it with `pip install -e '.[torch]'` "
            "(or `pip install 'torch>=2.14,<2.15'`)"
        )
    module = ("-m", "revati.examples.llama", *extra)
    if nproc is None:
        return (sys.executable, *module)
    if nproc < 1:
        raise RevatiUsageError("--nproc must be at least 1")
    runner = ("-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc))
    return (sys.executable, *runner, *module)


def _refuse_static(argv: tuple[str, ...]) -> None:
    from revati.doctor import static_runtime_problem  # only record needs it, and only here

    if static_runtime_problem(list(argv)) is not None:
        raise RevatiRunError(
            f"{argv[0]}: statically linked CUDA runtime cannot be emulated; rebuild with `-cudart shared`"
        )


def _format_ns(ns: int) -> str:
    s = ns / 1e9
    if s >= 1000:
        return f"{s:,.0f} s"
    return f"{s:.3g} s" if s >= 1 else f"{s * 1e3:.3g} ms"


def _count(n: int) -> str:
    return f"{n / 1e6:.1f} M" if n >= 1_000_000 else f"{n:,}"


def summary(r: RecordResult) -> str:
    """One line: how the run ended, then what it recorded."""
    return (
        f"{ending(r)}; virtual {_format_ns(r.virtual_ns)} in {_format_ns(r.wall_ns)} wall "
        f"({r.speedup:.1f}×), {_count(r.kernels)} kernels, {_count(r.syncs)} syncs, "
        f"{_count(r.jumps)} jumps → {r.output}"
    )


def ending(r: RecordResult) -> str:
    """'program exited with code 0', 'interrupted (SIGTERM): program killed by SIGTERM'."""
    text = f"program {r.exit.describe()}"
    if r.interrupted_by:
        text = f"interrupted ({r.interrupted_by}): {text}"
    failed = [(pid, c) for pid, c in r.other_ends if c.signal is not None or c.code]
    shown = ", ".join(f"pid {pid} {c.describe()}" for pid, c in failed[:3])
    more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
    return f"{text}; {shown}{more}" if shown else text


def run(args: argparse.Namespace) -> int:
    argv = _command(args)
    if not args.real:
        _refuse_static(argv)
    config = record_config(args, argv)
    live = config.status and sys.stderr.isatty()
    if args.real:
        from revati.engine.real_session import record_real

        result = record_real(config)
    elif not live:
        result = record(config)
    else:
        from rich.console import Console
        from rich.live import Live

        console = Console(stderr=True)
        with Live(console=console, transient=True, refresh_per_second=4) as status:

            def show(p: Progress) -> None:
                speed = p.virtual_ns / p.wall_ns if p.wall_ns else 0.0
                status.update(
                    f"[dim]revati[/] virtual {_format_ns(p.virtual_ns)} · wall {_format_ns(p.wall_ns)}"
                    f" · {speed:.1f}× · {_count(p.kernels)} kernels · {_count(p.syncs)} syncs"
                    f" · {_count(p.jumps)} jumps"
                )

            result = record(config, show)
    if config.status:
        print(f"revati: {summary(result)}", file=sys.stderr)
    return result.exit_status
