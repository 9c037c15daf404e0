"""The `revati compare` report: where an emulated trace and a real one part, as plain data.

Built on the alignment (`replay/alignment.py`) and the attribution (`replay/attribution.py`)
the TUI's compare screen shows, plus:
- steps: each trace cut at the syncs of its busiest host thread (a decode step ends in one);
  step i of one side is held against step i of the other;
- kernel names: matched ops grouped by normalised name, the top mispredicted by absolute time;
- the split of the difference into device time (sum of device-op durations), host time (time
  host threads were not blocked in a sync) and barrier waiting (first arrival to release);
  these are sums over streams and threads, so they explain where time went, not a partition
  of the end-to-end gap;
- serving figures (TTFT, TPOT, throughput) where a trace has requests: a `requests` table
  when there is one, else request markers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import numpy as np
from revati.recorder.reader import TraceReader
from revati.replay.alignment import StreamAlignment, normalize_name
from revati.replay.attribution import Comparison, Delta, compare_traces, request_latencies

TOP_NAMES = 10
TOP_STEPS = 5


def compare_report(emulated: TraceReader, real: TraceReader, top: int = TOP_NAMES) -> dict:
    """Everything `revati compare` prints, as one JSON-ready dict."""
    c = compare_traces(emulated, real)
    return {
        "emulated": _trace(emulated),
        "real": _trace(real),
        "total": _delta(c.deltas[0]),
        "figures": [_delta(d) for d in c.deltas[1:]],
        "alignment": _alignment(c),
        "steps": _steps(_step_lengths(emulated), _step_lengths(real)),
        "families": [asdict(f) | {"error_pct": f.error_pct} for f in c.families],
        "kernel_names": kernel_name_errors(c.alignments)[:top],
        "split": _split(emulated, real),
        "serving": _serving(emulated, real),
    }


def _trace(r: TraceReader) -> dict:
    run = r.run()
    return {"path": str(r.path), "source": run.get("source"), "device": run.get("device")}


def _delta(d: Delta) -> dict:
    return {
        "label": d.label,
        "emulated_ns": d.emulated_ns,
        "real_ns": d.real_ns,
        "delta_ns": d.delta_ns,
        "error_pct": d.error_pct,
    }


def _alignment(c: Comparison) -> dict:
    streams = []
    for a in c.alignments:
        e, r = a.emulated, a.real
        emu = sum(int(e.duration_ns[i]) for i, _ in a.pairs) if e is not None else 0
        rea = sum(int(r.duration_ns[j]) for _, j in a.pairs) if r is not None else 0
        streams.append(
            {
                "rank": a.rank,
                "emulated_stream": e.label if e is not None else None,
                "real_stream": r.label if r is not None else None,
                "emulated_ops": len(e) if e is not None else 0,
                "real_ops": len(r) if r is not None else 0,
                "matched": len(a.pairs),
                "extra": len(a.extra),
                "missing": len(a.missing),
                "matched_emulated_ns": emu,
                "matched_real_ns": rea,
            }
        )
    return {"matched": c.matched, "extra": c.extra, "missing": c.missing, "streams": streams}


def kernel_name_errors(alignments: Iterable[StreamAlignment]) -> list[dict]:
    """Matched ops grouped by normalised name, largest |emulated - real| total first."""
    acc: dict[str, list[int]] = {}
    for a in alignments:
        e, r = a.emulated, a.real
        if e is None or r is None:
            continue
        for i, j in a.pairs:
            row = acc.setdefault(normalize_name(r.names[j]) or r.names[j], [0, 0, 0])
            row[0] += 1
            row[1] += int(e.duration_ns[i])
            row[2] += int(r.duration_ns[j])
    ranked = sorted(acc.items(), key=lambda kv: (-abs(kv[1][1] - kv[1][2]), kv[0]))
    return [
        {
            "name": name,
            "count": n,
            "emulated_ns": emu,
            "real_ns": real,
            "delta_ns": emu - real,
            "error_pct": 100.0 * (emu - real) / real if real else None,
        }
        for name, (n, emu, real) in ranked
    ]


# ---- steps ---------------------------------------------------------------------------------

_BUSIEST_THREAD = """
SELECT thread_id FROM syncs WHERE resumed_ns IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC,
thread_id LIMIT 1
"""


def _step_lengths(r: TraceReader) -> np.ndarray:
    """Lengths of the steps of the busiest host thread: from one sync's resume to the next's."""
    rows = r.sql(_BUSIEST_THREAD)
    if not rows:
        return np.zeros(0, dtype=np.int64)
    ends = r.sql(
        "SELECT resumed_ns FROM syncs WHERE thread_id = ? ORDER BY resumed_ns", [rows[0][0]]
    )
    t0, _ = r.time_range()
    marks = np.array([t0, *(x for (x,) in ends)], dtype=np.int64)
    return np.diff(marks)


def _steps(emu: np.ndarray, real: np.ndarray) -> dict:
    n = min(len(emu), len(real))
    out: dict[str, Any] = {"emulated_steps": len(emu), "real_steps": len(real), "compared": n}
    if not n:
        return out
    d = emu[:n] - real[:n]
    rel = np.where(real[:n] > 0, d / np.maximum(real[:n], 1), 0.0)
    worst = np.argsort(-np.abs(d), kind="stable")[:TOP_STEPS]
    out |= {
        "emulated_total_ns": int(emu[:n].sum()),
        "real_total_ns": int(real[:n].sum()),
        "mean_abs_error_pct": float(100 * np.abs(rel).mean()),
        "worst": [
            {
                "step": int(i),
                "emulated_ns": int(emu[i]),
                "real_ns": int(real[i]),
                "delta_ns": int(d[i]),
                "error_pct": float(100 * rel[i]),
            }
            for i in worst
        ],
    }
    return out


# ---- device / host / barrier split -----------------------------------------------------------

_DEVICE = """SELECT coalesce(sum(end_ns - start_ns), 0) FROM (
    SELECT start_ns, end_ns FROM kernels WHERE kernel_id NOT IN (
        SELECT kernel_id FROM barrier_arrivals WHERE kernel_id IS NOT NULL)
    UNION ALL SELECT start_ns, end_ns FROM copies UNION ALL SELECT start_ns, end_ns FROM memsets)"""
_THREAD_SPAN = """SELECT coalesce(sum(hi - lo), 0) FROM (
    SELECT thread_id, min(enter_ns) AS lo, max(exit_ns) AS hi FROM api_calls GROUP BY 1)"""
_BLOCKED = "SELECT coalesce(sum(resumed_ns - blocked_ns), 0) FROM syncs"
_BARRIER_WAIT = """SELECT coalesce(sum(b.release_ns - a.arrival_ns), 0)
    FROM barrier_arrivals a JOIN barriers b USING (barrier_id)"""


def _parts(r: TraceReader) -> dict[str, float]:
    def one(sql: str) -> float:
        return float(r.sql(sql)[0][0] or 0)

    return {
        "device": one(_DEVICE),
        "host": max(one(_THREAD_SPAN) - one(_BLOCKED), 0.0),
        "barrier_wait": one(_BARRIER_WAIT),
    }


def _split(emulated: TraceReader, real: TraceReader) -> list[dict]:
    e, r = _parts(emulated), _parts(real)
    total = sum(abs(e[k] - r[k]) for k in e) or 1.0
    return [
        {
            "part": k,
            "emulated_ns": e[k],
            "real_ns": r[k],
            "delta_ns": e[k] - r[k],
            "share": (e[k] - r[k]) / total,
        }
        for k in e
    ]


# ---- serving ---------------------------------------------------------------------------------


def serving_figures(r: TraceReader) -> dict[str, float | None]:
    """TTFT, TPOT (mean ns) and throughput (requests/s) of a trace, None where it has none:
    from its `requests` rows (successful ones; the span covers all) as `revati report` computes
    them, else from request markers."""
    if r.sql("SELECT count(*) FROM requests")[0][0]:
        ttft, tpot, n = r.sql(
            "SELECT avg(first_token_ns - arrival_ns), avg((end_ns - first_token_ns) / "
            "(output_tokens - 1)) FILTER (WHERE output_tokens > 1), count(*) FROM requests "
            "WHERE status = 'ok' AND first_token_ns IS NOT NULL"
        )[0]
        span = r.sql("SELECT max(end_ns) - min(arrival_ns) FROM requests")[0][0]
        return _figures(ttft, tpot, n, span)
    ttft, tpot = request_latencies(r)
    n, span = r.sql(
        "SELECT count(DISTINCT request_id) FILTER (WHERE kind = 'last_token'), "
        "max(at_ns) FILTER (WHERE kind = 'last_token') - "
        "min(at_ns) FILTER (WHERE kind = 'request_arrival') FROM markers "
        "WHERE request_id IS NOT NULL"
    )[0]
    return _figures(ttft, tpot, n, span)


def _figures(ttft: Any, tpot: Any, n: Any, span: Any) -> dict[str, float | None]:
    throughput = n / (span / 1e9) if n and span else None
    return {
        "ttft_ns": float(ttft) if ttft is not None else None,
        "tpot_ns": float(tpot) if tpot is not None else None,
        "requests": int(n or 0),
        "throughput_rps": throughput,
    }


def _serving(emulated: TraceReader, real: TraceReader) -> dict | None:
    e, r = serving_figures(emulated), serving_figures(real)
    if not e["requests"] and not r["requests"] and e["ttft_ns"] is None and r["ttft_ns"] is None:
        return None
    return {"emulated": e, "real": r}
