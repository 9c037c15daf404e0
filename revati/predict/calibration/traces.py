"""Measured records from revati traces: real-GPU recordings and imported profiler traces.

Reads the kernels, copies and memsets whose `duration_source` is 'measured'. PyTorch-profiler
JSON (.json, .json.gz) and Nsight Systems SQLite (.sqlite) files are imported first (into a
temporary revati trace) with the importers of `revati.recorder.importers`.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from revati.errors import RevatiConfigError
from revati.predict.batch import ATTENTION_COLUMNS, OpBatch
from revati.predict.calibration.measurements import Measurements
from revati.recorder.reader import open_trace

MEASURED = "duration_source = 'measured' AND end_ns > start_ns"
KERNEL_QUERY = """
SELECT name, grid_x, grid_y, grid_z, block_x, block_y, block_z, shared_mem, registers,
       gemm_m, gemm_n, gemm_k, batch, dtype, bytes, features, end_ns - start_ns
FROM kernels LEFT JOIN kernel_features USING (kernel_id)
WHERE {where} ORDER BY kernel_id
"""
COPY_QUERY = "SELECT kind, bytes, end_ns - start_ns FROM copies WHERE {where} ORDER BY copy_id"
MEMSET_QUERY = "SELECT bytes, end_ns - start_ns FROM memsets WHERE {where} ORDER BY memset_id"
KERNEL_INT_COLUMNS = (
    "grid_x", "grid_y", "grid_z", "block_x", "block_y", "block_z", "shared_mem", "registers",
    "gemm_m", "gemm_n", "gemm_k", "batch",
)  # fmt: skip
ATTENTION_FEATURES = ATTENTION_COLUMNS
IMPORTABLE = (".json", ".gz", ".sqlite")


def is_profiler_trace(path: Path) -> bool:
    return path.suffix in IMPORTABLE


def load_trace(path: Path, device: str | None = None) -> Measurements:
    """The measured records of one revati trace (or importable profiler trace) at `path`.

    `device` (a catalog id) is the GPU the data was measured on when the trace does not say;
    a trace that names another catalog device is refused. Errors name `path`, never the
    temporary trace a profiler trace is imported into."""
    if not is_profiler_trace(path):
        return _measurements(path, path, device)
    with tempfile.TemporaryDirectory(prefix="revati-calibrate-") as tmp:
        return _measurements(_import(path, Path(tmp) / "imported.duckdb"), path, device)


def _measurements(trace_path: Path, source: Path, device: str | None) -> Measurements:
    with open_trace(trace_path) as trace:
        run_device = trace.sql("SELECT device FROM run LIMIT 1")
        trace_device = (run_device[0][0] if run_device else None) or _device_model(trace)
        gpu_names = [r[0] for r in trace.sql("SELECT DISTINCT name FROM devices") if r[0]]
        batch, measured = trace_ops(trace, MEASURED)
    if trace_device and device and trace_device != device:
        raise RevatiConfigError(
            f"trace {source} was measured on {trace_device}, not {device}; calibrate per device"
        )
    dev = device or trace_device
    if not dev:
        gpu = f" (its GPU: {', '.join(gpu_names)})" if gpu_names else ""
        raise RevatiConfigError(
            f"trace {source} names no GPU of the device catalog{gpu}; pass --device with the "
            "catalog id it was measured on (see `revati devices`)"
        )
    return Measurements(batch, measured, np.full(batch.n, source.name, dtype=object), dev)


def trace_ops(trace, where: str) -> tuple[OpBatch, np.ndarray]:
    """The kernels, copies and memsets of an open trace matching `where`, as predictor records
    (kernels, then copies, then memsets, each by id) and their recorded durations."""
    parts = [
        _kernels(trace.sql(KERNEL_QUERY.format(where=where))),
        _copies(trace.sql(COPY_QUERY.format(where=where))),
        _memsets(trace.sql(MEMSET_QUERY.format(where=where))),
    ]
    return _concat(parts)


def _device_model(trace) -> str | None:
    rows = trace.sql("SELECT model FROM devices WHERE model IS NOT NULL LIMIT 1")
    return rows[0][0] if rows else None


def _import(path: Path, out: Path) -> Path:
    from revati.recorder.importers import import_kineto, import_nsys

    if path.suffix == ".sqlite":
        import_nsys(path, out)
    else:
        import_kineto([path], out)
    return out


def _kernels(rows: list[tuple]) -> tuple[dict, np.ndarray]:
    cols: dict = {"name": np.array([r[0] or "" for r in rows], dtype=object)}
    for i, col in enumerate(KERNEL_INT_COLUMNS, start=1):
        cols[col] = np.array([r[i] or 0 for r in rows], dtype=np.int64)
    cols["dtype"] = np.array([r[13] or "" for r in rows], dtype=object)
    cols["bytes"] = np.array([r[14] or 0 for r in rows], dtype=np.int64)
    feats = [_features(r[15]) for r in rows]
    for col in ATTENTION_FEATURES:
        cols[col] = np.array([int(f.get(col) or 0) for f in feats], dtype=np.int64)
    causal = [f.get("attn_causal") for f in feats]
    cols["attn_causal"] = np.array([0 if c is None else 1 if c else -1 for c in causal])
    cols["kind"] = "kernel"
    return cols, np.array([r[16] for r in rows], dtype=np.float64)


def _features(raw: object) -> dict:
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    try:
        value = json.loads(str(raw))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _copies(rows: list[tuple]) -> tuple[dict, np.ndarray]:
    cols = {
        "kind": "copy",
        "name": np.array([f"memcpy {r[0]}" for r in rows], dtype=object),
        "copy_kind": np.array([r[0] or "" for r in rows], dtype=object),
        "bytes": np.array([r[1] or 0 for r in rows], dtype=np.int64),
    }
    return cols, np.array([r[2] for r in rows], dtype=np.float64)


def _memsets(rows: list[tuple]) -> tuple[dict, np.ndarray]:
    cols = {
        "kind": "memset",
        "name": np.full(len(rows), "memset", dtype=object),
        "bytes": np.array([r[0] or 0 for r in rows], dtype=np.int64),
    }
    return cols, np.array([r[1] for r in rows], dtype=np.float64)


def _concat(parts: list[tuple[dict, np.ndarray]]) -> tuple[OpBatch, np.ndarray]:
    pieces = [
        Measurements(OpBatch.from_columns(len(m), **c), m, np.zeros(len(m), dtype=object), "")
        for c, m in parts
    ]
    data = Measurements.concat(pieces)
    return data.batch, data.measured_ns
