"""Text formatting of virtual times and durations for the TUI."""

from __future__ import annotations

_UNITS = ((1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "µs"))


def fmt_ns(ns: float | int | None, *, signed: bool = False) -> str:
    """A duration or time in ns as a short human string: 12.5 µs, 3.2 ms, 1.05 s."""
    if ns is None:
        return "—"
    sign = "+" if signed and ns > 0 else ""
    mag = abs(ns)
    for scale, unit in _UNITS:
        if mag >= scale:
            return f"{sign}{ns / scale:.4g} {unit}"
    return f"{sign}{int(ns)} ns"


def fmt_pct(p: float | None) -> str:
    return "—" if p is None else f"{p:+.1f}%"


def parse_time(text: str) -> int:
    """'1.5ms', '200us', '3s', '1234' (ns) -> ns; ValueError if malformed."""
    s = text.strip().lower().replace(" ", "").replace("µ", "u")
    for suffix, scale in (("ns", 1), ("us", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000)):
        if s.endswith(suffix):
            return int(float(s[: -len(suffix)]) * scale)
    return int(float(s))
