"""One `revati record` run: spawn the program under the shim and coordinate it until it exits."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from revati import shim
from revati.engine.config import RecordConfig
from revati.engine.coordinator import Coordinator
from revati.engine.durations import DurationModel
from revati.errors import RevatiRunError
from revati.predict import get_device
from revati.recorder.output import OutputFile, check_output
from revati.recorder.writer import RunInfo, TraceWriter
from revati.serving.request_log import ingest_requests


@dataclass(frozen=True)
class RecordResult:
    """What a run produced (the CLI prints it; tests assert on it)."""

    exit_status: int
    virtual_ns: int
    wall_ns: int
    kernels: int
    syncs: int
    jumps: int
    output: str

    @property
    def speedup(self) -> float:
        return self.virtual_ns / self.wall_ns if self.wall_ns else 0.0


@dataclass(frozen=True)
class Progress:
    """A live reading for the status line."""

    virtual_ns: int
    wall_ns: int
    kernels: int
    syncs: int
    jumps: int


def _exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _make_run_dir() -> Path:
    """A private run directory, in memory (/dev/shm) when possible: rings are written at memory
    speed there, not flushed to a disk."""
    shm = Path("/dev/shm")
    base = shm if "TMPDIR" not in os.environ and shm.is_dir() and os.access(shm, os.W_OK) else None
    path = Path(tempfile.mkdtemp(prefix="revati-run-", dir=base))
    path.chmod(0o700)
    return path


def _check_program(argv: tuple[str, ...]) -> list[str]:
    """Refuse a program that cannot start, before anything is written; returns the files the
    command line names (the program first), which the output must never replace."""
    program = shutil.which(argv[0])
    if program is None:
        path = Path(argv[0])
        if path.is_dir():
            raise RevatiRunError(f"{argv[0]}: is a directory, not a program")
        if path.exists() and "/" in argv[0]:
            raise RevatiRunError(f"{argv[0]}: permission denied; is it executable? (chmod +x)")
        raise RevatiRunError(f"{argv[0]}: command not found; give the program's path after `--`")
    return [program, *(a for a in argv[1:] if os.path.isfile(a))]


def _open_output(config: RecordConfig, info: RunInfo) -> tuple[OutputFile, TraceWriter]:
    """Lock the output and start its trace in a temporary file beside it (renamed at the end)."""
    output = OutputFile(config.output, "recording")
    output.acquire()
    try:
        return output, TraceWriter(output.tmp, info, shown_as=config.output)
    except BaseException:
        output.discard()
        raise


def _spawn(argv: tuple[str, ...], env: dict[str, str]) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(list(argv), env=env)
    except FileNotFoundError as e:
        raise RevatiRunError(
            f"{argv[0]}: command not found; give the program's path after `--`"
        ) from e
    except PermissionError as e:
        raise RevatiRunError(f"{argv[0]}: permission denied; is it executable?") from e


class _Signals:
    """While the program runs: Ctrl-C reaches it (from the terminal); we keep coordinating.
    SIGTERM/SIGHUP to revati are forwarded to it."""

    def __init__(self, child: subprocess.Popen[bytes]) -> None:
        self.child = child
        self.saved: dict[int, object] = {}

    def __enter__(self) -> _Signals:
        self.saved[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self.saved[sig] = signal.signal(sig, self._forward)
        return self

    def _forward(self, signum: int, frame: object) -> None:
        if self.child.poll() is None:
            self.child.send_signal(signum)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def record(
    config: RecordConfig, on_progress: Callable[[Progress], None] | None = None
) -> RecordResult:
    """Run config.argv under emulation and write its trace; returns when the program exits."""
    if not config.argv:
        raise RevatiRunError("no program given: use `revati record -- CMD ARGS...`")
    inputs = _check_program(config.argv)
    check_output(config.output, force=config.overwrite, inputs=inputs)
    spec = get_device(config.device)
    durations = DurationModel(config.device, config.profile)
    if durations.warning:
        print(f"revati: warning: {durations.warning}", file=sys.stderr)
    shim_path, _ = shim.shim_paths()
    info = RunInfo(
        argv=list(config.argv),
        device=spec.id,
        predictor=durations.identity,
        profile=config.profile,
        dilation=config.dilation,
        config={**config.to_json(), "protocol_version": shim.PROTOCOL_VERSION},
    )
    output, writer = _open_output(config, info)
    run_dir = _make_run_dir()
    coord = None
    child: subprocess.Popen[bytes] | None = None
    try:
        coord = Coordinator(config, run_dir, spec, durations, writer)
        wall0 = time.monotonic_ns()
        child = _spawn(config.argv, coord.child_env(shim_path))
        pidfd = os.pidfd_open(child.pid)
        coord.watch(pidfd)
        last_report = 0.0
        with _Signals(child):
            while child.poll() is None:
                coord.step()
                if on_progress and time.monotonic() - last_report > 0.25:
                    last_report = time.monotonic()
                    on_progress(
                        Progress(
                            coord.page.now(),
                            time.monotonic_ns() - wall0,
                            coord.ingest.kernels,
                            coord.syncs,
                            coord.jumps,
                        )
                    )
        os.close(pidfd)
        wall = time.monotonic_ns() - wall0
        virtual_end = coord.finish()
        ingest_requests(run_dir, writer, coord.epoch_monotonic_ns)
        status = _exit_status(child.returncode)
        writer.close(virtual_end_ns=virtual_end, wall_ns=wall, exit_status=status)
        return RecordResult(
            status, virtual_end, wall, coord.ingest.kernels, coord.syncs, coord.jumps, config.output
        )
    finally:
        writer.close()
        if coord is not None:
            coord.close()
        shutil.rmtree(run_dir, ignore_errors=True)
        output.finish(keep=child is not None)  # once the program ran, its trace is kept
