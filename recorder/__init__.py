"""revati.recorder: the trace format (schema), its writer and reader, importers and exporters.

Depends only on duckdb and numpy (and `revati.errors`); everything else in revati reads and
writes traces through this package.
"""

from revati.recorder.schema import SCHEMA_VERSION
from revati.recorder.writer import RunInfo, TraceWriter

__all__ = ["SCHEMA_VERSION", "RunInfo", "TraceWriter"]
