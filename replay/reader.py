"""What a replay reads from a trace: device ops, syncs and barriers as columns for `resim`.

Ops are numbered by (table, id): kernels, then copies, then memsets, each by id. An op with no
launching call (a graph node) belongs to the thread of its process that entered a call last
before its launch; one with no stream gets a stream of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from revati.recorder.reader import TraceReader
from revati.replay.resim import Barriers, DeviceOps, Syncs

OP_TABLES = (("kernels", "kernel_id"), ("copies", "copy_id"), ("memsets", "memset_id"))
# An op's name as the alignment spells it (replay/alignment.py).
OP_NAMES = ("name", "'memcpy ' || coalesce(kind, '?')", "'memset'")

_OPS = " UNION ALL ".join(
    f"""SELECT {i} AS tbl, {key} AS id, stream_id, call_id, coalesce(launch_ns, start_ns) AS launch,
               start_ns, end_ns, {label} AS name FROM {table}
        WHERE start_ns IS NOT NULL AND end_ns IS NOT NULL"""
    for i, ((table, key), label) in enumerate(zip(OP_TABLES, OP_NAMES, strict=True))
)

_CREATE_OPS = f"""
CREATE OR REPLACE TEMP TABLE replay_ops AS
WITH o AS ({_OPS}),
calls AS (SELECT c.call_id, c.thread_id FROM api_calls c),
entered AS (SELECT t.pid, c.thread_id, c.enter_ns FROM api_calls c JOIN threads t USING (thread_id))
SELECT (row_number() OVER (ORDER BY o.tbl, o.id) - 1)::BIGINT AS idx, o.tbl, o.id,
       coalesce(o.stream_id, -1 - (o.tbl::BIGINT << 40) - o.id) AS stream,
       coalesce(s.pid, -1) AS pid, o.call_id, o.launch, o.start_ns, o.end_ns,
       coalesce(c.thread_id, e.thread_id, -1) AS thread, o.name
FROM o
LEFT JOIN streams s USING (stream_id)
LEFT JOIN calls c USING (call_id)
ASOF LEFT JOIN entered e ON e.pid = s.pid AND o.launch >= e.enter_ns
"""

_SYNCS = """
WITH y AS (
    SELECT *, CASE WHEN kind = 'stream' THEN TRY_CAST(
        regexp_extract(target, '^stream (\\d+)$', 1) AS BIGINT) END AS target_stream
    FROM syncs WHERE blocked_ns IS NOT NULL AND resumed_ns IS NOT NULL
),
copies AS (SELECT call_id, idx FROM replay_ops WHERE tbl = 1 AND call_id IS NOT NULL)
SELECT y.sync_id, y.call_id, y.thread_id, coalesce(t.pid, -1) AS pid, y.blocked_ns,
       coalesce(y.deadline_ns, -1) AS deadline, y.resumed_ns,
       coalesce(tgt.idx, -1) AS target_op,
       CASE WHEN y.kind = 'copy' THEN coalesce(cp.idx, -1) ELSE -1 END AS copy_op,
       coalesce(y.kind = 'device', false) AS device_wide
FROM y
LEFT JOIN threads t USING (thread_id)
ASOF LEFT JOIN replay_ops tgt ON tgt.stream = y.target_stream AND y.blocked_ns >= tgt.launch
LEFT JOIN copies cp ON cp.call_id = y.call_id
ORDER BY y.sync_id
"""

_BARRIERS = """
SELECT barrier_id, release_ns, end_ns FROM barriers
WHERE release_ns IS NOT NULL AND end_ns IS NOT NULL ORDER BY barrier_id
"""

_ARRIVALS = """
SELECT a.barrier_id, o.idx FROM barrier_arrivals a JOIN replay_ops o
    ON o.tbl = 0 AND o.id = a.kernel_id
"""


@dataclass
class ReplayInput:
    """A trace's schedule as columns, plus the ids that map results back to rows."""

    ops: DeviceOps
    op_table: np.ndarray  # 0 kernels, 1 copies, 2 memsets
    op_id: np.ndarray
    op_name: np.ndarray  # object
    syncs: Syncs
    sync_id: np.ndarray
    sync_call: np.ndarray  # -1 if none
    barriers: Barriers
    barrier_id: np.ndarray


def _i64(values: np.ndarray, fill: int = -1) -> np.ndarray:
    if np.ma.isMaskedArray(values):
        values = np.ma.filled(values, fill)
    return np.asarray(values, dtype=np.int64)


def read_schedule(reader: TraceReader) -> ReplayInput:
    """The device ops, syncs and barriers of `reader`'s trace."""
    con = reader.con
    con.execute(_CREATE_OPS)
    o = con.execute("SELECT * FROM replay_ops ORDER BY idx").fetchnumpy()
    y = con.execute(_SYNCS).fetchnumpy()
    b = con.execute(_BARRIERS).fetchnumpy()
    a = con.execute(_ARRIVALS).fetchnumpy()
    barrier_ids = _i64(b["barrier_id"])
    barrier = np.full(len(o["idx"]), -1, dtype=np.int64)
    if len(a["idx"]):
        pos = np.searchsorted(barrier_ids, _i64(a["barrier_id"]))
        ok = (pos < len(barrier_ids)) & (
            barrier_ids[np.minimum(pos, max(len(barrier_ids) - 1, 0))] == _i64(a["barrier_id"])
        )
        barrier[_i64(a["idx"])[ok]] = pos[ok]
    ops = DeviceOps(
        stream=_i64(o["stream"]),
        pid=_i64(o["pid"]),
        thread=_i64(o["thread"]),
        launch=_i64(o["launch"]),
        start=_i64(o["start_ns"]),
        end=_i64(o["end_ns"]),
        barrier=barrier,
    )
    syncs = Syncs(
        thread=_i64(y["thread_id"]),
        pid=_i64(y["pid"]),
        blocked=_i64(y["blocked_ns"]),
        deadline=_i64(y["deadline"]),
        resumed=_i64(y["resumed_ns"]),
        target_op=_i64(y["target_op"]),
        copy_op=_i64(y["copy_op"]),
        device_wide=np.asarray(y["device_wide"], dtype=bool),
    )
    return ReplayInput(
        ops,
        _i64(o["tbl"]),
        _i64(o["id"]),
        np.asarray(o["name"], dtype=object),
        syncs,
        _i64(y["sync_id"]),
        _i64(y["call_id"]),
        Barriers(_i64(b["release_ns"]), _i64(b["end_ns"])),
        barrier_ids,
    )
