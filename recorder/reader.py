"""TraceReader: the read API every other part of revati uses (CLI, replay, TUI, calibration).

Opening validates the file once (exists, is DuckDB, is a revati trace, has this schema version)
and raises `RevatiTraceError` with one clear line otherwise. The file is opened read-only, so a
reader never modifies what the user has.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from revati.recorder import event_order, schema
from revati.recorder.event_index import EventIndex, GroupFilter
from revati.recorder.live import live_recording
from revati.recorder.output import abandoned_write
from revati.recorder.overview import Overview, load_overview
from revati.recorder.records import (
    EVENT_KINDS,
    BarrierArrival,
    BarrierDetail,
    Event,
    KernelStat,
    ProcessInfo,
    Track,
)

from revati.errors import RevatiTraceError, RevatiUsageError

__all__ = [
    "BarrierArrival",
    "BarrierDetail",
    "Event",
    "KernelStat",
    "ProcessInfo",
    "Track",
    "TraceReader",
    "open_trace",
]

# kind -> (table, id column) of the table that holds the full row of an event
KIND_TABLE = {
    "api_call": ("api_calls", "call_id"),
    "kernel": ("kernels", "kernel_id"),
    "copy": ("copies", "copy_id"),
    "memset": ("memsets", "memset_id"),
    "sync": ("syncs", "sync_id"),
    "jump": ("jumps", "jump_id"),
    "barrier": ("barriers", "barrier_id"),
    "nvtx": ("nvtx_ranges", "range_id"),
    "marker": ("markers", "marker_id"),
}

# processes columns added after schema version 2 was first released (NULL in older files)
_PROCESS_ENDING = (
    "started_ns",
    "ended_ns",
    "exit_code",
    "exit_signal",
    "core_dumped",
    "ended_wall_ns",
)

DUCKDB_MAGIC = b"DUCK"  # bytes 8..12 of every DuckDB database file


def validate_trace_file(path: Path) -> None:
    """Raise RevatiTraceError unless `path` looks like a DuckDB file (cheap checks, no open)."""
    if not path.exists():
        raise RevatiTraceError(f"{path}: no such file")
    if path.is_dir():
        raise RevatiTraceError(f"{path}: is a directory, not a trace file")
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as e:
        raise RevatiTraceError(f"{path}: cannot read: {e.strerror}") from e
    if len(head) < 12 or head[8:12] != DUCKDB_MAGIC:
        raise RevatiTraceError(f"{path}: not a DuckDB file, so not a revati trace")


def being_recorded(path: Path) -> None:
    """Raise RevatiTraceError if `path` is being recorded right now (it is not complete), or if
    its recorder was killed before it could rename the trace into place (say where it is)."""
    abandoned = abandoned_write(path) if not path.exists() else None
    if abandoned is not None:
        raise RevatiTraceError(
            f"{path}: not there: its recorder (pid {abandoned[0]}) was killed before finishing; "
            f"what it had written is in {abandoned[1]} (open that, or rename it to {path.name})"
        )
    rec = live_recording(path)
    if rec is not None:
        raise RevatiTraceError(
            f"{path}: being recorded right now by pid {rec.pid}; it is complete when that run "
            f"ends. Watch it live with `revati info --follow {path}` or `revati tui {path}`"
        )


class TraceReader:
    """Read-only access to one trace."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        being_recorded(self.path)
        validate_trace_file(self.path)
        try:
            self.con = duckdb.connect(str(self.path), read_only=True)
        except duckdb.Error as e:
            writer = re.search(r"Conflicting lock is held in (\S+) \(PID (\d+)\)", str(e))
            if writer:
                raise RevatiTraceError(
                    f"{self.path}: open for writing by pid {writer[2]} ({Path(writer[1]).name}); "
                    "try again when it has finished"
                ) from e
            raise RevatiTraceError(
                f"{self.path}: cannot open as a DuckDB database ({_first_line(e)}); "
                "the file may be truncated or corrupt"
            ) from e
        self._check_identity()
        self._index: EventIndex | None = None
        self._columns: dict[str, frozenset[str]] = {}
        self.con.execute("SET enable_progress_bar = false")

    def _check_identity(self) -> None:
        try:
            rows = dict(self.con.execute(f"SELECT key, value FROM {schema.META_TABLE}").fetchall())
        except duckdb.CatalogException as e:
            self.con.close()
            raise RevatiTraceError(
                f"{self.path}: a DuckDB file but not a revati trace (no {schema.META_TABLE} table)"
            ) from e
        except duckdb.Error as e:
            self.con.close()
            raise RevatiTraceError(
                f"{self.path}: cannot read the trace ({_first_line(e)}); "
                "the file is truncated or corrupt"
            ) from e
        if rows.get("format") != schema.TRACE_FORMAT:
            self.con.close()
            raise RevatiTraceError(f"{self.path}: a DuckDB file but not a revati trace")
        version = rows.get("schema_version")
        if version not in {str(v) for v in schema.READABLE_VERSIONS}:
            self.con.close()
            readable = " and ".join(str(v) for v in schema.READABLE_VERSIONS)
            raise RevatiTraceError(
                f"{self.path}: trace schema version {version}, this revati reads versions "
                f"{readable}; use the revati release that wrote it or re-record"
            )
        self.schema_version = int(version)
        missing = set(t.name for t in schema.TABLES) - set(self._tables())
        # Tables added within a version, and the graph tables an older trace predates: empty.
        empty = set(schema.ADDED_IN_VERSION) | {
            t for t, since in schema.GRAPH_TABLE_SINCE.items() if since > self.schema_version
        }
        for name in missing & empty:
            self.con.execute(schema.TABLE_BY_NAME[name].ddl().replace("TABLE", "TEMP TABLE", 1))
        missing -= empty
        if missing:
            self.con.close()
            raise RevatiTraceError(
                f"{self.path}: incomplete revati trace, missing tables {', '.join(sorted(missing))}"
            )

    def _tables(self) -> list[str]:
        """Tables and views of the file (`kernels` is a view since schema version 3, `copies` and
        `memsets` since version 4)."""
        rows = self.con.execute(
            "SELECT table_name FROM duckdb_tables() UNION ALL "
            "SELECT view_name FROM duckdb_views() WHERE NOT internal"
        ).fetchall()
        return [r[0] for r in rows]

    def _error(self, e: duckdb.Error) -> RevatiTraceError:
        if isinstance(e, duckdb.IOException):
            return RevatiTraceError(
                f"{self.path}: cannot read the trace ({_first_line(e)}); "
                "the file is truncated or corrupt"
            )
        return RevatiTraceError(f"{self.path}: query failed: {_first_line(e)}")

    # ---- basics ------------------------------------------------------------------------------

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a read-only query and return all rows (errors become RevatiTraceError)."""
        try:
            return self.con.execute(query, params or []).fetchall()
        except duckdb.Error as e:
            raise self._error(e) from e

    def run(self) -> dict[str, Any]:
        """The run row as a dict."""
        try:  # TIMESTAMPTZ goes through text: DuckDB's own conversion needs pytz
            cur = self.con.execute("SELECT * REPLACE (started_at::VARCHAR AS started_at) FROM run")
            names = [d[0] for d in cur.description]
            row = cur.fetchone()
        except duckdb.Error as e:
            raise RevatiTraceError(
                f"{self.path}: cannot read the run row ({_first_line(e)})"
            ) from e
        if row is None:
            raise RevatiTraceError(f"{self.path}: trace has no run row; the file is incomplete")
        out = dict(zip(names, row, strict=True))
        if out["started_at"] is not None:
            out["started_at"] = datetime.fromisoformat(out["started_at"])
        if isinstance(out.get("config"), str):
            out["config"] = json.loads(out["config"])
        return out

    def counts(self) -> dict[str, int]:
        """Row count of every table of the schema (meta and run excluded)."""
        out = {}
        for t in schema.TABLES:
            if t.name in (schema.META_TABLE, "run"):
                continue
            out[t.name] = int(self.sql(f"SELECT count(*) FROM {t.name}")[0][0])
        return out

    # ---- processes and tracks ----------------------------------------------------------------

    def processes(self) -> list[ProcessInfo]:
        """Every participant process, by rank then pid, with how and when it ended."""
        ending = ", ".join(
            c if c in self.columns("processes") else f"NULL AS {c}" for c in _PROCESS_ENDING
        )
        rows = self.sql(
            f"SELECT pid, rank, local_rank, world_size, argv, {ending} FROM processes "
            "ORDER BY rank NULLS LAST, pid"
        )
        return [ProcessInfo(r[0], r[1], r[2], r[3], list(r[4] or []), *r[5:]) for r in rows]

    def columns(self, table: str) -> frozenset[str]:
        """Column names `table` has in this file (a trace written before a column was added
        lacks it)."""
        if table not in self._columns:
            rows = self.sql(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [table]
            )
            self._columns[table] = frozenset(r[0] for r in rows)
        return self._columns[table]

    def ranks(self) -> list[int | None]:
        """Distinct ranks, ascending; None last if some process has no rank."""
        rows = self.sql("SELECT DISTINCT rank FROM processes ORDER BY rank NULLS LAST")
        return [r[0] for r in rows]

    def tracks(self) -> list[Track]:
        """Every thread and stream, by rank, pid, threads before streams, id."""
        rows = self.sql("""
            SELECT 'thread' AS kind, t.thread_id, t.pid, p.rank, t.tid::VARCHAR, t.name
            FROM threads t LEFT JOIN processes p USING (pid)
            UNION ALL
            SELECT 'stream', s.stream_id, s.pid, p.rank, NULL, s.name
            FROM streams s LEFT JOIN processes p USING (pid)
            ORDER BY rank NULLS LAST, pid, kind DESC, 2""")
        return [_track(*r) for r in rows]

    # ---- the global order --------------------------------------------------------------------

    @property
    def index(self) -> EventIndex:
        """The global event order as numpy arrays (built or loaded on first use)."""
        if self._index is None:
            self._index = self._load_index()
        return self._index

    def _load_index(self) -> EventIndex:
        try:
            if event_order.has_event_order(self.con):
                try:
                    ix = EventIndex.load(self.con, "event_order", "event_groups")
                    if ix.count == event_order.stored_rows(self.con):
                        return ix
                except duckdb.Error:
                    pass  # derived tables of an older build: build the order here instead
            # not stored (a recording leaves it to its readers): computed in this connection
            cols = event_order.build_in_memory(self.con, "temp_event_groups", "events")
            return EventIndex(self.con, "temp_event_groups", cols)
        except duckdb.Error as e:
            raise RevatiTraceError(
                f"{self.path}: cannot build the event order ({_first_line(e)}); the event tables "
                "do not match this revati's schema: re-create the trace with this revati "
                "(record, import or synth again)"
            ) from e

    def overview(self) -> Overview | None:
        """The coarse timeline written at close (None for traces without one, or a stale one)."""
        if not event_order.has_event_order(self.con):
            return None
        return load_overview(self.con)

    def event_count(self) -> int:
        """Events in the global order (counted in SQL if the order is neither stored nor built
        yet: a summary of a recording need not sort it)."""
        return self._extent()[0]

    def time_range(self) -> tuple[int, int]:
        """(first event start, last event end) in virtual ns; (0, 0) for an empty trace."""
        return self._extent()[1:]

    def _extent(self) -> tuple[int, int, int]:
        if self._index is not None or event_order.has_event_order(self.con):
            return (self.index.count, *self.index.time_range())
        try:
            return event_order.extent(self.con)
        except duckdb.Error as e:
            raise RevatiTraceError(
                f"{self.path}: cannot read the events ({_first_line(e)}); the event tables do "
                "not match this revati's schema: re-create the trace with this revati"
            ) from e

    def event(self, seq: int) -> Event:
        """The event at position `seq` of the global order."""
        ix = self.index
        if not 0 <= seq < ix.count:
            raise IndexError(f"event seq {seq} outside 0..{ix.count - 1}")
        g = int(ix.grp[seq])
        return Event(
            seq,
            str(ix.group_kind[g]),
            int(ix.ref_id[seq]),
            ix.group_track[g],
            ix.group_pid[g],
            ix.group_rank[g],
            int(ix.start_ns[seq]),
            int(ix.end_ns[seq]),
            ix.group_name[g],
        )

    def event_for(self, kind: str, ref_id: int) -> Event:
        """The event of row `ref_id` of `kind`'s table; KeyError if there is none."""
        seq = self.index.seq_for(_check_kind(kind), ref_id)
        if seq is None:
            raise KeyError(f"no {kind} event with id {ref_id}")
        return self.event(seq)

    def first_event_at(self, t_ns: int) -> Event | None:
        """First event starting at or after `t_ns`."""
        seq = self.index.first_at(t_ns)
        return None if seq is None else self.event(seq)

    def next_event(
        self,
        seq: int,
        *,
        rank: int | None = None,
        track_id: str | None = None,
        kinds: list[str] | None = None,
        name_pattern: str | None = None,
    ) -> Event | None:
        """The first event after `seq` that passes the filters (name_pattern: a regex)."""
        tracks = None if track_id is None else [track_id]
        groups = self._groups(rank, tracks, kinds, name_pattern)
        found = self.index.next_seq(seq, groups)
        return None if found is None else self.event(found)

    def prev_event(
        self,
        seq: int,
        *,
        rank: int | None = None,
        track_id: str | None = None,
        kinds: list[str] | None = None,
        name_pattern: str | None = None,
    ) -> Event | None:
        """The last event before `seq` that passes the filters (name_pattern: a regex)."""
        tracks = None if track_id is None else [track_id]
        groups = self._groups(rank, tracks, kinds, name_pattern)
        found = self.index.prev_seq(seq, groups)
        return None if found is None else self.event(found)

    def events_in_window(
        self,
        start_ns: int,
        end_ns: int,
        track_ids: list[str] | None = None,
        kinds: list[str] | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Events overlapping [start_ns, end_ns] (inclusive), in global order."""
        groups = self._groups(None, track_ids, kinds, None)
        return self._events(self.index.window(start_ns, end_ns, groups, limit))

    def _events(self, seqs: np.ndarray) -> list[Event]:
        """Events for many seqs at once (columns converted to Python lists in bulk)."""
        ix = self.index
        kind, track, pid, rank, name = (
            ix.group_kind,
            ix.group_track,
            ix.group_pid,
            ix.group_rank,
            ix.group_name,
        )
        return [
            Event(s, kind[g], ref, track[g], pid[g], rank[g], a, b, name[g])
            for s, g, ref, a, b in zip(
                seqs.tolist(),
                ix.grp[seqs].tolist(),
                ix.ref_id[seqs].tolist(),
                ix.start_ns[seqs].tolist(),
                ix.end_ns[seqs].tolist(),
                strict=True,
            )
        ]

    def _groups(
        self,
        rank: int | None,
        track_ids: list[str] | None,
        kinds: list[str] | None,
        name_pattern: str | None,
    ) -> np.ndarray | None:
        f = GroupFilter(
            rank,
            None if track_ids is None else tuple(track_ids),
            tuple(_check_kind(k) for k in kinds or ()),
            name_pattern,
        )
        if f.is_empty:
            return None
        try:
            return self.index.select_groups(f)
        except re.error as e:
            raise RevatiUsageError(
                f"name pattern {name_pattern!r} is not a valid regex: {e}"
            ) from e

    # ---- details -----------------------------------------------------------------------------

    def details(self, event: Event) -> dict[str, Any]:
        """The full row of the event's table, plus: `launch_call` (kernels, copies, memsets),
        `unsupported` (API calls revati does not emulate), `call` (the API call a sync blocked
        in) and `woke_sync` (the sync whose deadline a jump went to)."""
        table, id_col = KIND_TABLE[event.kind]
        row = self._row(table, id_col, event.ref_id)
        if event.kind == "barrier":
            row["arrivals"] = [a.__dict__ for a in self.barrier(event.ref_id).arrivals]
        if table in ("kernels", "copies", "memsets") and row.get("call_id") is not None:
            row["launch_call"] = self._row("api_calls", "call_id", row["call_id"])
        if table == "api_calls":
            hit = self.sql(
                "SELECT library FROM unsupported_calls WHERE call_id = ? LIMIT 1", [event.ref_id]
            )
            if hit:
                row["unsupported"] = f"not emulated by revati ({hit[0][0] or 'unknown library'})"
        if table == "syncs" and row.get("call_id") is not None:
            call = self.sql("SELECT name FROM api_calls WHERE call_id = ?", [row["call_id"]])
            if call:
                row["call"] = call[0][0]
        if table == "jumps" and row.get("cause_thread_id") is not None:
            woke = self.sql(
                "SELECT s.sync_id, a.name FROM syncs s LEFT JOIN api_calls a USING (call_id)"
                " WHERE s.thread_id = ? AND s.deadline_ns = ? ORDER BY s.sync_id LIMIT 1",
                [row["cause_thread_id"], row.get("to_ns")],
            )
            if woke:
                row["woke_sync"] = {"sync_id": woke[0][0], "call": woke[0][1]}
        return row

    def _row(self, table: str, id_col: str, ref_id: int) -> dict[str, Any]:
        try:
            source = schema.KERNELS_WITH_FEATURES if table == "kernels" else table
            cur = self.con.execute(f"SELECT * FROM {source} WHERE {id_col} = ?", [ref_id])
            names = [d[0] for d in cur.description]
            row = cur.fetchone()
        except duckdb.Error as e:
            raise self._error(e) from e
        if row is None:
            raise KeyError(f"no row {id_col} = {ref_id} in {table}")
        out = dict(zip(names, row, strict=True))
        for key in ("features", "config", "payload"):
            if isinstance(out.get(key), str):
                out[key] = json.loads(out[key])
        return out

    # ---- barriers and kernel statistics ------------------------------------------------------

    def barriers(self) -> list[BarrierDetail]:
        """Every barrier with its arrivals, by release time."""
        return self._barriers("")

    def barrier(self, barrier_id: int) -> BarrierDetail:
        found = self._barriers("WHERE b.barrier_id = ?", [barrier_id])
        if not found:
            raise KeyError(f"no barrier with id {barrier_id}")
        return found[0]

    def _barriers(self, where: str, params: list[Any] | None = None) -> list[BarrierDetail]:
        """Barriers and arrivals as two column scans; waits and totals computed in numpy, then
        one object per row (200k barriers with 800k arrivals: about 3 s, most of it creating
        the million dataclass objects; the TUI reads the columns directly instead)."""
        try:
            b = self.con.execute(
                f"""SELECT b.barrier_id, b.collective, b.communicator, b.bytes, b.world_size,
                       coalesce(b.release_ns, a.last_ns, 0) AS release_ns, b.end_ns
                FROM barriers b LEFT JOIN (SELECT barrier_id, max(arrival_ns) AS last_ns
                    FROM barrier_arrivals GROUP BY 1) a USING (barrier_id) {where}
                ORDER BY b.release_ns, b.barrier_id""",
                params or [],
            ).fetchnumpy()
            a = self.con.execute(
                f"""SELECT a.barrier_id, a.rank, a.pid, a.arrival_ns, a.stream_id, a.kernel_id
                FROM barrier_arrivals a JOIN barriers b USING (barrier_id) {where}
                ORDER BY a.barrier_id, a.arrival_ns, a.rank""",
                params or [],
            ).fetchnumpy()
        except duckdb.Error as e:
            raise self._error(e) from e
        ids = np.asarray(b["barrier_id"], dtype=np.int64)
        release = np.asarray(b["release_ns"], dtype=np.int64)
        # Arrivals are sorted by barrier id: one slice per barrier through searchsorted.
        a_ids = np.asarray(a["barrier_id"], dtype=np.int64)
        lo = np.searchsorted(a_ids, ids, side="left")
        hi = np.searchsorted(a_ids, ids, side="right")
        counts = hi - lo
        pos = np.repeat(np.arange(len(ids)), counts)
        first = np.cumsum(counts) - counts  # where each barrier's arrivals start in `take`
        take = (np.arange(len(pos)) - first[pos] + lo[pos]).astype(np.int64)
        at = np.asarray(a["arrival_ns"])[take]
        wait = release[pos] - np.where(np.ma.getmaskarray(at), release[pos], at)
        arrivals = [
            BarrierArrival(r, p, t, w, s, k)
            for r, p, t, w, s, k in zip(
                _pylist(a["rank"], take),
                _pylist(a["pid"], take),
                _pylist(a["arrival_ns"], take),
                np.asarray(wait, dtype=np.int64).tolist(),
                _pylist(a["stream_id"], take),
                _pylist(a["kernel_id"], take),
                strict=True,
            )
        ]
        totals = np.zeros(len(ids), dtype=np.int64)
        np.add.at(totals, pos, np.asarray(wait, dtype=np.int64))
        out = []
        for i, (bid, coll, comm, nbytes, ws, rel, end) in enumerate(
            zip(
                ids.tolist(),
                _pylist(b["collective"]),
                _pylist(b["communicator"]),
                _pylist(b["bytes"]),
                _pylist(b["world_size"]),
                release.tolist(),
                _pylist(b["end_ns"]),
                strict=True,
            )
        ):
            mine = arrivals[lo[i] : hi[i]]
            out.append(
                BarrierDetail(
                    bid,
                    coll or "barrier",
                    comm,
                    nbytes,
                    ws,
                    rel,
                    end if end is not None else rel,
                    mine,
                    straggler_rank=mine[-1].rank if mine else None,
                    total_wait_ns=int(totals[i]),
                )
            )
        return out

    def kernel_stats(self, limit: int | None = None) -> list[KernelStat]:
        """Per kernel name: count and device time, by total time descending."""
        rows = self.sql(f"""
            SELECT name, count(*), sum(end_ns - start_ns), avg(end_ns - start_ns),
                   min(end_ns - start_ns), max(end_ns - start_ns),
                   sum(end_ns - start_ns) / nullif(sum(sum(end_ns - start_ns)) OVER (), 0)
            FROM kernels WHERE start_ns IS NOT NULL AND end_ns IS NOT NULL
            GROUP BY name ORDER BY 3 DESC, name {"LIMIT " + str(int(limit)) if limit else ""}""")
        return [
            KernelStat(n, int(c), int(t), float(m), int(lo), int(hi), float(sh or 0.0))
            for n, c, t, m, lo, hi, sh in rows
        ]

    def model_shares(self) -> dict[str, float]:
        """Share of predicted device time (kernels, copies, memsets) per prediction model, by
        share descending; a model named `…:unmodelled` is a flagged fallback."""
        rows = self.sql("""
            SELECT model, sum(end_ns - start_ns) FROM (
                SELECT model, start_ns, end_ns, duration_source FROM kernels
                UNION ALL SELECT model, start_ns, end_ns, duration_source FROM copies
                UNION ALL SELECT model, start_ns, end_ns, duration_source FROM memsets)
            WHERE duration_source = 'predicted' AND end_ns > start_ns
            GROUP BY model ORDER BY 2 DESC, model""")
        total = sum(int(t) for _, t in rows)
        return {str(m): int(t) / total for m, t in rows} if total else {}

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> TraceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_trace(path: str | os.PathLike[str]) -> TraceReader:
    """Open and validate a trace; raises RevatiTraceError with one clear line on bad input."""
    return TraceReader(path)


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _check_kind(kind: str) -> str:
    if kind not in EVENT_KINDS:
        raise RevatiUsageError(
            f"unknown event kind {kind!r}; known kinds: {', '.join(EVENT_KINDS)}"
        )
    return kind


def _track(
    kind: str, ref_id: int, pid: int, rank: int | None, tid: str | None, name: str | None
) -> Track:
    who = f"rank {rank}" if rank is not None else f"pid {pid}"
    if kind == "thread":
        label = f"{who} · thread {tid}" + (f" ({name})" if name else "")
    else:
        same = name == f"stream {ref_id}"  # recorded streams are named after their id
        label = f"{who} · stream {ref_id}" + (f" ({name})" if name and not same else "")
    return Track(f"{kind}:{ref_id}", kind, pid, rank, ref_id, label)


def _pylist(column: Any, take: np.ndarray | None = None) -> list[Any]:
    """A fetched (possibly masked) numpy column as Python values, NULL as None."""
    col = column if take is None else column[take]
    if isinstance(col, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(col)
        values = col.data.tolist()
        if mask.any():
            for i in np.flatnonzero(mask).tolist():
                values[i] = None
        return values
    return col.tolist()
