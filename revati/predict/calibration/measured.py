"""Measurement files: operations timed on a real GPU by `revati profile`, read by calibration.

A JSON document:

    {"format": "revati-measurements", "version": 1, "device": "h100-sxm",
     "gpu": "NVIDIA H100 80GB HBM3", "host": {...what measured it...},
     "columns": {"name": [...], "kind": [...], "gemm_m": [...], ..., "measured_ns": [...],
                 "group": [...]}}

`columns` holds one list per `OpBatch` column that is not all default (absent columns are
0 / ""), plus `measured_ns` (the median of the timed repetitions) and `group` (what a
cross-validation holds out together, e.g. one model's shapes). The "format" key comes first so
that a reader can tell the file from a PyTorch-profiler JSON by its first bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from revati.errors import RevatiConfigError
from revati.predict.batch import INT_COLUMNS, STR_COLUMNS, OpBatch
from revati.predict.calibration.measurements import Measurements

FORMAT = "revati-measurements"
VERSION = 1
_SNIFF_BYTES = 64


def is_measurements_file(path: Path) -> bool:
    """Whether `path` starts like a measurements file (cheap: reads its first bytes)."""
    try:
        with path.open("rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError:
        return False
    return b'"format"' in head and f'"{FORMAT}"'.encode() in head


def write_measurements(
    path: Path, data: Measurements, gpu: str, host: dict[str, Any] | None = None
) -> None:
    """Write `data` (measured on catalog device `data.device`, GPU named `gpu`) to `path`."""
    columns: dict[str, list] = {}
    for col in (*INT_COLUMNS, *STR_COLUMNS):
        values = getattr(data.batch, col)
        default = "kernel" if col == "kind" else ("" if col in STR_COLUMNS else 0)
        if any(v != default for v in values):
            columns[col] = [int(v) if col in INT_COLUMNS else str(v) for v in values]
    columns["measured_ns"] = [round(float(v), 1) for v in data.measured_ns]
    columns["group"] = [str(g) for g in data.group]
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "device": data.device,
        "gpu": gpu,
        "host": host or {},
        "columns": columns,
    }
    path.write_text(json.dumps(doc, separators=(",", ":")) + "\n")


def read_measurements(path: Path) -> Measurements:
    """The measured records of the measurements file at `path`."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RevatiConfigError(f"cannot read measurements file {path} ({e})") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise RevatiConfigError(f"{path} is not a {FORMAT} file")
    if doc.get("version") != VERSION:
        raise RevatiConfigError(
            f"{path}: measurements version {doc.get('version')} is not {VERSION}; "
            "measure again with this revati's `revati profile`"
        )
    cols = doc.get("columns")
    if not isinstance(cols, dict) or "measured_ns" not in cols:
        raise RevatiConfigError(f"{path}: no columns/measured_ns; the file is damaged")
    n = len(cols["measured_ns"])
    if any(not isinstance(v, list) or len(v) != n for v in cols.values()):
        raise RevatiConfigError(f"{path}: columns of different lengths; the file is damaged")
    known = {k: v for k, v in cols.items() if k in INT_COLUMNS or k in STR_COLUMNS}
    try:
        batch = OpBatch.from_columns(n, **known)
    except (TypeError, ValueError) as e:
        raise RevatiConfigError(f"{path}: malformed column ({e}); the file is damaged") from e
    group = np.array(cols.get("group") or [path.name] * n, dtype=object)
    measured = np.asarray(cols["measured_ns"], dtype=np.float64)
    return Measurements(batch, measured, group, str(doc.get("device") or ""))
