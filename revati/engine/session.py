"""One `revati record` run: spawn the program under the shim and coordinate it until it exits."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from revati import shim
from revati.engine.config import RecordConfig
from revati.engine.coordinator import Coordinator
from revati.errors import RevatiRunError
from revati.predict.catalog import get_device
from revati.recorder.output import OutputFile, check_output

if TYPE_CHECKING:
    from revati.engine.durations import DurationModel
    from revati.recorder.writer import TraceWriter


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
    """Run config.argv under emulation and write its trace; returns when the program exits.

    What a participant needs to register (the clock page, config.txt, the socket) is made before
    the program starts; the predictor, the trace writer and the engine are loaded while it
    starts (its first CUDA call waits for them), so a run's start costs the program little.
    Everything a user can get wrong (the program, -o, --profile) is checked before it starts."""
    if not config.argv:
        raise RevatiRunError("no program given: use `revati record -- CMD ARGS...`")
    inputs = _check_program(config.argv)
    check_output(config.output, force=config.overwrite, inputs=inputs)
    spec = get_device(config.device)
    durations = _duration_model(config) if config.profile is not None else None
    shim_path, _ = shim.shim_paths()
    run_dir = _make_run_dir()
    output = OutputFile(config.output, "recording")  # written beside, renamed at the end
    coord = None
    writer: TraceWriter | None = None
    child: subprocess.Popen[bytes] | None = None
    try:
        output.acquire()
        coord = Coordinator(config, run_dir, spec)
        child = _spawn(config.argv, coord.child_env(shim_path))
        with _Signals(child):  # from the spawn on: Ctrl-C is the program's
            try:
                writer = _start_engine(coord, config, output, durations)
            except BaseException:
                child.kill()  # the engine could not start: the program must not run without it
                child.wait()
                child = None  # nor is its trace kept
                raise
            wall = _coordinate(coord, child, on_progress)
        virtual_end = coord.finish()
        status = _exit_status(child.returncode)
        writer.close(virtual_end_ns=virtual_end, wall_ns=wall, exit_status=status)
        return RecordResult(
            status, virtual_end, wall, coord.ingest.kernels, coord.syncs, coord.jumps, config.output
        )
    finally:
        try:
            if coord is not None:
                coord.close()  # its writer thread first: it may still be writing
        finally:
            if writer is not None:
                writer.close()
            shutil.rmtree(run_dir, ignore_errors=True)
            output.finish(keep=child is not None)  # once the program ran, its trace is kept


def _coordinate(
    coord: Coordinator,
    child: subprocess.Popen[bytes],
    on_progress: Callable[[Progress], None] | None,
) -> int:
    """Step the coordinator until the program exits; returns the run's wall time (ns), counted
    from the engine's start: loading it is revati's time, even where the program's start
    overlaps it."""
    wall0 = time.monotonic_ns()
    pidfd = os.pidfd_open(child.pid)
    coord.watch(pidfd)
    last_report = 0.0
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
    return time.monotonic_ns() - wall0


def _duration_model(config: RecordConfig) -> DurationModel:
    from revati.engine.durations import DurationModel

    durations = DurationModel(config.device, config.profile)
    if durations.warning:
        print(f"revati: warning: {durations.warning}", file=sys.stderr)
    return durations


def _start_engine(
    coord: Coordinator, config: RecordConfig, output: OutputFile, durations: DurationModel | None
) -> TraceWriter:
    """Load the predictor and the trace writer on a thread while the coordinator answers the
    starting program's registrations (a CUDA program registers before its `main`), then attach
    the engine. Returns the writer; raises what loading raised."""
    loaded: list[tuple[DurationModel, TraceWriter]] = []
    failed: list[BaseException] = []

    def load() -> None:
        try:
            model = durations or _duration_model(config)
            loaded.append((model, _writer(coord, config, output, model)))
        except BaseException as e:  # handed to the coordinator's thread below
            failed.append(e)

    loader = threading.Thread(target=load, name="revati-engine-load", daemon=True)
    loader.start()
    while loader.is_alive():
        coord.receive(0.002)
    if failed:
        raise failed[0]
    model, writer = loaded[0]
    try:
        coord.attach(model, writer)
    except BaseException:
        writer.close()
        raise
    return writer


def _writer(
    coord: Coordinator, config: RecordConfig, output: OutputFile, durations: DurationModel
) -> TraceWriter:
    """The trace writer of the run, on the output's temporary file."""
    from revati.recorder.writer import RunInfo, TraceWriter

    info = RunInfo(
        argv=list(config.argv),
        device=coord.spec.id,
        predictor=durations.identity,
        profile=config.profile,
        dilation=config.dilation,
        config={**config.to_json(), "protocol_version": shim.PROTOCOL_VERSION},
    )
    return TraceWriter(output.tmp, info, shown_as=config.output)
