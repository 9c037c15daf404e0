"""Alignment of an emulated trace to a real one: per rank and stream, device op by device op.

Two traces of the same workload run the same kernels in (nearly) the same order on each stream,
but either side can miss some (a kernel the importer dropped, a warm-up launch the emulator did
not see) or have extra ones. `align_names` matches two sequences of kernel names with a
shortest-edit-script diff (Myers), so a missing or extra kernel costs one gap instead of
shifting everything after it. Names are normalised first (`normalize_name`), because the same
kernel is spelled differently by a demangler, a profiler and the CUDA runtime.

Streams are paired per rank by how many kernel names they share; ranks by their order.
`load_device_ops` reads the sequences from a trace; `align_traces` returns one `StreamAlignment`
per stream pair. `replay/attribution.py` turns alignments into error per kernel family.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from revati.recorder.reader import TraceReader

# Above this edit distance the diff gives up and a greedy look-ahead matcher finishes the job.
MAX_EDIT_DISTANCE = 4000
GREEDY_LOOKAHEAD = 64

NO_RANK = object()  # pair_ranks: this side has no such rank
_TEMPLATE = re.compile(r"<[^<>]*>")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class DeviceOps:
    """The device operations of one stream of one trace, in start order (columnar)."""

    rank: int | None
    stream_id: int
    label: str
    names: list[str]
    start_ns: np.ndarray  # int64
    duration_ns: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class StreamAlignment:
    """Matched device ops of one emulated stream and one real stream.

    `pairs` holds (emulated index, real index) for every match; `extra` the emulated ops with no
    real counterpart, `missing` the real ops the emulated trace lacks.
    """

    rank: int | None
    emulated: DeviceOps | None
    real: DeviceOps | None
    pairs: list[tuple[int, int]]
    extra: list[int]
    missing: list[int]


def normalize_name(name: str) -> str:
    """A kernel name reduced to what every tool spells the same way."""
    s = name.strip()
    for prefix in ("void ", "__global__ "):
        if s.startswith(prefix):
            s = s[len(prefix) :]
    cut = s.find("(")
    if cut > 0:
        s = s[:cut]
    prev = None
    while prev != s:  # drop template arguments, innermost first
        prev, s = s, _TEMPLATE.sub("", s)
    return _SPACE.sub("", s)


def align_names(emulated: Sequence[str], real: Sequence[str]) -> list[tuple[int, int]]:
    """Index pairs (i, j) matching emulated[i] to real[j]; order-preserving, as many as possible."""
    codes: dict[str, int] = {}
    a = np.array(
        [codes.setdefault(normalize_name(n), len(codes)) for n in emulated], dtype=np.int64
    )
    b = np.array([codes.setdefault(normalize_name(n), len(codes)) for n in real], dtype=np.int64)
    return align_codes(a, b)


def align_codes(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int]]:
    """`align_names` on integer codes: common prefix and suffix first, then a diff of the rest."""
    n, m = len(a), len(b)
    k = min(n, m)
    prefix = int(np.argmin(a[:k] == b[:k])) if k and not np.array_equal(a[:k], b[:k]) else k
    rest = k - prefix
    tail_eq = a[n - rest :][::-1] == b[m - rest :][::-1] if rest else np.zeros(0, dtype=bool)
    suffix = rest if tail_eq.all() else int(np.argmin(tail_eq))
    pairs = [(i, i) for i in range(prefix)]
    mid_a, mid_b = a[prefix : n - suffix], b[prefix : m - suffix]
    middle = _myers(mid_a.tolist(), mid_b.tolist())
    if middle is None:
        middle = _greedy(mid_a.tolist(), mid_b.tolist())
    pairs.extend((prefix + i, prefix + j) for i, j in middle)
    pairs.extend((n - suffix + i, m - suffix + i) for i in range(suffix))
    return pairs


def _myers(a: list[int], b: list[int]) -> list[tuple[int, int]] | None:
    """Matched pairs of a shortest edit script (Myers 1986); None past MAX_EDIT_DISTANCE."""
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        return []
    offset = n + m + 1
    v = [0] * (2 * offset + 1)
    trace: list[list[int]] = []
    for d in range(min(n + m, MAX_EDIT_DISTANCE) + 1):
        trace.append(v[offset - d - 1 : offset + d + 2])
        for k in range(-d, d + 1, 2):
            if k == -d or (k != d and v[offset + k - 1] < v[offset + k + 1]):
                x = v[offset + k + 1]
            else:
                x = v[offset + k - 1] + 1
            y = x - k
            while x < n and y < m and a[x] == b[y]:
                x += 1
                y += 1
            v[offset + k] = x
            if x >= n and y >= m:
                return _backtrack(trace, a, b, n, m)
    return None


def _backtrack(
    trace: list[list[int]], a: list[int], b: list[int], n: int, m: int
) -> list[tuple[int, int]]:
    pairs = []
    x, y = n, m
    for d in range(len(trace) - 1, 0, -1):
        vd = trace[d]  # V before round d, stored for k in [-d-1, d+1]

        def at(k: int, vd: list[int] = vd, d: int = d) -> int:
            return vd[k + d + 1]

        k = x - y
        prev_k = k + 1 if k == -d or k != d and at(k - 1) < at(k + 1) else k - 1
        prev_x = at(prev_k)
        prev_y = prev_x - prev_k
        while x > prev_x and y > prev_y and a[x - 1] == b[y - 1]:
            x, y = x - 1, y - 1
            pairs.append((x, y))
        x, y = prev_x, prev_y
    while x > 0 and y > 0:
        x, y = x - 1, y - 1
        pairs.append((x, y))
    pairs.reverse()
    return pairs


def _greedy(a: list[int], b: list[int]) -> list[tuple[int, int]]:
    """Walk both sequences; on a mismatch skip whichever side finds the other sooner."""
    pairs, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
            continue
        in_b = _find(b, a[i], j + 1)
        in_a = _find(a, b[j], i + 1)
        if in_b is not None and (in_a is None or in_b - j <= in_a - i):
            j = in_b
        elif in_a is not None:
            i = in_a
        else:
            i, j = i + 1, j + 1
    return pairs


def _find(seq: list[int], value: int, start: int) -> int | None:
    for idx in range(start, min(len(seq), start + GREEDY_LOOKAHEAD)):
        if seq[idx] == value:
            return idx
    return None


# ---- traces --------------------------------------------------------------------------------

_OPS_SQL = """
SELECT p.rank, o.stream_id, o.name, o.start_ns, o.end_ns - o.start_ns AS dur
FROM (
    SELECT stream_id, name, start_ns, end_ns, kernel_id AS id, 0 AS k FROM kernels
    UNION ALL SELECT stream_id, 'memcpy ' || coalesce(kind, '?'), start_ns, end_ns, copy_id, 1 FROM copies
    UNION ALL SELECT stream_id, 'memset', start_ns, end_ns, memset_id, 2 FROM memsets
) o
LEFT JOIN streams s USING (stream_id)
LEFT JOIN processes p ON p.pid = s.pid
WHERE o.start_ns IS NOT NULL AND o.end_ns IS NOT NULL
ORDER BY o.stream_id, o.start_ns, o.k, o.id
"""


def load_device_ops(reader: TraceReader) -> list[DeviceOps]:
    """Every stream's kernels, copies and memsets, in start order."""
    rows = reader.sql(_OPS_SQL)
    out: list[DeviceOps] = []
    i = 0
    while i < len(rows):
        j = i
        while j < len(rows) and rows[j][1] == rows[i][1]:
            j += 1
        chunk = rows[i:j]
        rank, sid = chunk[0][0], chunk[0][1]
        label = f"rank {rank} · stream {sid}" if rank is not None else f"stream {sid}"
        out.append(
            DeviceOps(
                rank,
                int(sid),
                label,
                [r[2] or "" for r in chunk],
                np.array([r[3] for r in chunk], dtype=np.int64),
                np.array([r[4] for r in chunk], dtype=np.int64),
            )
        )
        i = j
    return out


