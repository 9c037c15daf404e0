"""`revati record --real`: run the program on the real GPU and write its measured trace.

The program runs untouched, with the CUPTI collector (revati/native/cupti_collector.c)
preloaded; when it exits, the collector files become the same tables an emulated run writes
(`revati/engine/measured.py`), with `run.source = 'real'` and every duration measured. No
clock control, no prediction. Without an NVIDIA driver and device this says so and stops.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from revati.engine.config import RecordConfig
from revati.engine.lifetimes import ExitCause
from revati.engine.measured import MeasuredTrace, measured_trace
from revati.engine.session import RecordResult
from revati.engine.trace_sink import TraceSink
from revati.errors import RevatiRunError
from revati.native.build import BuildError
from revati.native.collector_build import ensure_collector
from revati.recorder import schema
from revati.recorder.output import OutputFile, check_output
from revati.recorder.writer import RunInfo, TraceWriter

NEEDS_GPU = "record --real needs an NVIDIA GPU"


def gpu_status() -> str | None:
    """None when the CUDA driver finds a device here, else one line saying what is missing."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "no NVIDIA driver on this machine (libcuda.so.1 not found)"
    rc = cuda.cuInit(0)
    if rc != 0:
        return f"the NVIDIA driver found no usable GPU (cuInit returned {rc})"
    count = ctypes.c_int(0)
    if cuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return "the NVIDIA driver reports no CUDA device"
    return None


def gpu_name() -> str | None:
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
        dev, buf = ctypes.c_int(0), ctypes.create_string_buffer(256)
        if cuda.cuDeviceGet(ctypes.byref(dev), 0) == 0 and cuda.cuDeviceGetName(buf, 256, dev) == 0:
            return buf.value.decode()
    except OSError:
        pass
    return None


def catalog_id(gpu: str | None, default: str) -> str:
    """The catalog device whose name is the GPU's (e.g. 'NVIDIA H100 80GB HBM3'), else default."""
    from revati.predict import list_devices

    return next((d.id for d in list_devices() if gpu and d.name == gpu), default)


def write_measured_trace(
    files: list[Path],
    writer: TraceWriter,
    wall_ns: int,
    exit_status: int,
    gpu: str | None = None,
    model: str | None = None,
    cause: ExitCause | None = None,
) -> MeasuredTrace:
    """Write the collector files' rows through the sink and close the writer; `gpu` and
    `model` name the device (its marketing and catalog names)."""
    sink = TraceSink(writer)
    trace = measured_trace(files, sink)
    for device in sorted(trace.devices):
        sink.add("devices", device_id=device, ordinal=device, name=gpu, model=model)
    sink.close()  # every row written before the run row is finished
    ending = (
        {"exit_code": cause.code, "exit_signal": cause.signal, "core_dumped": cause.core_dumped}
        if cause is not None
        else {}
    )
    writer.close(virtual_end_ns=trace.end_ns, wall_ns=wall_ns, exit_status=exit_status, **ending)
    return trace


def record_real(config: RecordConfig) -> RecordResult:
    """Run config.argv on the real GPU with the collector and write its measured trace."""
    reason = gpu_status()
    if reason is not None:
        raise RevatiRunError(f"{NEEDS_GPU}: {reason}; run without --real to emulate one")
    try:
        collector = ensure_collector()
    except BuildError as e:
        raise RevatiRunError(f"record --real: cannot build the CUPTI collector: {e}") from e
    run_dir = Path(tempfile.mkdtemp(prefix="revati-real-"))
    gpu = gpu_name()
    model = catalog_id(gpu, config.device)
    info = RunInfo(
        source=schema.SOURCE_REAL,
        argv=list(config.argv),
        device=model,
        predictor=None,
        config={**config.to_json(), "gpu": gpu},
    )
    program = shutil.which(config.argv[0])
    check_output(config.output, force=config.overwrite, inputs=[program] if program else [])
    output = OutputFile(config.output, "recording")  # written beside, renamed at the end
    output.acquire()
    try:
        writer = TraceWriter(output.tmp, info, shown_as=config.output)
    except BaseException:
        output.discard()
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    ran = False
    try:
        env = dict(os.environ, REVATI_MEASURED_DIR=str(run_dir))
        env["LD_PRELOAD"] = ":".join(p for p in (str(collector), env.get("LD_PRELOAD")) if p)
        wall0 = time.monotonic_ns()
        try:
            child = subprocess.run(list(config.argv), env=env)
            ran = True
        except OSError as e:
            raise RevatiRunError(f"{config.argv[0]}: cannot run: {e.strerror}") from e
        wall = time.monotonic_ns() - wall0
        cause = ExitCause.from_returncode(child.returncode)
        files = sorted(run_dir.glob("measured-*.bin"))
        trace = write_measured_trace(files, writer, wall, cause.status, gpu, model, cause)
        return RecordResult(
            cause.status, trace.end_ns, wall, trace.kernels, trace.syncs, 0, config.output, cause
        )
    finally:
        writer.close()
        shutil.rmtree(run_dir, ignore_errors=True)
        output.finish(keep=ran)  # once the program ran, its trace is kept
