"""The global event order: one derived table that puts every event of a trace in one sequence.

`event_order` holds one row per event (api call, kernel, copy, memset, sync, jump, barrier, NVTX
range, marker), sorted by `(start_ns, kind order, ref_id)`; `seq` is the row's position. Events
that share kind, track, process and name form a *group* (`event_groups`); the reader keeps one
sorted seq array per group, which makes filtered next/previous a binary search.

The writer builds both tables when it closes a trace. A trace without them (a crashed run, an
imported file written by something else) gets the same tables as TEMP tables in the reader's
read-only connection, so the file itself is never modified.
"""

from __future__ import annotations

import duckdb
from revati.recorder import schema

# Tie-break order for events that start at the same virtual time: a jump moves the clock first,
# a barrier releases, markers and NVTX ranges open around the calls they annotate, a call
# enters before the sync it blocks in, and device work starts last.
KIND_ORDER = ("jump", "barrier", "marker", "nvtx", "api_call", "sync", "kernel", "copy", "memset")
KIND_CODE = {kind: code for code, kind in enumerate(KIND_ORDER)}

# Meta key that marks a complete event_order (its value is the number of events).
META_KEY = "event_order_rows"

# One SELECT per event table; columns: kind, ref_id, track_id, pid, start_ns, end_ns, name.
_SOURCES = {
    "api_call": """
        SELECT a.call_id, 'thread:' || a.thread_id, t.pid, a.enter_ns, a.exit_ns, a.name
        FROM api_calls a LEFT JOIN threads t USING (thread_id)""",
    "kernel": """
        SELECT k.kernel_id, 'stream:' || k.stream_id, s.pid, k.start_ns, k.end_ns, k.name
        FROM kernels k LEFT JOIN streams s USING (stream_id)""",
    "copy": """
        SELECT c.copy_id, 'stream:' || c.stream_id, s.pid, c.start_ns, c.end_ns,
               'memcpy ' || coalesce(c.kind, '?')
        FROM copies c LEFT JOIN streams s USING (stream_id)""",
    "memset": """
        SELECT m.memset_id, 'stream:' || m.stream_id, s.pid, m.start_ns, m.end_ns, 'memset'
        FROM memsets m LEFT JOIN streams s USING (stream_id)""",
    "sync": """
        SELECT y.sync_id, 'thread:' || y.thread_id, t.pid, y.blocked_ns, y.resumed_ns,
               'sync ' || coalesce(y.kind, '?') || coalesce(' ' || y.target, '')
        FROM syncs y LEFT JOIN threads t USING (thread_id)""",
    "jump": """
        SELECT j.jump_id, NULL, NULL, j.from_ns, j.to_ns,
               'jump' || coalesce(' (' || j.cause_kind || ')', '')
        FROM jumps j""",
    "barrier": """
        SELECT b.barrier_id, NULL, NULL, coalesce(a.first_ns, b.release_ns), b.end_ns,
               coalesce(b.collective, 'barrier')
        FROM barriers b LEFT JOIN (
            SELECT barrier_id, min(arrival_ns) AS first_ns FROM barrier_arrivals GROUP BY 1
        ) a USING (barrier_id)""",
    "nvtx": """
        SELECT r.range_id, 'thread:' || r.thread_id, t.pid, r.start_ns, r.end_ns, r.name
        FROM nvtx_ranges r LEFT JOIN threads t USING (thread_id)""",
    "marker": """
        SELECT m.marker_id, 'thread:' || m.thread_id, m.pid, m.at_ns, m.at_ns,
               m.kind || coalesce(': ' || m.name, '')
        FROM markers m""",
}


def _union_sql() -> str:
    parts = [
        f"SELECT {KIND_CODE[kind]}::TINYINT AS kind_code, '{kind}' AS kind, * FROM ({sql})"
        for kind, sql in _SOURCES.items()
    ]
    return "\nUNION ALL\n".join(parts)


def build_sql(order_table: str, groups_table: str, *, temp: bool) -> list[str]:
    """Statements that create `order_table` and `groups_table` from the event tables."""
    create = "CREATE OR REPLACE TEMP TABLE" if temp else "CREATE OR REPLACE TABLE"
    staging = f"{order_table}_staging"
    return [
        f"""CREATE OR REPLACE TEMP TABLE {staging} AS
        SELECT kind_code, kind, ref_id, track_id, e.pid, p.rank,
               coalesce(start_ns, end_ns) AS start_ns,
               greatest(coalesce(end_ns, start_ns), coalesce(start_ns, end_ns)) AS end_ns,
               coalesce(name, '') AS name
        FROM (SELECT * FROM ({_union_sql()})
              AS u(kind_code, kind, ref_id, track_id, pid, start_ns, end_ns, name)) e
        LEFT JOIN processes p ON p.pid = e.pid
        WHERE coalesce(start_ns, end_ns) IS NOT NULL""",
        f"""{create} {groups_table} AS
        SELECT (row_number() OVER (ORDER BY kind_code, track_id, pid, name) - 1)::INTEGER AS grp,
               kind, track_id, pid, rank, name, n AS events
        FROM (SELECT kind_code, kind, track_id, pid, any_value(rank) AS rank, name, count(*) AS n
              FROM {staging} GROUP BY ALL)""",
        f"""{create} {order_table} AS
        SELECT (row_number() OVER (ORDER BY s.start_ns, s.kind_code, s.ref_id) - 1)::BIGINT AS seq,
               s.kind, s.ref_id, s.track_id, s.pid, s.rank, s.start_ns, s.end_ns, s.name, g.grp
        FROM {staging} s JOIN {groups_table} g
          ON g.kind = s.kind AND g.name = s.name
         AND g.track_id IS NOT DISTINCT FROM s.track_id AND g.pid IS NOT DISTINCT FROM s.pid
        ORDER BY seq""",
        f"DROP TABLE {staging}",
    ]


def write_event_order(con: duckdb.DuckDBPyConnection) -> int:
    """Build the persistent event_order/event_groups tables in a writable trace; returns rows."""
    con.execute("BEGIN")
    for sql in build_sql("event_order", "event_groups", temp=False):
        con.execute(sql)
    (rows,) = con.execute("SELECT count(*) FROM event_order").fetchone()  # type: ignore[misc]
    con.execute(f"INSERT OR REPLACE INTO {schema.META_TABLE} VALUES (?, ?)", [META_KEY, str(rows)])
    con.execute("COMMIT")
    return int(rows)


def has_event_order(con: duckdb.DuckDBPyConnection) -> bool:
    """True if the trace holds a complete, persisted event_order."""
    row = con.execute(f"SELECT value FROM {schema.META_TABLE} WHERE key = ?", [META_KEY]).fetchone()
    return row is not None
