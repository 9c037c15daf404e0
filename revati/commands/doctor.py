"""`revati doctor CMD [ARGS...]`: can revati run this program? (static check, runs nothing)."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from revati.doctor import DoctorReport, check_program
from revati.errors import RevatiRunError, RevatiUsageError

SHOWN_NAMES = 12  # names listed per category before "... and N more" (all with --verbose)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check whether a program can run under revati (runs nothing)",
        description="Read a program's binary and the shared libraries it loads; report the CUDA "
        "entry points it imports, which revati emulates, which are stubs, and whether it carries "
        "a static CUDA runtime (unsupported: rebuild with `nvcc -cudart shared`). Exit 0 if it "
        "can run, 6 if not.",
        epilog="Examples:\n  revati doctor ./my_cuda_program\n  revati doctor --json -- python serve.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the program and its arguments")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--verbose", "-v", action="store_true", help="list every imported name")
    parser.add_argument("--kernels", action="store_true",
                        help="list the cubins and kernels in the program's fatbinaries")  # fmt: skip
    parser.set_defaults(handler=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    argv = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not argv:
        raise RevatiUsageError("doctor needs a program to check, e.g. `revati doctor ./prog`")
    report = check_program(argv)
    kernels = _fatbin_listing(report) if args.kernels else None
    if args.json:
        document = report.to_dict()
        if kernels is not None:
            document["fatbins"] = kernels
        print(json.dumps(document, indent=2))
    else:
        console = Console()
        render_report(report, console, verbose=args.verbose)
        if kernels is not None:
            render_kernels(kernels, console)
    return 0 if report.runnable else RevatiRunError.exit_code


def render_report(report: DoctorReport, console: Console, verbose: bool = False) -> None:
    console.print(f"[bold]revati doctor[/bold] {report.program}  ({report.kind}: {report.path})")
    if report.libraries or report.imports or report.runnable:
        _render_summary(report, console, verbose)
    record = f"`revati record -- {report.program}`"
    if not report.runnable:
        verdict = f"[bold red]verdict: not runnable[/bold red] — {report.problem}"
    elif report.unintercepted:
        verdict = f"[bold yellow]verdict: runnable; calls into un-intercepted libraries will fail[/bold yellow] — {record}"
    else:
        verdict = f"[bold green]verdict: runnable[/bold green] — {record}"
    console.print(verdict, highlight=False)


def _render_summary(report: DoctorReport, console: Console, verbose: bool) -> None:
    summary = Table(show_header=False, box=None, padding=(0, 2))
    summary.add_row("CUDA libraries", ", ".join(report.cuda_libraries) or "none")
    summary.add_row("device code", "yes (fatbinary)" if report.fatbin_files else "none found")
    summary.add_row("CUDA imports", str(len(report.imports)))
    emulated = _names(report.emulated, verbose) if verbose else str(len(report.emulated))
    summary.add_row("[green]emulated[/green]", emulated)
    summary.add_row("[yellow]stubs (unsupported)[/yellow]", _names(report.stubs, verbose))
    for library, names in report.unintercepted.items():
        summary.add_row(f"[red]not intercepted: {library}[/red]", _names(names, verbose))
    console.print(summary)
    if report.shares:
        shares = Table("library", "emulated", "stub", "not intercepted", box=None, padding=(0, 2))
        for library, counts in report.shares.items():
            shares.add_row(
                library, *(str(counts.get(k, 0)) for k in ("emulated", "stub", "not intercepted"))
            )
        console.print(shares)
    for note in report.notes:
        console.print(f"  [dim]·[/dim] {note}", highlight=False)


def _names(names: list[str], verbose: bool) -> str:
    if not names:
        return "0"
    if verbose or len(names) <= SHOWN_NAMES:
        return f"{len(names)}: " + ", ".join(names)
    return (
        f"{len(names)}: "
        + ", ".join(names[:SHOWN_NAMES])
        + f", … and {len(names) - SHOWN_NAMES} more"
    )


def _fatbin_listing(report: DoctorReport) -> list[dict[str, object]]:
    from revati.fatbin import describe_fatbins  # only --kernels needs the fatbinary parser

    return describe_fatbins(report.fatbin_files)


def render_kernels(listing: list[dict[str, object]], console: Console) -> None:
    for fatbin in listing:
        console.print(f"[bold]{fatbin['file']}[/bold]")
        table = Table("kind", "arch", "compression", "kernel", "registers", "static smem")
        for entry in fatbin["entries"]:  # type: ignore[attr-defined]
            kernels = entry["kernels"] or [{"name": "", "registers": "", "shared_bytes": ""}]
            for kernel in kernels:
                table.add_row(entry["kind"], f"sm_{entry['arch']}", entry["compression"],
                              kernel["name"], str(kernel["registers"]), str(kernel["shared_bytes"]))  # fmt: skip
        console.print(table)
