"""revati.recorder: the trace format (schema), its writer and reader, importers and exporters.

Depends only on duckdb and numpy (and `revati.errors`); everything else in revati reads and
writes traces through this package. The names below are imported on first use, so that a light
module of the package (`output`, `schema`) comes without DuckDB.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from revati.recorder.schema import SCHEMA_VERSION
    from revati.recorder.writer import RunInfo, TraceWriter

_MODULE_OF = {
    "SCHEMA_VERSION": "revati.recorder.schema",
    "RunInfo": "revati.recorder.writer",
    "TraceWriter": "revati.recorder.writer",
}

__all__ = ["SCHEMA_VERSION", "RunInfo", "TraceWriter"]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'revati.recorder' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
