"""The `revati` command line: a thin layer over library calls.

Each subcommand lives in its own module under `revati/commands/` and exposes
`register(subparsers)`, which adds its parser and sets `handler=<callable(args) -> int>`.
Errors are `RevatiError`s, caught here only: the user sees one line on stderr and the error's
exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys

from revati import __version__
from revati.errors import RevatiError

# Subcommand modules, in the order `revati --help` lists them.
COMMAND_MODULES = (
    "revati.commands.record",
    "revati.commands.bench",
    "revati.commands.report",
    "revati.commands.doctor",
    "revati.commands.info",
    "revati.commands.export",
    "revati.commands.import_",
    "revati.commands.synth",
    "revati.commands.tui",
    "revati.commands.devices",
    "revati.commands.calibrate",
    "revati.commands.predict_report",
    "revati.commands.profile",
    "revati.commands.replay",
    "revati.commands.compare",
)


def _modules_for(argv: list[str] | None) -> tuple[str, ...]:
    """The command modules to load: only the named command's when argv names one (a run starts
    sooner without importing every other command), else all of them (for --help)."""
    if not argv or argv[0].startswith("-"):
        return COMMAND_MODULES
    module_name = f"revati.commands.{argv[0].replace('-', '_')}"
    for candidate in (module_name, module_name + "_"):
        if candidate in COMMAND_MODULES:
            return (candidate,)
    return COMMAND_MODULES


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv` (every command's when None)."""
    parser = argparse.ArgumentParser(
        prog="revati",
        description="Run real CUDA serving code with no GPU on a virtual clock, record every CUDA "
        "call into a DuckDB trace, and step through it in a TUI.",
        epilog="Examples:\n"
        "  revati record -o trace.duckdb -- ./my_cuda_program   # run under emulation\n"
        "  revati info trace.duckdb                             # what is in a trace\n"
        "  revati tui trace.duckdb                              # step through it\n"
        "  revati replay trace.duckdb --device a100-sxm-80gb -o a100.duckdb  # on another GPU\n"
        "  revati compare trace.duckdb real.duckdb              # where emulated and real part\n"
        "Run `revati COMMAND --help` for the options of each command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"revati {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _modules_for(argv):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name == module_name:  # command not built yet
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command `argv` names (sys.argv[1:] when None) and return its exit status.

    Invoked as a program (argv None), a command that sets `exit_at_once` (its outputs are all
    closed when its handler returns) ends the process here without the interpreter's teardown:
    freeing numpy's, DuckDB's and the engine's modules costs a run ~80 ms after its trace is
    already complete."""
    as_program = argv is None
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    status = _handle(args)
    if as_program and getattr(args, "exit_at_once", False):
        _exit_now(status)
    return status


def _handle(args: argparse.Namespace) -> int:
    try:
        return int(args.handler(args) or 0)
    except RevatiError as e:
        print(f"revati: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("revati: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _exit_now(status: int) -> None:
    """End the process with `status` once stdout and stderr are flushed, skipping teardown."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed or broken pipe: nothing to say
            stream.flush()
    os._exit(status & 0xFF)


if __name__ == "__main__":
    sys.exit(main())