def pair_ranks(emulated: list[int | None], real: list[int | None]) -> list[tuple[Any, Any]]:
    """Ranks matched by value (one-rank traces always pair); NO_RANK marks a rank with no partner."""
    if len(emulated) == 1 and len(real) == 1:
        return [(emulated[0], real[0])]
    pairs: list[tuple[Any, Any]] = [(r, r) for r in emulated if r in real]
    pairs += [(r, NO_RANK) for r in emulated if r not in real]
    pairs += [(NO_RANK, r) for r in real if r not in emulated]
    return pairs


def pair_streams(
    emulated: list[DeviceOps], real: list[DeviceOps]
) -> list[tuple[DeviceOps | None, DeviceOps | None]]:
    """Pair streams greedily by the number of normalised kernel names they share."""
    bags_e = [Counter(normalize_name(n) for n in s.names) for s in emulated]
    bags_r = [Counter(normalize_name(n) for n in s.names) for s in real]
    scores = sorted(
        (
            (sum((be & br).values()), i, j)
            for i, be in enumerate(bags_e)
            for j, br in enumerate(bags_r)
        ),
        key=lambda x: (-x[0], x[1], x[2]),
    )
    used_e: set[int] = set()
    used_r: set[int] = set()
    out: list[tuple[DeviceOps | None, DeviceOps | None]] = []
    for score, i, j in scores:
        if score == 0 or i in used_e or j in used_r:
            continue
        used_e.add(i)
        used_r.add(j)
        out.append((emulated[i], real[j]))
    out += [(s, None) for i, s in enumerate(emulated) if i not in used_e]
    out += [(None, s) for j, s in enumerate(real) if j not in used_r]
    return out


def align_streams(emulated: list[DeviceOps], real: list[DeviceOps]) -> list[StreamAlignment]:
    """Align two traces' device ops: ranks paired, then streams within a rank, then op by op."""
    e_ranks = list(dict.fromkeys(s.rank for s in emulated))
    r_ranks = list(dict.fromkeys(s.rank for s in real))
    out = []
    for er, rr in pair_ranks(e_ranks, r_ranks):
        es = [s for s in emulated if s.rank == er] if er is not NO_RANK else []
        rs = [s for s in real if s.rank == rr] if rr is not NO_RANK else []
        rank = er if er is not NO_RANK else rr
        for e, r in pair_streams(es, rs):
            pairs = align_names(e.names, r.names) if e is not None and r is not None else []
            matched_e = {i for i, _ in pairs}
            matched_r = {j for _, j in pairs}
            extra = [i for i in range(len(e))] if e is not None else []
            missing = [j for j in range(len(r))] if r is not None else []
            out.append(
                StreamAlignment(
                    rank,
                    e,
                    r,
                    pairs,
                    [i for i in extra if i not in matched_e],
                    [j for j in missing if j not in matched_r],
                )
            )
    return out


def align_traces(emulated: TraceReader, real: TraceReader) -> list[StreamAlignment]:
    return align_streams(load_device_ops(emulated), load_device_ops(real))
