"""Writing a replayed trace: the parent's file with every time moved to its re-simulated value.

The output starts as a copy of the parent, so every table and column the parent has is kept;
then each time column is shifted in place (`UPDATE ... SET t = t + shift`, NULLs stay NULL):
device ops, syncs and barriers by what `resim` computed, everything on a host thread (calls,
NVTX ranges, markers, allocations, jumps) by that thread's host shift at that time. The derived
tables (global event order, overview) are rebuilt and the run row says `source = 'replayed'`
with the parent in `run.config.replay`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from revati.recorder import schema
from revati.recorder.event_order import META_KEY, write_event_order
from revati.recorder.graph_rows import expand_graph_replays, stored_table
from revati.recorder.overview import META_KEY as OVERVIEW_KEY
from revati.recorder.overview import write_overview
from revati.replay.reader import OP_TABLES, ReplayInput
from revati.replay.resim import HostShift, Resimulated

from revati.errors import RevatiTraceError

_PID_THREAD = "(SELECT min(t.thread_id) FROM threads t WHERE t.pid = {table}.pid)"

# (table, SQL for the host thread of a row, time columns) shifted by host shift.
HOST_TIMED: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("threads", "thread_id", ("started_ns", "ended_ns")),
    ("processes", _PID_THREAD, ("started_ns", "ended_ns")),
    ("streams", _PID_THREAD, ("created_ns",)),
    ("nvtx_ranges", "thread_id", ("start_ns", "end_ns")),
    ("markers", f"coalesce(thread_id, {_PID_THREAD})", ("at_ns",)),
    ("unsupported_calls", "thread_id", ("at_ns",)),
    (
        "allocations",
        "(SELECT c.thread_id FROM api_calls c WHERE c.call_id = allocations.call_id)",
        ("alloc_ns", "free_ns"),
    ),
    ("jumps", "cause_thread_id", ("from_ns", "to_ns")),
)
DERIVED = ("event_order", "event_groups", "timeline_overview")


@dataclass(frozen=True)
class ReplayRun:
    """How the replay was made (stored in run.config.replay)."""

    parent: str
    parent_source: str | None
    device: str
    profile: str | None
    predictor: str | None


def copy_parent(parent: Path, out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise RevatiTraceError(f"{out}: already exists; choose another -o path or pass --force")
    if out.resolve() == parent.resolve():
        raise RevatiTraceError(f"{out}: is the trace being replayed; choose another -o path")
    try:
        shutil.copyfile(parent, out)
        wal, out_wal = parent.with_name(parent.name + ".wal"), out.with_name(out.name + ".wal")
        out_wal.unlink(missing_ok=True)
        if wal.exists():  # a trace whose writer did not close: its last rows are there
            shutil.copyfile(wal, out_wal)
    except OSError as e:
        raise RevatiTraceError(f"{out}: cannot write: {e.strerror}") from e


def write_replay(
    out: Path,
    inp: ReplayInput,
    res: Resimulated,
    run: ReplayRun,
    models: np.ndarray | None,
) -> None:
    """Move every time of the copied trace at `out` to its replayed value."""
    try:
        con = duckdb.connect(str(out))
    except duckdb.Error as e:
        raise RevatiTraceError(f"{out}: cannot open the copy for writing: {e}") from e
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute("BEGIN")
        expand_graph_replays(con)  # each kernel moves on its own
        _device_ops(con, inp, res, models)
        _syncs_and_calls(con, inp, res)
        _barriers(con, inp, res)
        for table, thread_sql, cols in HOST_TIMED:
            _host_shift(con, table, thread_sql.format(table=table), cols, res.host_shift)
        _run_row(con, inp, res, run)
        con.execute("COMMIT")
        _rebuild_derived(con)
        con.execute("CHECKPOINT")
    except duckdb.Error as e:
        raise RevatiTraceError(f"{out}: writing the replay failed: {e}") from e
    finally:
        con.close()


def _update(con: duckdb.DuckDBPyConnection, table: str, key: str, frame: dict[str, Any]) -> None:
    """table.col += frame['d_col'] for every row whose `key` is in frame['k']."""
    sets = ", ".join(f"{c[2:]} = {table}.{c[2:]} + f.{c}" for c in frame if c.startswith("d_"))
    extra = [c for c in frame if c not in ("k",) and not c.startswith("d_")]
    sets = ", ".join([sets, *(f"{c} = f.{c}" for c in extra)]) if extra else sets
    con.register("replay_frame", frame)
    con.execute(f"UPDATE {table} SET {sets} FROM replay_frame f WHERE {table}.{key} = f.k")
    con.unregister("replay_frame")


def _device_ops(
    con: duckdb.DuckDBPyConnection, inp: ReplayInput, res: Resimulated, models: np.ndarray | None
) -> None:
    o = inp.ops
    dlaunch = res.host_shift.at(o.thread, o.launch)
    for i, (logical, key) in enumerate(OP_TABLES):
        table = stored_table(con, logical)
        m = inp.op_table == i
        if not m.any():
            continue
        frame: dict[str, Any] = {
            "k": inp.op_id[m],
            "d_launch_ns": dlaunch[m],
            "d_start_ns": (res.start - o.start)[m],
            "d_end_ns": (res.end - o.end)[m],
        }
        if models is not None:
            keep = o.barrier[m] >= 0  # collectives keep their recorded duration and model
            nothing = np.full(len(keep), None, dtype=object)  # NULL: keep the recorded value
            frame["model"] = np.where(keep, nothing, np.asarray(models[m], dtype=object))
            frame["duration_source"] = np.where(
                keep, nothing, np.full(len(keep), schema.DURATION_PREDICTED, dtype=object)
            )
            sets = f"model = coalesce(f.model, {table}.model), duration_source = "
            sets += f"coalesce(f.duration_source, {table}.duration_source)"
            con.register("replay_frame", frame)
            con.execute(f"UPDATE {table} SET {sets} FROM replay_frame f WHERE {table}.{key} = f.k")
            con.unregister("replay_frame")
            del frame["model"], frame["duration_source"]
        _update(con, table, key, frame)


def _syncs_and_calls(con: duckdb.DuckDBPyConnection, inp: ReplayInput, res: Resimulated) -> None:
    y = inp.syncs
    _update(
        con,
        "syncs",
        "sync_id",
        {
            "k": inp.sync_id,
            "d_blocked_ns": res.blocked - y.blocked,
            "d_deadline_ns": np.where(y.deadline >= 0, res.deadline - y.deadline, 0),
            "d_resumed_ns": res.resumed - y.resumed,
        },
    )
    c = con.execute(
        "SELECT call_id, coalesce(thread_id, -1) AS t, coalesce(enter_ns, 0) AS e, "
        "coalesce(exit_ns, 0) AS x FROM api_calls"
    ).fetchnumpy()
    call_id = np.asarray(c["call_id"], dtype=np.int64)
    thread = np.asarray(c["t"], dtype=np.int64)
    denter = res.host_shift.at(thread, np.asarray(c["e"], dtype=np.int64))
    dexit = res.host_shift.at(thread, np.asarray(c["x"], dtype=np.int64))
    order = np.argsort(call_id)
    has = inp.sync_call >= 0
    pos = np.searchsorted(call_id[order], inp.sync_call[has])
    ok = pos < len(order)
    rows = order[np.minimum(pos, max(len(order) - 1, 0))][ok]
    ok_rows = call_id[rows] == inp.sync_call[has][ok]
    rows = rows[ok_rows]
    denter[rows] = (res.blocked - y.blocked)[has][ok][ok_rows]
    dexit[rows] = (res.resumed - y.resumed)[has][ok][ok_rows]
    _update(con, "api_calls", "call_id", {"k": call_id, "d_enter_ns": denter, "d_exit_ns": dexit})


def _barriers(con: duckdb.DuckDBPyConnection, inp: ReplayInput, res: Resimulated) -> None:
    b = inp.barriers
    if not len(inp.barrier_id):
        return
    _update(
        con,
        "barriers",
        "barrier_id",
        {
            "k": inp.barrier_id,
            "d_release_ns": res.release - b.release,
            "d_end_ns": res.barrier_end - b.end,
        },
    )
    kernels = inp.op_table == 0
    _update(
        con,
        "barrier_arrivals",
        "kernel_id",
        {"k": inp.op_id[kernels], "d_arrival_ns": (res.start - inp.ops.start)[kernels]},
    )


def _host_shift(
    con: duckdb.DuckDBPyConnection,
    table: str,
    thread_sql: str,
    cols: tuple[str, ...],
    shift: HostShift,
) -> None:
    picks = ", ".join(f"coalesce({c}, 0) AS {c}" for c in cols)
    rows = con.execute(
        f"SELECT rowid AS k, coalesce({thread_sql}, -1) AS thread, {picks} FROM {table}"
    ).fetchnumpy()
    if not len(rows["k"]):
        return
    thread = np.asarray(rows["thread"], dtype=np.int64)
    frame: dict[str, Any] = {"k": np.asarray(rows["k"], dtype=np.int64)}
    for c in cols:
        frame[f"d_{c}"] = shift.at(thread, np.asarray(rows[c], dtype=np.int64))
    if not any(frame[f"d_{c}"].any() for c in cols):
        return
    _update(con, table, "rowid", frame)


def _run_row(
    con: duckdb.DuckDBPyConnection, inp: ReplayInput, res: Resimulated, run: ReplayRun
) -> None:
    row = con.execute("SELECT config, virtual_end_ns FROM run").fetchone()
    config = json.loads(row[0]) if row and row[0] else {}
    if not isinstance(config, dict):
        config = {"parent_config": config}
    config["replay"] = {
        "parent": run.parent,
        "parent_source": run.parent_source,
        "device": run.device,
        "profile": run.profile,
        "durations": "predicted" if run.predictor else "recorded",
    }
    grow = _latest(res) - _latest_orig(inp)
    end = row[1] + grow if row and row[1] is not None else None
    con.execute(
        "UPDATE run SET source = ?, device = ?, predictor = coalesce(?, predictor), "
        "profile = ?, config = ?, virtual_end_ns = ?",
        [schema.SOURCE_REPLAYED, run.device, run.predictor, run.profile, json.dumps(config), end],
    )


def _latest(res: Resimulated) -> int:
    parts = [res.end, res.resumed, res.barrier_end]
    return max((int(p.max()) for p in parts if len(p)), default=0)


def _latest_orig(inp: ReplayInput) -> int:
    parts = [inp.ops.end, inp.syncs.resumed, inp.barriers.end]
    return max((int(p.max()) for p in parts if len(p)), default=0)


def _rebuild_derived(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DROP VIEW IF EXISTS events")
    for table in DERIVED:
        con.execute(f"DROP TABLE IF EXISTS {table}")
    tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "clock_samples" in tables:  # a replay has no clock: these map the parent's times
        con.execute("DELETE FROM clock_samples")
    con.execute(f"DELETE FROM {schema.META_TABLE} WHERE key IN (?, ?)", [META_KEY, OVERVIEW_KEY])
    con.execute("SET preserve_insertion_order = true")
    write_event_order(con)
    write_overview(con, "event_order", "event_groups")
