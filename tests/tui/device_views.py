"""Traces made from a recording's device tables, for snapshots that do not change between
recordings: the pid is fixed, wall clock, host and run identity are left out, and the caller
decides the times (re-based, or laid out anew)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from revati.recorder.reader import TraceReader
from revati.recorder.writer import RunInfo, TraceWriter

PID = 4242
BASE_NS = 1_000_000
KERNEL_COLUMNS = (
    "kernel_id, device_id, stream_id, duration_source, model, name, "
    "grid_x, grid_y, grid_z, block_x, block_y, block_z, shared_mem"
)
Row = dict[str, Any]


def rows(reader: TraceReader, sql: str, columns: str) -> list[Row]:
    """`sql`'s rows as dicts keyed by the comma-separated `columns` (in select order)."""
    names = [c.strip() for c in columns.split(",")]
    return [dict(zip(names, row, strict=True)) for row in reader.sql(sql)]


def device_tables(reader: TraceReader, stream_ids: set[int] | None = None) -> dict[str, list[Row]]:
    """The devices and streams (all, or those of `stream_ids`), streams owned by PID."""
    dev_cols = "device_id, ordinal, name, model, memory_bytes"
    streams = [
        {"stream_id": sid, "pid": PID, "device_id": dev, "handle": 0, "is_default": dflt,
         "name": name}
        for sid, dev, dflt, name in reader.sql(
            "SELECT stream_id, device_id, is_default, name FROM streams ORDER BY stream_id"
        )
        if stream_ids is None or sid in stream_ids
    ]  # fmt: skip
    return {
        "devices": rows(reader, f"SELECT {dev_cols} FROM devices", dev_cols),
        "streams": streams,
    }


def write_view(out: Path, argv: list[str], tables: dict[str, list[Row]]) -> Path:
    """A trace of PID running `argv` with `tables` (the processes row is added)."""
    run = RunInfo(
        argv=argv,
        cwd="/work",
        started_at=datetime(2025, 1, 1, tzinfo=UTC),
        device="h100-sxm",
        predictor="revati-predict 1 device=h100-sxm",
        host="testhost",
    )
    with TraceWriter(out, run, overwrite=True) as w:
        w.append_rows("processes", [{"pid": PID, "argv": argv, "host": "testhost"}])
        for table, table_rows in tables.items():
            w.append_rows(table, table_rows)
    return out
