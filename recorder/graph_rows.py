"""Graph replays stored as one row each (schema version 3 and later), and turning them back
into rows.

A trace stores a replayed CUDA graph's kernels, copies and memsets once per template
(`graph_kernels`, `graph_copies`, `graph_memsets`) and each replay as one row (`graph_replays`);
the views `kernels`, `kernel_features`, `copies` and `memsets` add the replays' rows to the rows
stored one by one (`kernel_rows`, `kernel_feature_rows`, `copy_rows`, `memset_rows`). Everything
that reads device work reads the views and sees all of it. A tool that rewrites device work row
by row (`revati replay` moves each kernel to its re-simulated time) first expands the replays
into stored rows here.
"""

from __future__ import annotations

import duckdb
from revati.recorder import schema


def stored_table(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """The table that holds `table`'s rows in this trace: `kernel_rows` for `kernels` since
    version 3 (`copy_rows`, `memset_rows` for `copies`, `memsets` since version 4), the table
    itself in an older trace."""
    stored = schema.stored_table(table)
    if stored == table:
        return table
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [stored]
    ).fetchall()
    return stored if found[0][0] else table


def expand_graph_replays(con: duckdb.DuckDBPyConnection) -> int:
    """Store every graph replay's kernels (and features), copies and memsets as rows and remove
    the replays and their templates; the views show the same rows before and after. Returns the
    kernels added (0 for a version 2 trace, which stores every kernel as a row)."""
    if stored_table(con, "kernels") == "kernels":
        return 0
    [(added,)] = con.execute(f"SELECT count(*) FROM ({schema.replayed_sql('kernels')})").fetchall()
    for view in schema.STORED_AS:
        stored = stored_table(con, view)
        if stored != view:  # a view in this trace (a version 3 trace has plain copies, memsets)
            con.execute(f"INSERT INTO {stored} {schema.replayed_sql(view)}")
    for table in schema.GRAPH_TABLES:
        if table in _tables(con):
            con.execute(f"DELETE FROM {table}")
    return int(added)


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
