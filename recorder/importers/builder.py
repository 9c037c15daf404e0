"""TraceBuilder: the rows of an imported trace, gathered in memory, then written rebased.

Importers parse their input completely before anything is written, so malformed input fails
before an output file exists. They add rows with *local* ids (0, 1, 2, ... per id kind, taken
from `TraceBuilder.next_id`) and *absolute* nanosecond times. `write_trace` then reserves real
ids through `TraceWriter.allocate_ids`, shifts every id column by the reserved base, subtracts
the earliest time of the whole import from every time column (so the trace starts at 0; the
offset is kept in `run.config`), and appends each table as one columnar batch.

Output paths (`check_output`, `atomic_output`) live in `revati.recorder.output`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from revati.recorder import schema
from revati.recorder.writer import RunInfo, TraceWriter

# Every column that holds an id, by the id kind that `allocate_ids` hands out.
ID_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "thread": (
        ("threads", "thread_id"),
        ("api_calls", "thread_id"),
        ("syncs", "thread_id"),
        ("nvtx_ranges", "thread_id"),
        ("markers", "thread_id"),
    ),
    "device": (
        ("devices", "device_id"),
        ("streams", "device_id"),
        ("kernels", "device_id"),
        ("copies", "device_id"),
        ("memsets", "device_id"),
    ),
    "stream": (
        ("streams", "stream_id"),
        ("kernels", "stream_id"),
        ("copies", "stream_id"),
        ("memsets", "stream_id"),
        ("barrier_arrivals", "stream_id"),
    ),
    "call": (
        ("api_calls", "call_id"),
        ("kernels", "call_id"),
        ("copies", "call_id"),
        ("memsets", "call_id"),
        ("syncs", "call_id"),
    ),
    "kernel": (("kernels", "kernel_id"), ("barrier_arrivals", "kernel_id")),
    "copy": (("copies", "copy_id"),),
    "memset": (("memsets", "memset_id"),),
    "sync": (("syncs", "sync_id"),),
    "barrier": (("barriers", "barrier_id"), ("barrier_arrivals", "barrier_id")),
    "range": (("nvtx_ranges", "range_id"),),
    "marker": (("markers", "marker_id"),),
}

# Every column that holds a time in nanoseconds (rebased on write).
TIME_COLUMNS: dict[str, tuple[str, ...]] = {
    "processes": ("started_ns", "ended_ns"),
    "threads": ("started_ns", "ended_ns"),
    "streams": ("created_ns",),
    "api_calls": ("enter_ns", "exit_ns"),
    "kernels": ("launch_ns", "start_ns", "end_ns"),
    "copies": ("launch_ns", "start_ns", "end_ns"),
    "memsets": ("launch_ns", "start_ns", "end_ns"),
    "syncs": ("blocked_ns", "deadline_ns", "resumed_ns"),
    "barriers": ("release_ns", "end_ns"),
    "barrier_arrivals": ("arrival_ns",),
    "nvtx_ranges": ("start_ns", "end_ns"),
    "markers": ("at_ns",),
}

# Any absolute time past this is taken as nanoseconds since the Unix epoch (year 2001+).
_EPOCH_NS_FLOOR = 978_307_200 * 10**9


@dataclass
class TraceBuilder:
    """Rows of every table as columns of Python values, plus local id counters."""

    tables: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    _ids: dict[str, int] = field(default_factory=dict)

    def next_id(self, kind: str) -> int:
        """A fresh local id of `kind` (see ID_COLUMNS)."""
        n = self._ids.get(kind, 0)
        self._ids[kind] = n + 1
        return n

    def id_count(self, kind: str) -> int:
        return self._ids.get(kind, 0)

    def add(self, table: str, **row: Any) -> None:
        """Append one row; columns not given stay NULL."""
        cols = self.tables.get(table)
        if cols is None:
            cols = self.tables[table] = {c: [] for c in schema.appendable_columns(table)}
        unknown = row.keys() - cols.keys()
        if unknown:
            raise ValueError(f"{table}: unknown columns {sorted(unknown)}")
        for name, values in cols.items():
            values.append(row.get(name))

    def rows(self, table: str) -> int:
        cols = self.tables.get(table)
        return len(next(iter(cols.values()))) if cols else 0

    def column(self, table: str, name: str) -> list[Any]:
        return self.tables.get(table, {}).get(name, [])

    def min_time(self) -> int | None:
        """The earliest time in any time column (None if there is none)."""
        lows = [
            min(v for v in self.column(t, c) if v is not None)
            for t, cs in TIME_COLUMNS.items()
            for c in cs
            if any(v is not None for v in self.column(t, c))
        ]
        return min(lows) if lows else None

    def max_time(self) -> int | None:
        highs = [
            max(v for v in self.column(t, c) if v is not None)
            for t, cs in TIME_COLUMNS.items()
            for c in cs
            if any(v is not None for v in self.column(t, c))
        ]
        return max(highs) if highs else None


def started_at_from(offset_ns: int | None) -> datetime | None:
    """Wall-clock start of an import whose earliest absolute time is `offset_ns`, if it is epoch."""
    if offset_ns is None or offset_ns < _EPOCH_NS_FLOOR:
        return None
    return datetime.fromtimestamp(offset_ns / 1e9, tz=UTC)


def write_trace(builder: TraceBuilder, path: Path, run: RunInfo) -> dict[str, int]:
    """Write `builder` as a trace at `path` (which must not exist); return rows per table."""
    offset = builder.min_time() or 0
    end = builder.max_time()
    run.config = {**run.config, "time_offset_ns": offset}
    writer = TraceWriter(path, run)
    try:
        bases = {kind: _reserve(writer, kind, builder.id_count(kind)) for kind in ID_COLUMNS}
        counts = {}
        for table, cols in builder.tables.items():
            batch = {
                name: _column_array(table, name, values, bases, offset)
                for name, values in cols.items()
            }
            writer.append(table, batch)
            counts[table] = len(next(iter(cols.values())))
        span = None if end is None else end - offset
        writer.close(virtual_end_ns=span, wall_ns=span)
    except BaseException:
        writer.close()
        raise
    return counts


def _reserve(writer: TraceWriter, kind: str, n: int) -> int:
    ids = writer.allocate_ids(kind, n)
    return int(ids[0]) if n else 0


def _column_array(
    table: str, name: str, values: list[Any], bases: dict[str, int], offset: int
) -> np.ndarray:
    shift = 0
    for kind, cols in ID_COLUMNS.items():
        if (table, name) in cols:
            shift = bases[kind]
    if name in TIME_COLUMNS.get(table, ()):
        shift -= offset
    if shift and all(v is not None for v in values):
        return np.asarray(values, dtype=np.int64) + shift
    if shift:
        values = [None if v is None else v + shift for v in values]
    if all(isinstance(v, int) for v in values):
        return np.asarray(values, dtype=np.int64)
    column = np.empty(len(values), dtype=object)  # 1-D even when the values are lists
    column[:] = values
    return column


def nesting_depths(keys: list[Any], starts: list[int], ends: list[int]) -> list[int]:
    """Depth of each interval within the intervals of the same key (thread), 0 = outermost."""
    depths = [0] * len(starts)
    order = sorted(
        range(len(starts)), key=lambda i: (keys[i] is None, str(keys[i]), starts[i], -ends[i])
    )
    stack: list[int] = []
    current_key: object = object()
    for i in order:
        if keys[i] != current_key:
            stack, current_key = [], keys[i]
        while stack and ends[stack[-1]] <= starts[i]:
            stack.pop()
        depths[i] = len(stack)
        stack.append(i)
    return depths


def number_calls(builder: TraceBuilder) -> None:
    """Fill api_calls.seq: the position of each call within its thread, by entry time."""
    calls = builder.tables.get("api_calls")
    if not calls:
        return
    threads, enters = calls["thread_id"], calls["enter_ns"]
    order = sorted(range(len(threads)), key=lambda i: (threads[i], enters[i], i))
    seq = [0] * len(order)
    previous, n = None, 0
    for i in order:
        n = n + 1 if threads[i] == previous else 0
        previous = threads[i]
        seq[i] = n
    calls["seq"] = seq


# Marketing names of GPUs as profilers report them -> device catalog ids.
_CATALOG_IDS = (
    ("H100 PCIe", "h100-pcie"),
    ("H100", "h100-sxm"),
    ("H200", "h200"),
    ("A100-SXM4-80GB", "a100-sxm-80gb"),
    ("A100 80GB", "a100-sxm-80gb"),
    ("L40S", "l40s"),
    ("B200", "b200"),
)


def catalog_id(device_name: str | None) -> str | None:
    """The device catalog id for a GPU name, or None if the catalog has no such device."""
    if not device_name:
        return None
    for fragment, device_id in _CATALOG_IDS:
        if fragment in device_name:
            return device_id
    return None


# ---- collectives -----------------------------------------------------------------------------

_NCCL_KERNEL = re.compile(r"^(?:void\s+)?nccl(?:Dev)?Kernel_([A-Za-z0-9]+)")


def collective_kind(kernel_name: str) -> str | None:
    """'allreduce', 'sendrecv', ... for an NCCL kernel name, None for any other kernel."""
    m = _NCCL_KERNEL.match(kernel_name or "")
    return m.group(1).lower() if m else None


Participant = tuple[int | None, int]  # (rank, pid) of the process that ran a kernel
_Match = tuple[str, str | None, list[tuple[Participant, int]]]


def add_barriers(
    builder: TraceBuilder,
    participants: list[Participant],
    communicators: list[str | None] | None = None,
) -> int:
    """Match the k-th collective of each kind across participants into barriers.

    `participants[i]` is the (rank, pid) that ran kernel row i; `communicators[i]`, where known,
    its process group, and then only collectives of the same group are matched. Matching happens
    only when two or more participants ran NCCL kernels; arrival = kernel start there, release =
    the last arrival, end = the last kernel end. Returns how many barriers were added.
    """
    starts = builder.column("kernels", "start_ns")
    ends = builder.column("kernels", "end_ns")
    sizes = builder.column("kernels", "bytes")
    for kind, communicator, arrivals in _match_collectives(builder, participants, communicators):
        barrier_id = builder.next_id("barrier")
        known_sizes = [sizes[r] for _, r in arrivals if sizes[r] is not None]
        builder.add(
            "barriers",
            barrier_id=barrier_id,
            collective=kind,
            communicator=communicator,
            bytes=max(known_sizes) if known_sizes else None,
            world_size=len(arrivals),
            release_ns=max(starts[r] for _, r in arrivals),
            end_ns=max(ends[r] for _, r in arrivals),
            model=schema.DURATION_MEASURED,
        )
        for (rank, pid), row in arrivals:
            builder.add(
                "barrier_arrivals",
                barrier_id=barrier_id,
                rank=rank,
                pid=pid,
                stream_id=builder.column("kernels", "stream_id")[row],
                kernel_id=builder.column("kernels", "kernel_id")[row],
                arrival_ns=starts[row],
            )
    return builder.rows("barriers")


def _match_collectives(
    builder: TraceBuilder,
    participants: list[Participant],
    communicators: list[str | None] | None,
) -> list[_Match]:
    """(kind, communicator, [(participant, kernel row)]) per barrier, ordered by release."""
    starts = builder.column("kernels", "start_ns")
    groups: dict[tuple[str, str | None], dict[Participant, list[int]]] = {}
    for row, name in enumerate(builder.column("kernels", "name")):
        kind = collective_kind(name)
        if kind is not None:
            key = (kind, communicators[row] if communicators else None)
            groups.setdefault(key, {}).setdefault(participants[row], []).append(row)
    if len({p for rows_of in groups.values() for p in rows_of}) < 2:
        return []
    matched: list[_Match] = []
    for (kind, communicator), rows_of in groups.items():
        for rows in rows_of.values():
            rows.sort(key=lambda r: starts[r])
        for k in range(max(len(rows) for rows in rows_of.values())):
            arrivals = [(p, rows[k]) for p, rows in rows_of.items() if len(rows) > k]
            if len(arrivals) >= 2:
                matched.append((kind, communicator, arrivals))
    matched.sort(key=lambda m: max(starts[r] for _, r in m[2]))
    return matched


@dataclass(frozen=True)
class ImportSummary:
    """What an import wrote: the output file and the rows per table."""

    output: Path
    source_format: str
    inputs: tuple[str, ...]
    counts: dict[str, int]
    ranks: tuple[int | None, ...]
    not_imported: Mapping[str, int] = field(default_factory=dict)  # host-only, by category
    malformed: Mapping[str, int] = field(default_factory=dict)  # unreadable rows, by reason

    def line(self) -> str:
        c = self.counts
        if any(r is not None for r in self.ranks):
            who = "ranks " + ", ".join("-" if r is None else str(r) for r in self.ranks)
        else:
            who = f"{c.get('processes', 0)} process(es), no rank information"
        return (
            f"imported {len(self.inputs)} {self.source_format} file(s) ({who}) into "
            f"{self.output}: {c.get('kernels', 0)} kernels, {c.get('copies', 0)} copies, "
            f"{c.get('memsets', 0)} memsets, {c.get('api_calls', 0)} API calls, "
            f"{c.get('nvtx_ranges', 0)} NVTX ranges, {c.get('barriers', 0)} barriers"
            + _skipped_note(self.not_imported, self.malformed)
        )


def _skipped_note(not_imported: Mapping[str, int], malformed: Mapping[str, int]) -> str:
    """'; not imported: 479 host-only events (cpu_op 300, ...); skipped 3 malformed events (...)'"""
    host = {k: v for k, v in not_imported.items() if k != "metadata" and v}
    note = ""
    if host:
        note += f"; not imported: {sum(host.values()):,} host-only events ({count_list(host)})"
    if malformed:
        note += f"; skipped {sum(malformed.values()):,} malformed events ({count_list(malformed)})"
    return note


def count_list(counts: Mapping[str, int], most: int = 4) -> str:
    """ "kernel without device/stream 3, call without pid/tid 1" (the most frequent first)."""
    top = sorted(counts.items(), key=lambda kv: -kv[1])
    text = ", ".join(f"{k} {v:,}" for k, v in top[:most])
    return text + (f", {len(top) - most} more kinds" if len(top) > most else "")
