"""Export a trace to the Chrome trace-event JSON format (Perfetto UI, chrome://tracing).

Layout: one process per rank (pid = rank, or the OS pid for processes without a rank), one
thread per host thread (tid = OS tid) and per stream (tid = STREAM_TID_BASE + stream_id), and a
"virtual clock" process holding jumps and barriers. Every API call, kernel, copy, memset, sync
and NVTX range is a complete ("X") event; markers are instants; each launching call gets a flow
arrow to the device op it launched. Timestamps are microseconds of virtual time.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
from revati.recorder.reader import TraceReader

from revati.errors import RevatiTraceError

STREAM_TID_BASE = 1_000_000
CLOCK_PID = 2**31 - 1  # the "virtual clock" pseudo-process (jumps, barriers)
_BATCH = 50_000


def export_chrome(reader: TraceReader, out: Path, *, compress: bool | None = None) -> int:
    """Write `reader`'s trace to `out` (gzip if `compress`, by default if it ends in .gz);
    returns the number of trace events written."""
    if compress is None:
        compress = out.suffix == ".gz"
    opener = gzip.open if compress else open
    n = 0
    with opener(out, "wt", encoding="utf-8") as f:
        f.write('{"displayTimeUnit": "ns", "otherData": ')
        f.write(json.dumps(_other_data(reader), default=str))
        f.write(', "traceEvents": [\n')
        first = True
        for ev in _events(reader):
            if not first:
                f.write(",\n")
            f.write(json.dumps(ev, separators=(",", ":")))
            first = False
            n += 1
        f.write("\n]}\n")
    return n


def _other_data(reader: TraceReader) -> dict[str, Any]:
    run = reader.run()
    return {
        "revati_source": run["source"],
        "device": run["device"],
        "predictor": run["predictor"],
        "argv": " ".join(run["argv"] or []),
    }


def _us(ns: int | None) -> float:
    return (ns or 0) / 1000.0


def _events(reader: TraceReader) -> Iterator[dict[str, Any]]:
    pid_of = {p.pid: (p.rank if p.rank is not None else p.pid) for p in reader.processes()}
    yield from _metadata(reader, pid_of)
    yield from _api_calls(reader, pid_of)
    yield from _device_ops(reader, pid_of)
    yield from _thread_spans(reader, pid_of)
    yield from _clock(reader)


def _metadata(reader: TraceReader, pid_of: dict[int, int]) -> Iterator[dict[str, Any]]:
    for p in reader.processes():
        who = f"rank {p.rank}" if p.rank is not None else "process"
        yield _meta("process_name", pid_of[p.pid], 0, f"{who} (pid {p.pid})")
        yield _meta("process_sort_index", pid_of[p.pid], 0, None, sort_index=pid_of[p.pid])
    for t in reader.tracks():
        pid = pid_of.get(t.pid, t.pid)
        if t.kind == "thread":
            tid = _thread_tid(reader, t.ref_id)
            yield _meta("thread_name", pid, tid, t.label.split(" · ", 1)[-1])
            yield _meta("thread_sort_index", pid, tid, None, sort_index=0)
        else:
            tid = STREAM_TID_BASE + t.ref_id
            yield _meta("thread_name", pid, tid, t.label.split(" · ", 1)[-1])
            yield _meta("thread_sort_index", pid, tid, None, sort_index=1 + t.ref_id)
    yield _meta("process_name", CLOCK_PID, 0, "virtual clock")
    yield _meta("thread_name", CLOCK_PID, 0, "jumps")
    yield _meta("thread_name", CLOCK_PID, 1, "barriers")


def _meta(name: str, pid: int, tid: int, label: str | None, **args: Any) -> dict[str, Any]:
    return {
        "ph": "M",
        "name": name,
        "pid": pid,
        "tid": tid,
        "args": {"name": label} if label is not None else args,
    }


def _thread_tid(reader: TraceReader, thread_id: int) -> int:
    cache = reader.__dict__.setdefault("_chrome_tids", {})
    if not cache:
        cache.update(dict(reader.sql("SELECT thread_id, coalesce(tid, thread_id) FROM threads")))
    return int(cache.get(thread_id, thread_id))


def _rows(reader: TraceReader, query: str) -> Iterator[tuple[Any, ...]]:
    try:
        cur = reader.con.execute(query)
        while batch := cur.fetchmany(_BATCH):
            yield from batch
    except duckdb.Error as e:
        raise RevatiTraceError(f"{reader.path}: reading for export failed: {e}") from e


def _api_calls(reader: TraceReader, pid_of: dict[int, int]) -> Iterator[dict[str, Any]]:
    query = """SELECT a.call_id, a.name, a.enter_ns, a.exit_ns, a.result, a.args, t.pid,
                      coalesce(t.tid, a.thread_id), l.call_id IS NOT NULL
               FROM api_calls a LEFT JOIN threads t USING (thread_id)
               LEFT JOIN (SELECT call_id FROM kernels UNION SELECT call_id FROM copies
                          UNION SELECT call_id FROM memsets) l ON l.call_id = a.call_id
               ORDER BY a.enter_ns, a.call_id"""
    for call_id, name, enter, exit_, result, args, pid, tid, launches in _rows(reader, query):
        p = pid_of.get(pid, pid or 0)
        yield {
            "ph": "X",
            "cat": "api",
            "name": name,
            "pid": p,
            "tid": tid,
            "ts": _us(enter),
            "dur": _us((exit_ or enter) - enter),
            "args": {"call_id": call_id, "result": result, "args": args},
        }
        if launches:
            yield {
                "ph": "s",
                "cat": "launch",
                "name": "launch",
                "id": call_id,
                "pid": p,
                "tid": tid,
                "ts": _us(((exit_ or enter) + enter) // 2),
            }


_DEVICE_TABLES = (
    ("kernels", "kernel_id", "o.name", "kernel"),
    ("copies", "copy_id", "'memcpy ' || coalesce(o.kind, '?')", "copy"),
    ("memsets", "memset_id", "'memset'", "memset"),
)


def _device_ops(reader: TraceReader, pid_of: dict[int, int]) -> Iterator[dict[str, Any]]:
    for table, id_col, name_sql, cat in _DEVICE_TABLES:
        query = f"""SELECT o.{id_col}, {name_sql}, o.start_ns, o.end_ns, o.stream_id, s.pid,
                           o.call_id, o.model, o.duration_source
                    FROM {table} o LEFT JOIN streams s USING (stream_id)
                    WHERE o.start_ns IS NOT NULL ORDER BY o.start_ns, o.{id_col}"""
        for op_id, name, start, end, stream, pid, call_id, model, source in _rows(reader, query):
            p, tid = pid_of.get(pid, pid or 0), STREAM_TID_BASE + (stream or 0)
            yield {
                "ph": "X",
                "cat": cat,
                "name": name,
                "pid": p,
                "tid": tid,
                "ts": _us(start),
                "dur": _us((end or start) - start),
                "args": {id_col: op_id, "model": model, "duration": source},
            }
            if call_id is not None:
                yield {
                    "ph": "f",
                    "bp": "e",
                    "cat": "launch",
                    "name": "launch",
                    "id": call_id,
                    "pid": p,
                    "tid": tid,
                    "ts": _us(start),
                }


def _thread_spans(reader: TraceReader, pid_of: dict[int, int]) -> Iterator[dict[str, Any]]:
    query = """SELECT 'sync ' || y.kind, y.blocked_ns, y.resumed_ns, t.pid, coalesce(t.tid, y.thread_id),
                      'sync', y.target
               FROM syncs y LEFT JOIN threads t USING (thread_id)
               UNION ALL
               SELECT r.name, r.start_ns, r.end_ns, t.pid, coalesce(t.tid, r.thread_id), 'nvtx',
                      r.domain
               FROM nvtx_ranges r LEFT JOIN threads t USING (thread_id)"""
    for name, start, end, pid, tid, cat, detail in _rows(reader, query):
        yield {
            "ph": "X",
            "cat": cat,
            "name": name,
            "pid": pid_of.get(pid, pid or 0),
            "tid": tid,
            "ts": _us(start),
            "dur": _us((end or start) - start),
            "args": {"detail": detail},
        }
    query = """SELECT m.kind, m.name, m.at_ns, m.pid, t.tid, m.request_id
               FROM markers m LEFT JOIN threads t USING (thread_id)"""
    for kind, name, at, pid, tid, request in _rows(reader, query):
        yield {
            "ph": "i",
            "s": "t" if tid is not None else "p",
            "cat": "marker",
            "name": f"{kind}: {name}" if name else kind,
            "pid": pid_of.get(pid, pid or 0),
            "tid": tid or 0,
            "ts": _us(at),
            "args": {"request_id": request},
        }


def _clock(reader: TraceReader) -> Iterator[dict[str, Any]]:
    for jump_id, gen, frm, to, kind, obj in _rows(
        reader,
        "SELECT jump_id, generation, from_ns, to_ns, cause_kind, cause_object "
        "FROM jumps ORDER BY from_ns",
    ):
        yield {
            "ph": "X",
            "cat": "jump",
            "name": f"jump ({kind})",
            "pid": CLOCK_PID,
            "tid": 0,
            "ts": _us(frm),
            "dur": _us(to - frm),
            "args": {"jump_id": jump_id, "generation": gen, "cause": obj},
        }
    for b in reader.barriers():
        start = min((a.arrival_ns for a in b.arrivals), default=b.release_ns)
        yield {
            "ph": "X",
            "cat": "barrier",
            "name": b.collective,
            "pid": CLOCK_PID,
            "tid": 1,
            "ts": _us(start),
            "dur": _us(b.end_ns - start),
            "args": {
                "barrier_id": b.barrier_id,
                "bytes": b.bytes,
                "straggler_rank": b.straggler_rank,
                "total_wait_ns": b.total_wait_ns,
            },
        }
