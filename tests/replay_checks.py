"""Checks shared by the replay tests: two traces hold the same rows, table by table."""

from __future__ import annotations

from pathlib import Path

import duckdb
from revati.recorder import schema

# Tables a replay rewrites (the run row) or rebuilds (derived tables) are compared elsewhere;
# a replay stores graph replays' kernels as rows, so the graph tables are compared through the
# views `kernels` and `kernel_features`. A replay has no clock: its `clock_samples` are empty.
SKIP = {"run", schema.META_TABLE, "clock_samples", *schema.GRAPH_TABLES}


def differing_tables(a: Path, b: Path) -> dict[str, int]:
    """Tables whose rows differ between traces a and b (rows of either side not in the other)."""
    out: dict[str, int] = {}
    with duckdb.connect(":memory:") as con:
        con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
        con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
        for t in schema.TABLES:
            if t.name in SKIP:
                continue
            (n,) = con.execute(
                f"SELECT count(*) FROM ((SELECT * FROM a.{t.name} EXCEPT ALL "
                f"SELECT * FROM b.{t.name}) UNION ALL (SELECT * FROM b.{t.name} EXCEPT ALL "
                f"SELECT * FROM a.{t.name}))"
            ).fetchone()
            if n:
                out[t.name] = n
    return out
