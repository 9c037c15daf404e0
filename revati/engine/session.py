"""One `revati record` run: spawn the program under the shim and coordinate it until it exits."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from revati import shim
from revati.engine.config import RecordConfig
from revati.engine.coordinator import Coordinator
from revati.engine.lifetimes import ExitCause
from revati.engine.signals import SignalRelay, in_terminal_foreground
from revati.errors import RevatiRunError
from revati.predict.catalog import get_device
from revati.recorder.live import LiveSnapshots
from revati.recorder.output import OutputFile, check_output

if TYPE_CHECKING:
    from revati.engine.durations import DurationModel
    from revati.recorder.writer import TraceWriter


# How long the trace writer's thread may hold the GIL while the coordinator's thread wants it
# (Python's default, 5 ms, is what a sync waited when a message came in while rows were
# converted; `engine_load eager 200000 100`: 2.5-3.7x less wall time in syncs).
GIL_SWITCH_S = 0.0002


@dataclass(frozen=True)
class RecordResult:
    """What a run produced (the CLI prints it; tests assert on it)."""

    exit_status: int
    virtual_ns: int
    wall_ns: int  # from before the program's spawn to its exit
    kernels: int
    syncs: int
    jumps: int
    output: str
    exit: ExitCause = ExitCause(code=0)
    interrupted_by: str | None = None
    other_ends: tuple[tuple[int, ExitCause], ...] = ()  # (pid, cause) of other processes

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


def _make_run_dir() -> Path:
    """A private run directory, in memory (/dev/shm) when possible: rings are written at memory
    speed there, not flushed to a disk."""
    shm = Path("/dev/shm")
    base = shm if "TMPDIR" not in os.environ and shm.is_dir() and os.access(shm, os.W_OK) else None
    _sweep_stale_run_dirs(Path(base or tempfile.gettempdir()))
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


STALE_RUN_DIR_S = 60  # a dead run's folder is left this long for whoever looks into it


def _sweep_stale_run_dirs(base: Path) -> None:
    """Remove the run folders of our earlier runs whose revati was killed (kill -9 leaves them
    behind; a program still running from one of them no longer uses it), once unchanged for
    STALE_RUN_DIR_S: a folder whose revati just died may still be read (its rings, its pids)."""
    now = time.time()
    for folder in base.glob("revati-run-*"):
        pid = shim.coordinator_pid(folder / "clock.page")
        try:
            info = folder.stat()
        except FileNotFoundError:
            continue
        if (
            pid
            and info.st_uid == os.getuid()
            and now - info.st_mtime > STALE_RUN_DIR_S
            and not _pid_exists(pid)
        ):
            shutil.rmtree(folder, ignore_errors=True)


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _spawn(argv: tuple[str, ...], env: dict[str, str], own_group: bool) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(list(argv), env=env, process_group=0 if own_group else None)
    except FileNotFoundError as e:
        raise RevatiRunError(
            f"{argv[0]}: command not found; give the program's path after `--`"
        ) from e
    except PermissionError as e:
        raise RevatiRunError(f"{argv[0]}: permission denied; is it executable?") from e


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
    live: LiveSnapshots | None = None
    child: subprocess.Popen[bytes] | None = None
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_S)
    try:
        output.acquire()
        coord = Coordinator(config, run_dir, spec)
        with SignalRelay(shares_group=in_terminal_foreground()) as relay:
            # From the spawn on, Ctrl-C is the program's; a lone signal to revati is passed on.
            child = _spawn(
                config.argv, coord.child_env(shim_path), own_group=not relay.shares_group
            )
            coord.watch_process(child.pid)
            relay.program_started(child.pid)
            try:
                writer = _start_engine(coord, config, output, durations)
            except BaseException:
                child.kill()  # the engine could not start: the program must not run without it
                child.wait()
                child = None  # nor is its trace kept
                raise
            snapshot_to = writer.snapshot  # on the writer thread: it owns the connection
            live = LiveSnapshots(
                Path(config.output),
                lambda dest: coord.sink.run_on_writer(lambda: snapshot_to(dest)),
            )
            return _run(config, coord, writer, child, relay, live, on_progress)
    finally:
        try:
            if live is not None:
                live.close()
            if coord is not None:
                coord.close()  # its writer thread first: it may still be writing
        finally:
            if writer is not None:
                writer.close()
            shutil.rmtree(run_dir, ignore_errors=True)
            output.finish(keep=child is not None)  # once the program ran, its trace is kept
            sys.setswitchinterval(switch_interval)


def _run(
    config: RecordConfig,
    coord: Coordinator,
    writer: TraceWriter,
    child: subprocess.Popen[bytes],
    relay: SignalRelay,
    live: LiveSnapshots,
    on_progress: Callable[[Progress], None] | None,
) -> RecordResult:
    """Step the coordinator until the program exits, then close the trace. The trace's wall time
    counts from the engine's start; the summary's, from before the program's spawn to its exit
    (a program that ends before the engine has loaded ran in the time the engine took to load,
    not in none)."""
    wall0 = time.monotonic_ns()
    last_report = 0.0
    while child.poll() is None:
        coord.step()
        relay.poll()
        live.tick()
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
    wall = time.monotonic_ns() - wall0
    program_wall = time.monotonic_ns() - coord.wall_start  # from before the program started
    coord.lifetimes.reaped_by_us(child.pid, child.returncode)
    virtual_end = coord.finish()
    flowed_virtual, flowed_real = coord.page.flowed()
    discounted = max(0, round(flowed_real / config.dilation) - flowed_virtual)
    waited = coord.cpu_wait.warning(
        program_wall, discounted if config.cpu_wait == "discount" else None
    )
    if waited:
        print(f"revati: warning: {waited}", file=sys.stderr)
    life = coord.lifetimes.by_pid.get(child.pid)
    cause = life.cause if life and life.cause else ExitCause.from_returncode(child.returncode)
    relay.poll()
    writer.close(
        virtual_end_ns=virtual_end,
        wall_ns=wall,
        exit_status=cause.status,
        exit_code=cause.code,
        exit_signal=cause.signal,
        core_dumped=cause.core_dumped,
        interrupted_by=relay.interrupted_by,
        config={
            **_run_config(config),
            "cpu_wait_ns": coord.cpu_wait.total_ns,
            "unfrozen_wall_ns": flowed_real,
            "cpu_wait_discount_ns": discounted,
            "program_wall_ns": program_wall,
            "host_cpus": os.cpu_count(),
        },
    )
    others = tuple(
        (pid, life.cause)
        for pid, life in coord.lifetimes.by_pid.items()
        if pid != child.pid and life.cause is not None
    )
    return RecordResult(
        cause.status,
        virtual_end,
        program_wall,
        coord.ingest.kernels,
        coord.syncs,
        coord.jumps,
        config.output,
        cause,
        relay.interrupted_by,
        others,
    )


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
            import revati.engine.ingest  # noqa: F401  (what `attach` builds, loaded here)

            model = durations or _duration_model(config)
            loaded.append((model, _writer(coord, config, output, model)))
        except BaseException as e:  # handed to the coordinator's thread below
            failed.append(e)

    loader = threading.Thread(target=load, name="revati-engine-load", daemon=True)
    loader.start()
    while loader.is_alive():
        coord.receive(0.002)
        coord.sample_cpu_wait()
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
        config=_run_config(config),
    )
    # The global event order is left to the readers (recorder/event_order.py): building it at
    # close cost more per kernel than everything else the engine does.
    return TraceWriter(output.tmp, info, shown_as=config.output, build_event_order=False)


def _run_config(config: RecordConfig) -> dict[str, Any]:
    """The run's resolved configuration, as the trace stores it (`run.config`)."""
    return {**config.to_json(), "protocol_version": shim.PROTOCOL_VERSION}
