"""The global event order: one derived table that puts every event of a trace in one sequence.

`event_order` holds one row per event (api call, kernel, copy, memset, sync, jump, barrier, NVTX
range, marker), sorted by `(start_ns, kind order, ref_id)`; `seq` is the row's position (its
rowid). The view `events` joins in the group columns (kind, track, pid, rank, name). Events
that share kind, track, process and name form a *group* (`event_groups`); the reader keeps one
sorted seq array per group, which makes filtered next/previous a binary search.

The writer builds both tables when it closes a trace. A trace without them (a crashed run, an
imported file written by something else) gets the same tables as TEMP tables in the reader's
read-only connection, so the file itself is never modified.
"""

from __future__ import annotations

import duckdb
import numpy as np
from revati.recorder import schema

# Tie-break order for events that start at the same virtual time: a jump moves the clock first,
# a barrier releases, markers and NVTX ranges open around the calls they annotate, a call
# enters before the sync it blocks in, and device work starts last.
KIND_ORDER = ("jump", "barrier", "marker", "nvtx", "api_call", "sync", "kernel", "copy", "memset")
KIND_CODE = {kind: code for code, kind in enumerate(KIND_ORDER)}

# Meta key that marks a complete event_order (its value is the number of events).
META_KEY = "event_order_rows"

# One SELECT per event table: ref_id, track kind (0 thread, 1 stream, NULL none), track ref
# (thread_id / stream_id), pid (only where the row itself names it), start_ns, end_ns, name.
_SOURCES = {
    "api_call": "SELECT call_id, 0, thread_id, NULL, enter_ns, exit_ns, name FROM api_calls",
    "kernel": "SELECT kernel_id, 1, stream_id, NULL, start_ns, end_ns, name FROM kernels",
    "copy": """SELECT copy_id, 1, stream_id, NULL, start_ns, end_ns,
                      'memcpy ' || coalesce(kind, '?') FROM copies""",
    "memset": "SELECT memset_id, 1, stream_id, NULL, start_ns, end_ns, 'memset' FROM memsets",
    "sync": """SELECT sync_id, 0, thread_id, NULL, blocked_ns, resumed_ns,
                      'sync ' || coalesce(kind, '?') FROM syncs""",
    "jump": """SELECT jump_id, NULL, NULL, NULL, from_ns, to_ns,
                      'jump' || coalesce(' (' || cause_kind || ')', '') FROM jumps""",
    "barrier": """SELECT b.barrier_id, NULL, NULL, NULL, coalesce(a.first_ns, b.release_ns),
                         b.end_ns, coalesce(b.collective, 'barrier')
                  FROM barriers b LEFT JOIN (SELECT barrier_id, min(arrival_ns) AS first_ns
                                             FROM barrier_arrivals GROUP BY 1) a USING (barrier_id)""",
    "nvtx": "SELECT range_id, 0, thread_id, NULL, start_ns, end_ns, name FROM nvtx_ranges",
    "marker": """SELECT marker_id, CASE WHEN thread_id IS NULL THEN NULL ELSE 0 END, thread_id,
                        pid, at_ns, at_ns, kind || coalesce(': ' || name, '') FROM markers""",
}


def _union_sql() -> str:
    return "\nUNION ALL\n".join(
        f"SELECT {KIND_CODE[kind]}::TINYINT, * FROM ({sql})" for kind, sql in _SOURCES.items()
    )


def _source_sql(view: str) -> str:
    """A TEMP view of every event with its group key columns (never NULL: -1 stands for none,
    so the join to the groups is a plain hash join)."""
    return f"""CREATE OR REPLACE TEMP VIEW {view} AS
        SELECT kind_code, ref_id, coalesce(track_kind, -1)::TINYINT AS track_kind,
               coalesce(track_ref, -1)::BIGINT AS track_ref, coalesce(pid, -1)::BIGINT AS pid,
               coalesce(start_ns, end_ns) AS start_ns,
               greatest(coalesce(end_ns, start_ns), coalesce(start_ns, end_ns)) AS end_ns,
               coalesce(name, '') AS name
        FROM ({_union_sql()})
             AS u(kind_code, ref_id, track_kind, track_ref, pid, start_ns, end_ns, name)
        WHERE coalesce(start_ns, end_ns) IS NOT NULL"""


def _groups_sql(source: str, groups_table: str, create: str) -> str:
    kinds = ", ".join(f"({code}, '{kind}')" for kind, code in KIND_CODE.items())
    return f"""{create} {groups_table} AS
        WITH g AS (SELECT kind_code, track_kind, track_ref, pid, name, count(*) AS events
                   FROM {source} GROUP BY ALL),
             k(kind_code, kind) AS (VALUES {kinds})
        SELECT (row_number() OVER (ORDER BY g.kind_code, g.track_kind, g.track_ref, g.pid,
                                   g.name) - 1)::INTEGER AS grp,
               k.kind, g.kind_code,
               CASE g.track_kind WHEN 0 THEN 'thread:' || g.track_ref
                                 WHEN 1 THEN 'stream:' || g.track_ref END AS track_id,
               coalesce(CASE g.track_kind WHEN 0 THEN t.pid WHEN 1 THEN s.pid END,
                        nullif(g.pid, -1)) AS pid,
               p.rank, g.name, g.events, g.track_kind, g.track_ref, g.pid AS key_pid
        FROM g JOIN k USING (kind_code)
        LEFT JOIN threads t ON g.track_kind = 0 AND t.thread_id = g.track_ref
        LEFT JOIN streams s ON g.track_kind = 1 AND s.stream_id = g.track_ref
        LEFT JOIN processes p
          ON p.pid = coalesce(CASE g.track_kind WHEN 0 THEN t.pid WHEN 1 THEN s.pid END,
                              nullif(g.pid, -1))"""


