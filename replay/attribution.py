"""Error attribution: where the time difference between an emulated and a real trace comes from.

Given the stream alignments of `replay/alignment.py`, every kernel family gets the total time it
adds to (or removes from) the emulated run: matched ops contribute predicted minus measured
duration, extra ops (only emulated) their whole duration, missing ops (only real) minus theirs.
`share` is a family's delta over the sum of all families' absolute deltas, so the family that
explains most of the gap sorts first. End-to-end figures (total virtual time, per-iteration
time where iterations are marked, TTFT/TPOT where request markers exist, host time, blocked time,
barrier wait) come from the traces themselves.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from revati.recorder.reader import TraceReader
from revati.replay.alignment import StreamAlignment, align_traces

try:
    from revati.predict.families import kernel_family
except ImportError:  # the predictor package is optional for replay

    def kernel_family(name: str) -> str:
        low = name.lower()
        for family, keys in (
            ("collective", ("nccl",)),
            ("attention", ("flash", "fmha", "attention")),
            ("gemm", ("gemm", "gemv", "cutlass", "nvjet")),
            ("memcpy", ("memcpy",)),
            ("memset", ("memset",)),
        ):
            if any(k in low for k in keys):
                return family
        return "elementwise"


@dataclass(frozen=True)
class Delta:
    """One end-to-end figure measured on both traces (None where a trace lacks it)."""

    label: str
    emulated_ns: float | None
    real_ns: float | None

    @property
    def delta_ns(self) -> float | None:
        if self.emulated_ns is None or self.real_ns is None:
            return None
        return self.emulated_ns - self.real_ns

    @property
    def error_pct(self) -> float | None:
        d = self.delta_ns
        return None if d is None or not self.real_ns else 100.0 * d / self.real_ns


@dataclass(frozen=True)
class FamilyError:
    """How much one kernel family contributes to the emulated-minus-real gap."""

    family: str
    count: int  # matched ops
    extra: int  # ops only the emulated trace has
    missing: int  # ops only the real trace has
    emulated_mean_ns: float  # over matched ops
    real_mean_ns: float
    delta_ns: int  # signed contribution to the gap
    share: float  # delta_ns / sum of |delta_ns| over families

    @property
    def error_pct(self) -> float | None:
        if not self.count or not self.real_mean_ns:
            return None
        return 100.0 * (self.emulated_mean_ns - self.real_mean_ns) / self.real_mean_ns


@dataclass(frozen=True)
class Comparison:
    deltas: list[Delta]
    families: list[FamilyError]
    alignments: list[StreamAlignment]

    @property
    def matched(self) -> int:
        return sum(len(a.pairs) for a in self.alignments)

    @property
    def extra(self) -> int:
        return sum(len(a.extra) for a in self.alignments)

    @property
    def missing(self) -> int:
        return sum(len(a.missing) for a in self.alignments)


@dataclass
class _Acc:
    count: int = 0
    extra: int = 0
    missing: int = 0
    emu_sum: int = 0
    real_sum: int = 0
    delta: int = 0


def attribute_families(
    alignments: list[StreamAlignment], family_of: Callable[[str], str] = kernel_family
) -> list[FamilyError]:
    """Per-family contribution to the gap, sorted by |share| (largest first)."""
    acc: dict[str, _Acc] = {}
    cache: dict[str, str] = {}

    def fam(name: str) -> _Acc:
        f = cache.get(name)
        if f is None:
            f = cache[name] = family_of(name)
        return acc.setdefault(f, _Acc())

    for al in alignments:
        e, r = al.emulated, al.real
        for i, j in al.pairs:
            a = fam(r.names[j] if r is not None else "")
            de, dr = int(e.duration_ns[i]), int(r.duration_ns[j])
            a.count += 1
            a.emu_sum += de
            a.real_sum += dr
            a.delta += de - dr
        for i in al.extra:
            a = fam(e.names[i])
            a.extra += 1
            a.delta += int(e.duration_ns[i])
        for j in al.missing:
            a = fam(r.names[j])
            a.missing += 1
            a.delta -= int(r.duration_ns[j])
    total = sum(abs(a.delta) for a in acc.values()) or 1
    out = [
        FamilyError(
            f,
            a.count,
            a.extra,
            a.missing,
            a.emu_sum / a.count if a.count else 0.0,
            a.real_sum / a.count if a.count else 0.0,
            a.delta,
            a.delta / total,
        )
        for f, a in acc.items()
    ]
    out.sort(key=lambda x: (-abs(x.share), x.family))
    return out


# ---- end-to-end figures --------------------------------------------------------------------


def _scalar(reader: TraceReader, query: str) -> float | None:
    rows = reader.sql(query)
    value = rows[0][0] if rows else None
    return None if value is None else float(value)


def total_time(reader: TraceReader) -> float:
    start, end = reader.time_range()
    return float(end - start)


def iteration_time(reader: TraceReader) -> float | None:
    """Mean time between iteration markers, else mean length of ProfilerStep NVTX ranges."""
    rows = reader.sql("SELECT at_ns FROM markers WHERE kind = 'iteration' ORDER BY at_ns")
    if len(rows) >= 2:
        return float(np.mean(np.diff([r[0] for r in rows])))
    return _scalar(
        reader,
        "SELECT avg(end_ns - start_ns) FROM nvtx_ranges "
        "WHERE regexp_matches(name, '^ProfilerStep')",
    )


def request_latencies(reader: TraceReader) -> tuple[float | None, float | None]:
    """Mean TTFT and TPOT over requests with arrival/first-token/last-token markers."""
    rows = reader.sql(
        "SELECT request_id, kind, min(at_ns), max(at_ns), any_value(payload) FROM markers "
        "WHERE request_id IS NOT NULL AND kind IN ('request_arrival', 'first_token', 'last_token')"
        " GROUP BY 1, 2"
    )
    per: dict[str, dict[str, tuple[int, str | None]]] = {}
    for rid, kind, lo, hi, payload in rows:
        per.setdefault(rid, {})[kind] = (hi if kind == "last_token" else lo, payload)
    ttft, tpot = [], []
    for marks in per.values():
        if "request_arrival" in marks and "first_token" in marks:
            ttft.append(marks["first_token"][0] - marks["request_arrival"][0])
        if "first_token" in marks and "last_token" in marks:
            tokens = _output_tokens(marks["last_token"][1])
            if tokens and tokens > 1:
                tpot.append((marks["last_token"][0] - marks["first_token"][0]) / (tokens - 1))
    return (float(np.mean(ttft)) if ttft else None, float(np.mean(tpot)) if tpot else None)


def _output_tokens(payload: str | None) -> int | None:
    if not payload:
        return None
    try:
        data = json.loads(payload)
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    value = data.get("output_tokens", data.get("tokens"))
    return int(value) if isinstance(value, int | float) else None


def host_times(reader: TraceReader) -> tuple[float, float]:
    """(time inside API calls not blocked, time blocked in syncs), summed over threads."""
    api = _scalar(reader, "SELECT sum(exit_ns - enter_ns) FROM api_calls") or 0.0
    blocked = _scalar(reader, "SELECT sum(resumed_ns - blocked_ns) FROM syncs") or 0.0
    return max(api - blocked, 0.0), blocked


def barrier_wait(reader: TraceReader) -> float:
    return (
        _scalar(
            reader,
            "SELECT sum(b.release_ns - a.arrival_ns) FROM barrier_arrivals a "
            "JOIN barriers b USING (barrier_id)",
        )
        or 0.0
    )


def end_to_end(emulated: TraceReader, real: TraceReader) -> list[Delta]:
    e_ttft, e_tpot = request_latencies(emulated)
    r_ttft, r_tpot = request_latencies(real)
    e_host, e_blocked = host_times(emulated)
    r_host, r_blocked = host_times(real)
    out = [Delta("total time", total_time(emulated), total_time(real))]
    e_it, r_it = iteration_time(emulated), iteration_time(real)
    if e_it is not None or r_it is not None:
        out.append(Delta("per iteration", e_it, r_it))
    if e_ttft is not None or r_ttft is not None:
        out.append(Delta("TTFT", e_ttft, r_ttft))
    if e_tpot is not None or r_tpot is not None:
        out.append(Delta("TPOT", e_tpot, r_tpot))
    out += [
        Delta("host time in API calls", e_host, r_host),
        Delta("host time blocked", e_blocked, r_blocked),
        Delta("barrier wait", barrier_wait(emulated), barrier_wait(real)),
    ]
    return out


def compare_traces(emulated: TraceReader, real: TraceReader) -> Comparison:
    """Align `emulated` to `real` and attribute the difference."""
    alignments = align_traces(emulated, real)
    return Comparison(end_to_end(emulated, real), attribute_families(alignments), alignments)
