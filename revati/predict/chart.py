"""A text scatter chart of predicted against measured durations (log-log), one letter per family."""

from __future__ import annotations

import numpy as np

MARKS = {
    "gemm": "g",
    "attention": "a",
    "collective": "c",
    "elementwise": "e",
    "memcpy": "m",
    "memset": "s",
}


def scatter_chart(
    measured_ns: np.ndarray,
    predicted_ns: np.ndarray,
    families: np.ndarray,
    width: int = 60,
    height: int = 20,
) -> str:
    """Lines of a chart: x = measured, y = predicted, both log10 µs; '.' marks y = x."""
    if len(measured_ns) == 0:
        return "(no held-out records)"
    mx = np.log10(np.maximum(measured_ns, 1) / 1e3)
    py = np.log10(np.maximum(predicted_ns, 1) / 1e3)
    lo = float(np.floor(min(mx.min(), py.min())))
    hi = float(np.ceil(max(mx.max(), py.max())))
    hi = hi if hi > lo else lo + 1
    grid = [[" "] * width for _ in range(height)]
    for c in range(width):
        r = round((c / (width - 1)) * (height - 1))
        grid[height - 1 - r][c] = "."
    cols = np.round((mx - lo) / (hi - lo) * (width - 1)).astype(int)
    rows = np.round((py - lo) / (hi - lo) * (height - 1)).astype(int)
    for c, r, fam in zip(cols, rows, families, strict=True):
        grid[height - 1 - r][c] = MARKS.get(str(fam), "?")
    lines = ["predicted (µs, log) ↑   letters: " + " ".join(f"{v}={k}" for k, v in MARKS.items())]
    for i, row in enumerate(grid):
        value = hi - (hi - lo) * i / (height - 1)
        label = f"{10**value:>9.3g} |" if i in (0, height // 2, height - 1) else " " * 10 + "|"
        lines.append(label + "".join(row))
    lines.append(" " * 10 + "+" + "-" * width)
    lines.append(
        " " * 10 + f"{10**lo:<.3g}".ljust(width // 2) + f"{10**hi:>.3g}".rjust(width - width // 2)
    )
    lines.append(" " * 10 + "measured (µs, log) →   '.' = exact")
    return "\n".join(lines)