def _grouped_sql(source: str, groups_table: str) -> str:
    """Every event as (grp, kind_code, ref_id, start_ns, end_ns), unordered."""
    return f"""SELECT g.grp, s.kind_code, s.ref_id, s.start_ns, s.end_ns
        FROM {source} s JOIN {groups_table} g
          ON g.kind_code = s.kind_code AND g.track_kind = s.track_kind
         AND g.track_ref = s.track_ref AND g.key_pid = s.pid AND g.name = s.name"""


def build_sql(order_table: str, groups_table: str, *, temp: bool) -> list[str]:
    """Statements that create `order_table` and `groups_table` from the event tables; the
    order table is written already sorted: `seq` is the row position (rowid)."""
    create = "CREATE OR REPLACE TEMP TABLE" if temp else "CREATE OR REPLACE TABLE"
    source = f"{order_table}_source"
    return [
        _source_sql(source),
        _groups_sql(source, groups_table, create),
        f"""{create} {order_table} AS {_grouped_sql(source, groups_table)}
        ORDER BY s.start_ns, s.kind_code, s.ref_id""",
        f"DROP VIEW {source}",
    ]


def extent(con: duckdb.DuckDBPyConnection) -> tuple[int, int, int]:
    """(events, first start, last end) of the order without building it; (0, 0, 0) if empty."""
    con.execute(_source_sql("event_extent_source"))
    [(count, first, last)] = con.execute(
        "SELECT count(*), min(start_ns), max(end_ns) FROM event_extent_source"
    ).fetchall()
    return (int(count), int(first), int(last)) if count else (0, 0, 0)


def build_in_memory(
    con: duckdb.DuckDBPyConnection, groups_table: str, events_view: str
) -> dict[str, np.ndarray]:
    """The order computed here rather than stored (a trace closed without it): a TEMP table of
    the groups, the events' columns sorted in numpy (about 3x cheaper than DuckDB writing the
    sorted table), and a TEMP view `events_view` that numbers the events for SQL users."""
    source = f"{groups_table}_source"
    con.execute(_source_sql(source))
    con.execute(_groups_sql(source, groups_table, "CREATE OR REPLACE TEMP TABLE"))
    cols = con.execute(_grouped_sql(source, groups_table)).fetchnumpy()
    out = {k: np.asarray(v) for k, v in cols.items()}
    order = np.lexsort((out["ref_id"], out["kind_code"], out["start_ns"]))
    con.execute(f"""CREATE OR REPLACE TEMP VIEW {events_view} AS
        SELECT (row_number() OVER (ORDER BY o.start_ns, o.kind_code, o.ref_id) - 1) AS seq,
               g.kind, o.ref_id, g.track_id, g.pid, g.rank, o.start_ns, o.end_ns, g.name, o.grp
        FROM ({_grouped_sql(source, groups_table)}) o JOIN {groups_table} g USING (grp)""")
    return {k: v[order] for k, v in out.items()}


def view_sql(order_table: str, groups_table: str, view: str, *, temp: bool) -> str:
    """A view with one readable row per event: seq, kind, ref_id, track_id, pid, rank, times,
    name (what `event_order` means, for SQL users)."""
    create = "CREATE OR REPLACE TEMP VIEW" if temp else "CREATE OR REPLACE VIEW"
    return f"""{create} {view} AS
        SELECT o.rowid AS seq, g.kind, o.ref_id, g.track_id, g.pid, g.rank, o.start_ns,
               o.end_ns, g.name, o.grp
        FROM {order_table} o JOIN {groups_table} g USING (grp)"""


def write_event_order(con: duckdb.DuckDBPyConnection) -> int:
    """Build the persistent event_order/event_groups tables in a writable trace; returns rows."""
    con.execute("BEGIN")
    for sql in build_sql("event_order", "event_groups", temp=False):
        con.execute(sql)
    con.execute(view_sql("event_order", "event_groups", "events", temp=False))
    (rows,) = con.execute("SELECT count(*) FROM event_order").fetchone()  # type: ignore[misc]
    con.execute(f"INSERT OR REPLACE INTO {schema.META_TABLE} VALUES (?, ?)", [META_KEY, str(rows)])
    con.execute("COMMIT")
    return int(rows)


def has_event_order(con: duckdb.DuckDBPyConnection) -> bool:
    """True if the trace holds a complete, persisted event_order."""
    row = con.execute(f"SELECT value FROM {schema.META_TABLE} WHERE key = ?", [META_KEY]).fetchone()
    return row is not None


def stored_rows(con: duckdb.DuckDBPyConnection) -> int | None:
    """The number of events the writer recorded in the meta table when it built event_order."""
    row = con.execute(f"SELECT value FROM {schema.META_TABLE} WHERE key = ?", [META_KEY]).fetchone()
    try:
        return int(row[0]) if row is not None else None
    except ValueError:
        return None
