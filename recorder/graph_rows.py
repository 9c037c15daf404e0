"""Graph replays stored as one row each (schema version 3), and turning them back into rows.

A trace stores a replayed CUDA graph's kernels once per template (`graph_kernels`) and each
replay as one row (`graph_replays`); the views `kernels` and `kernel_features` add the replays'
kernels to the rows stored one by one (`kernel_rows`, `kernel_feature_rows`). Everything that
reads kernels reads the views and sees every kernel. A tool that rewrites kernels row by row
(`revati replay` moves each kernel to its re-simulated time) first expands the replays into
stored rows here.
"""

from __future__ import annotations

import duckdb
from revati.recorder import schema


def stored_table(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """The table that holds `table`'s rows in this trace: `kernel_rows` for `kernels` since
    version 3, the table itself in a version 2 trace."""
    stored = schema.stored_table(table)
    if stored == table:
        return table
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [stored]
    ).fetchall()
    return stored if found[0][0] else table


def expand_graph_replays(con: duckdb.DuckDBPyConnection) -> int:
    """Store every graph replay's kernels (and features) as rows and remove the replays and
    their templates; the views show the same kernels before and after. Returns the kernels
    added (0 for a version 2 trace, which stores every kernel as a row)."""
    if stored_table(con, "kernels") == "kernels":
        return 0
    [(added,)] = con.execute(f"SELECT count(*) FROM ({schema.replayed_sql('kernels')})").fetchall()
    for view, stored in schema.STORED_AS.items():
        con.execute(f"INSERT INTO {stored} {schema.replayed_sql(view)}")
    for table in schema.GRAPH_TABLES:
        con.execute(f"DELETE FROM {table}")
    return int(added)
