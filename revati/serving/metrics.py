"""Serving metrics of a set of requests, with the names and layout of vLLM's serving benchmark.

Definitions (all from the client's times): TTFT = first token - arrival; TPOT = (end - first
token) / (output tokens - 1), over requests with more than one token; ITL = every gap between
consecutive tokens of a request (0 between tokens that came in one chunk); E2EL = end - arrival; duration = last end - first arrival.
Percentiles interpolate linearly (numpy's default, as vLLM). Goodput counts the successful
requests within every given SLO (milliseconds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from revati.errors import RevatiUsageError

SLO_METRICS = ("ttft", "tpot", "e2el")
LATENCIES = (
    ("ttft", "Time to First Token", "TTFT"),
    ("tpot", "Time per Output Token (excl. 1st token)", "TPOT"),
    ("itl", "Inter-token Latency", "ITL"),
    ("e2el", "End-to-end Latency", "E2EL"),
)


@dataclass(frozen=True)
class RequestTimes:
    """One request's times in ns; `tokens` holds the receive time of each output token."""

    arrival: int
    end: int
    prompt_tokens: int
    tokens: Sequence[int]
    ok: bool = True

    @property
    def ttft(self) -> int:
        return self.tokens[0] - self.arrival

    @property
    def tpot(self) -> float | None:
        n = len(self.tokens)
        return (self.end - self.tokens[0]) / (n - 1) if n > 1 else None


def parse_slo(text: str | None) -> dict[str, float]:
    """'ttft:200,tpot:50' -> {'ttft': 200.0, 'tpot': 50.0} (milliseconds)."""
    if not text:
        return {}
    slo = {}
    for part in text.split(","):
        name, _, value = part.partition(":")
        try:
            ms = float(value)
        except ValueError:
            ms = -1.0
        if name.strip() not in SLO_METRICS or ms <= 0:
            raise RevatiUsageError(
                f"--slo {text!r}: give NAME:MILLISECONDS pairs, NAME one of {', '.join(SLO_METRICS)}"
            )
        slo[name.strip()] = ms
    return slo


def _stats(name: str, values_ns: Sequence[float]) -> dict[str, float]:
    """Mean, median, std and p99 in ms. The values are sorted first, so the figures do not depend
    on the order requests finished in (the client's) or are stored in (the trace's) to the last
    bit: floating-point sums depend on their order."""
    ms = np.sort(np.asarray(values_ns, dtype=np.float64)) / 1e6 if len(values_ns) else np.zeros(1)
    return {
        f"mean_{name}_ms": float(np.mean(ms)),
        f"median_{name}_ms": float(np.median(ms)),
        f"std_{name}_ms": float(np.std(ms)),
        f"p99_{name}_ms": float(np.percentile(ms, 99)),
    }


def _good(r: RequestTimes, slo: dict[str, float]) -> bool:
    values = {"ttft": r.ttft, "tpot": r.tpot or 0.0, "e2el": r.end - r.arrival}
    return all(values[k] <= ms * 1e6 for k, ms in slo.items())


@dataclass
class ServingReport:
    """The figures of vLLM's benchmark_serving, as a dict under its key names."""

    figures: dict[str, Any] = field(default_factory=dict)
    has_goodput: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(self.figures)


def compute(requests: Sequence[RequestTimes], slo: dict[str, float] | None = None) -> ServingReport:
    done = [r for r in requests if r.ok and r.tokens]
    duration_ns = max(r.end for r in requests) - min(r.arrival for r in requests) if requests else 0
    duration = duration_ns / 1e9
    input_tokens = sum(r.prompt_tokens for r in done)
    output_tokens = sum(len(r.tokens) for r in done)
    per_s = (lambda x: x / duration) if duration > 0 else (lambda x: 0.0)
    figures: dict[str, Any] = {
        "completed": len(done),
        "failed": len(requests) - len(done),
        "duration": duration,
        "total_input_tokens": input_tokens,
        "total_output_tokens": output_tokens,
        "request_throughput": per_s(len(done)),
        "output_throughput": per_s(output_tokens),
        "total_token_throughput": per_s(input_tokens + output_tokens),
    }
    if slo:
        figures["request_goodput"] = per_s(sum(_good(r, slo) for r in done))
    figures |= _stats("ttft", [r.ttft for r in done])
    figures |= _stats("tpot", [t for r in done if (t := r.tpot) is not None])
    figures |= _stats("itl", [int(g) for r in done for g in np.diff(r.tokens)])
    figures |= _stats("e2el", [r.end - r.arrival for r in done])
    return ServingReport(figures, bool(slo))


def format_report(report: ServingReport) -> str:
    """The text vLLM's benchmark prints, line for line."""
    f = report.figures
    lines = ["{s:{c}^{n}}".format(s=" Serving Benchmark Result ", n=50, c="=")]

    def row(label: str, value: Any) -> None:
        fmt = "{:<40} {:<10.2f}" if isinstance(value, float) else "{:<40} {:<10}"
        lines.append(fmt.format(label, value))

    row("Successful requests:", f["completed"])
    row("Failed requests:", f["failed"])
    row("Benchmark duration (s):", f["duration"])
    row("Total input tokens:", f["total_input_tokens"])
    row("Total generated tokens:", f["total_output_tokens"])
    row("Request throughput (req/s):", f["request_throughput"])
    if report.has_goodput:
        row("Request goodput (req/s):", f["request_goodput"])
    row("Output token throughput (tok/s):", f["output_throughput"])
    row("Total Token throughput (tok/s):", f["total_token_throughput"])
    for key, title, short in LATENCIES:
        lines.append("{s:{c}^{n}}".format(s=title, n=50, c="-"))
        row(f"Mean {short} (ms):", f[f"mean_{key}_ms"])
        row(f"Median {short} (ms):", f[f"median_{key}_ms"])
        row(f"P99 {short} (ms):", f[f"p99_{key}_ms"])
    lines.append("=" * 50)
    return "\n".join(lines)
