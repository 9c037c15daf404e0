"""The timeline overview: a coarse picture of every track, written when a trace is closed.

The whole run [t_min, t_max] is cut into `BUCKETS` equal buckets. For every track and layer (a
thread's API calls, blocked periods, NVTX ranges and markers; a stream's device operations) the
table `timeline_overview` holds, per bucket that some event touches, the group (`event_groups.grp`)
of the longest event touching it. The TUI draws its first frame from this table (a few hundred
thousand rows at most, read in one scan) while it loads the full event index in a worker.

It is derived data: a trace without it (older builds, crashed runs) opens the same, only without
the early overview frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
from revati.recorder import schema

TABLE = "timeline_overview"
META_KEY = "timeline_overview"  # value: "<buckets> <t_min> <t_max>"
BUCKETS = 4096

# Event kind -> timeline layer (the same mapping the TUI uses for its lanes).
LAYER_OF_KIND = {
    "api_call": "call",
    "sync": "sync",
    "nvtx": "nvtx",
    "marker": "marker",
    "kernel": "device",
    "copy": "device",
    "memset": "device",
}


def build_sql(order_table: str, groups_table: str, t_min: int, t_max: int) -> str:
    """The statement that fills `timeline_overview` from the event order."""
    width = max(1, -(-(t_max - t_min + 1) // BUCKETS))  # ceil: the last bucket holds t_max
    layers = ", ".join(f"('{k}', '{v}')" for k, v in LAYER_OF_KIND.items())
    return f"""
        CREATE OR REPLACE TABLE {TABLE} AS
        WITH l(kind, layer) AS (VALUES {layers}),
        e AS (
            SELECT g.track_id, l.layer, o.grp, o.end_ns - o.start_ns AS dur,
                   (o.start_ns - {t_min}) // {width} AS b0,
                   (greatest(o.end_ns - 1, o.start_ns) - {t_min}) // {width} AS b1
            FROM {order_table} o JOIN {groups_table} g USING (grp) JOIN l USING (kind)
            WHERE g.track_id IS NOT NULL
        ),
        b AS (
            SELECT track_id, layer, grp, dur, b0 AS bucket FROM e WHERE b0 = b1
            UNION ALL
            SELECT track_id, layer, grp, dur, unnest(range(b0, b1 + 1)) AS bucket
            FROM e WHERE b1 > b0
        )
        SELECT track_id, layer, bucket::SMALLINT AS bucket, arg_max(grp, dur) AS grp
        FROM b GROUP BY ALL ORDER BY track_id, layer, bucket"""


def write_overview(con: duckdb.DuckDBPyConnection, order_table: str, groups_table: str) -> None:
    """Build the overview in a writable trace (inside the caller's transaction or not)."""
    row = con.execute(f"SELECT min(start_ns), max(end_ns) FROM {order_table}").fetchone()
    if row is None or row[0] is None:
        return
    t_min, t_max = int(row[0]), int(row[1])
    con.execute(build_sql(order_table, groups_table, t_min, t_max))
    con.execute(
        f"INSERT OR REPLACE INTO {schema.META_TABLE} VALUES (?, ?)",
        [META_KEY, f"{BUCKETS} {t_min} {t_max}"],
    )


@dataclass
class Overview:
    """`layers[(track_id, layer)]` is one group id per bucket (-1: nothing there)."""

    t_min: int
    t_max: int
    buckets: int
    layers: dict[tuple[str, str], np.ndarray]
    group_kind: list[str]
    group_name: list[str]

    def bucket_of(self, t: np.ndarray) -> np.ndarray:
        width = max(1, -(-(self.t_max - self.t_min + 1) // self.buckets))
        return (t - self.t_min) // width


def load_overview(con: duckdb.DuckDBPyConnection) -> Overview | None:
    """The overview of a trace, or None if it has none (or a stale one)."""
    try:
        row = con.execute(
            f"SELECT value FROM {schema.META_TABLE} WHERE key = ?", [META_KEY]
        ).fetchone()
        if row is None:
            return None
        buckets, t_min, t_max = (int(x) for x in str(row[0]).split())
        cols = con.execute(
            f"SELECT track_id, layer, bucket, grp FROM {TABLE} ORDER BY track_id, layer"
        ).fetchnumpy()
        groups = con.execute("SELECT kind, name FROM event_groups ORDER BY grp").fetchall()
    except (duckdb.Error, ValueError):
        return None
    track = np.asarray(cols["track_id"], dtype=object)
    layer = np.asarray(cols["layer"], dtype=object)
    bucket = np.asarray(cols["bucket"], dtype=np.int64)
    grp = np.asarray(cols["grp"], dtype=np.int64)
    layers: dict[tuple[str, str], np.ndarray] = {}
    if len(grp):
        key_change = np.flatnonzero((track[1:] != track[:-1]) | (layer[1:] != layer[:-1])) + 1
        starts = np.concatenate([[0], key_change])
        ends = np.concatenate([key_change, [len(grp)]])
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            cells = np.full(buckets, -1, dtype=np.int64)
            cells[bucket[a:b]] = grp[a:b]
            layers[(str(track[a]), str(layer[a]))] = cells
    return Overview(
        t_min, t_max, buckets, layers, [g[0] for g in groups], [g[1] or "" for g in groups]
    )
