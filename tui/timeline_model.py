"""TimelineModel: what a timeline draws, as per-track lanes of numpy arrays (no textual here).

Each track's events are split into layers (a thread's API calls, its blocked periods, its NVTX
ranges and markers; a stream's device operations) taken from the reader's event index. A layer
keeps its events' seqs, starts and a running maximum of ends, so the event covering each of a
row's columns is one vectorised binary search: drawing a row costs O(width · log n), whatever the
zoom. Rows are returned as lists of (text, style name) cells and cached per window and width.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from revati.recorder.overview import Overview
from revati.recorder.reader import TraceReader, Track
from revati.replay.requests import RequestBar, Requests


def _family_classifier() -> Callable[[str], str]:
    """revati.predict's kernel-family classifier, imported late (it pulls in the predictors)."""
    try:
        from revati.predict.families import kernel_family
    except ImportError:  # optional inside revati: a crude stand-in
        return lambda name: "collective" if "nccl" in name.lower() else "elementwise"
    return kernel_family


LAYER_OF_KIND = {
    "api_call": "call",
    "sync": "sync",
    "nvtx": "nvtx",
    "marker": "marker",
    "kernel": "device",
    "copy": "device",
    "memset": "device",
}
# Thread rows draw NVTX ranges and markers under API calls, blocked periods on top.
THREAD_LAYERS = ("nvtx", "marker", "call", "sync")
CACHE_ROWS = 512
CONNECTOR_SPACING = 6  # draw barrier connectors only with at least this many columns per barrier

Cell = tuple[str, str]  # (one character, style name)


@dataclass
class Lane:
    """Events of one layer of one track, sorted by start."""

    seqs: np.ndarray
    starts: np.ndarray
    reach: np.ndarray  # running max of max(end, start + 1): covers instants too

    @classmethod
    def of(cls, seqs: np.ndarray, start_ns: np.ndarray, end_ns: np.ndarray) -> Lane:
        seqs = np.sort(seqs)
        starts = start_ns[seqs]
        ends = np.maximum(end_ns[seqs], starts + 1)
        return cls(seqs, starts, np.maximum.accumulate(ends) if len(ends) else ends)

    def cover(self, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        """Per column [t0, t1): the lane index of the last event starting before t1 that still
        reaches into the column, or -1."""
        i = np.searchsorted(self.starts, t1, side="left") - 1
        ok = i >= 0
        j = np.where(ok, i, 0)
        ok &= self.reach[j] > t0 if len(self.reach) else False
        return np.where(ok, i, -1)


def dedupe_words(text: str) -> str:
    """'stream stream 7' -> 'stream 7' (a wait kind repeated by its target)."""
    words = text.split()
    if len(words) > 1 and words[0] == words[1]:
        words = words[1:]
    return " ".join(words)


def short_name(name: str) -> str:
    """A kernel or call name shortened for a label: no 'void', no template or argument lists."""
    s = name[5:] if name.startswith("void ") else name
    cut = s.find("(")
    s = s[:cut] if cut > 0 else s
    prev = None
    while prev != s:
        prev, s = s, re.sub(r"<[^<>]*>", "", s)
    return s.rsplit("::", 1)[-1] or name


class TimelineModel:
    """Lanes, barriers and jumps of one trace, and the cells of every row."""

    def __init__(self, reader: TraceReader) -> None:
        self.reader = reader
        ix = reader.index
        self.ix = ix
        self.t_min, self.t_max = reader.time_range()
        self.requests = Requests(reader)
        self.request_lanes = self.requests.lanes()
        self.all_tracks = request_tracks(len(self.request_lanes)) + reader.tracks()
        self.tracks = list(self.all_tracks)
        self.group_style = np.array(group_styles(ix.group_kind, ix.group_name), dtype=object)
        self.lanes: dict[tuple[str, str], Lane] = {}
        self._build_lanes()
        jumps = self._kind_seqs("jump")
        self.jump_ns = ix.start_ns[jumps]
        self._build_barriers()
        self._cache: OrderedDict[tuple[object, ...], list[Cell]] = OrderedDict()

    def request_track(self, request_id: int) -> str | None:
        """track_id of the requests row that draws request_id."""
        for k, lane in enumerate(self.request_lanes):
            if any(b.request_id == request_id for b in lane):
                return f"requests:{k}"
        return None

    def _kind_seqs(self, kind: str) -> np.ndarray:
        groups = np.flatnonzero(self.ix.group_kind == kind)
        return self._seqs_of(groups)

    def _seqs_of(self, groups: np.ndarray) -> np.ndarray:
        ix = self.ix
        parts = [ix.csr[ix.offsets[g] : ix.offsets[g + 1]] for g in groups]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def _build_lanes(self) -> None:
        ix = self.ix
        by_layer: dict[tuple[str, str], list[int]] = {}
        for g, (kind, track) in enumerate(zip(ix.group_kind, ix.group_track, strict=True)):
            if track is None or kind not in LAYER_OF_KIND:
                continue
            by_layer.setdefault((track, LAYER_OF_KIND[kind]), []).append(g)
        for key, groups in by_layer.items():
            self.lanes[key] = Lane.of(self._seqs_of(np.array(groups)), ix.start_ns, ix.end_ns)

    def _build_barriers(self) -> None:
        """Barrier releases (sorted) and their arrivals in CSR form, straight from DuckDB."""
        con = self.reader.con
        b = con.execute(
            "SELECT barrier_id, release_ns FROM barriers WHERE release_ns IS NOT NULL "
            "ORDER BY release_ns, barrier_id"
        ).fetchnumpy()
        self.barrier_id = np.asarray(b["barrier_id"], dtype=np.int64)
        self.barrier_release = np.asarray(b["release_ns"], dtype=np.int64)
        a = con.execute(
            "SELECT barrier_id, coalesce(rank, -1) AS rank, coalesce(stream_id, -1) AS sid, "
            "arrival_ns FROM barrier_arrivals WHERE arrival_ns IS NOT NULL"
        ).fetchnumpy()
        arrival_ids = np.asarray(a["barrier_id"], dtype=np.int64)
        order = np.argsort(self.barrier_id, kind="stable")
        sorted_ids = self.barrier_id[order]
        where = np.clip(np.searchsorted(sorted_ids, arrival_ids), 0, max(len(order) - 1, 0))
        known = sorted_ids[where] == arrival_ids if len(order) else np.zeros(0, dtype=bool)
        pos = np.where(known, order[where] if len(order) else where, len(order))
        o = np.argsort(pos, kind="stable")
        self.arrival_barrier = pos[o]
        self.arrival_rank = np.asarray(a["rank"], dtype=np.int64)[o]
        self.arrival_track = np.array(
            [f"stream:{s}" for s in np.asarray(a["sid"])[o]], dtype=object
        )
        self.arrival_ns = np.asarray(a["arrival_ns"], dtype=np.int64)[o]
        self.arrival_offsets = np.searchsorted(
            self.arrival_barrier, np.arange(len(self.barrier_id) + 1)
        )

    # ---- track filter --------------------------------------------------------------------------

    def set_filter(self, pattern: str | None) -> int:
        """Show only tracks whose label matches the regex (None: all); returns how many."""
        if not pattern:
            self.tracks = list(self.all_tracks)
        else:
            rx = re.compile(pattern, re.I)
            self.tracks = [
                t for t in self.all_tracks if rx.search(t.label) or rx.search(t.track_id)
            ]
        self._cache.clear()
        return len(self.tracks)

    # ---- cells ---------------------------------------------------------------------------------

    def columns(self, t0: int, t1: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        edges = t0 + (np.arange(width + 1, dtype=np.float64) * (t1 - t0) / max(width, 1))
        e = edges.astype(np.int64)
        return e[:-1], np.maximum(e[1:], e[:-1] + 1)

    def column_of(self, t: int, t0: int, t1: int, width: int) -> int | None:
        if t1 <= t0 or not t0 <= t < t1 + 1:
            return None
        return min(width - 1, int((t - t0) * width / (t1 - t0)))

    def row_cells(self, track: Track, t0: int, t1: int, width: int) -> list[Cell]:
        key = (track.track_id, t0, t1, width)
        cells = self._cache.get(key)
        if cells is None:
            cells = self._draw_row(track, t0, t1, width)
            self._cache[key] = cells
            if len(self._cache) > CACHE_ROWS:
                self._cache.popitem(last=False)
        return cells

    def _draw_row(self, track: Track, t0: int, t1: int, width: int) -> list[Cell]:
        if track.kind == REQUESTS_KIND:
            return request_cells(self.request_lanes[track.ref_id], self.column_of, t0, t1, width)
        c0, c1 = self.columns(t0, t1, width)
        cells: list[Cell] = [(" ", "empty")] * width
        layers = THREAD_LAYERS if track.kind == "thread" else ("device",)
        for layer in layers:
            lane = self.lanes.get((track.track_id, layer))
            if lane is not None and len(lane.seqs):
                self._paint(cells, lane, lane.cover(c0, c1), layer)
        self._paint_barriers(cells, track, t0, t1, width)
        return cells

    def _paint(self, cells: list[Cell], lane: Lane, idx: np.ndarray, layer: str) -> None:
        fill = {"call": "▬", "sync": "░", "nvtx": "─", "marker": "│", "device": "█"}[layer]
        col = 0
        width = len(idx)
        while col < width:
            i = int(idx[col])
            end = col + 1
            while end < width and idx[end] == i:
                end += 1
            if i >= 0:
                seq = int(lane.seqs[i])
                g = int(self.ix.grp[seq])
                style = "blocked" if layer == "sync" else str(self.group_style[g])
                text = self._label(layer, g, end - col)
                for k in range(col, end):
                    ch = text[k - col] if k - col < len(text) else fill
                    cells[k] = (ch, style + ("-text" if k - col < len(text) else ""))
            col = end

    def _label(self, layer: str, group: int, run: int) -> str:
        if run < 5 or layer in ("marker", "nvtx"):
            return ""
        name = self.ix.group_name[group]
        if layer == "sync":
            name = "⏸ " + dedupe_words(name.removeprefix("sync "))
        elif layer == "device":
            name = short_name(name)
        return name[: run - 1] + (" " if len(name) < run - 1 else "")

    def _paint_barriers(
        self, cells: list[Cell], track: Track, t0: int, t1: int, width: int
    ) -> None:
        lo, hi = self._barrier_span(t0, t1)
        if hi <= lo or hi - lo > width // CONNECTOR_SPACING:
            return  # none, or too dense to read: the header row still marks every release
        rank = -1 if track.rank is None else track.rank
        for b in range(lo, hi):
            a0, a1 = self.arrival_offsets[b], self.arrival_offsets[b + 1]
            if rank not in self.arrival_rank[a0:a1]:
                continue
            col = self.column_of(int(self.barrier_release[b]), t0, t1, width)
            if col is not None:
                cells[col] = ("┃", "barrier")
            for k in range(a0, a1):
                if self.arrival_track[k] == track.track_id:
                    acol = self.column_of(int(self.arrival_ns[k]), t0, t1, width)
                    if acol is not None:
                        cells[acol] = ("◆", "barrier")

    def axis_cells(self, t0: int, t1: int, width: int, every: int = 16) -> list[Cell]:
        from revati.tui.format import fmt_ns

        cells: list[Cell] = [("·" if c % every == 0 else " ", "axis") for c in range(width)]
        # The first tick is the window's virtual time (as the status line and panels show it);
        # the others are offsets from it, which stay readable however far into the run.
        for c in range(0, width, every):
            offset = (t1 - t0) * c / width
            text = fmt_ns(t0) if c == 0 else "+" + fmt_ns(offset)
            label = "┊" + text.replace(" ", "")
            for k, ch in enumerate(label):
                if c + k < width:
                    cells[c + k] = (ch, "axis")
        return cells

    def jump_cells(self, t0: int, t1: int, width: int) -> list[Cell]:
        cells: list[Cell] = [(" ", "empty")] * width
        lo = int(np.searchsorted(self.jump_ns, t0, side="left"))
        hi = int(np.searchsorted(self.jump_ns, t1, side="right"))
        if hi > lo:
            cols = ((self.jump_ns[lo:hi] - t0) * width // max(t1 - t0, 1)).clip(0, width - 1)
            for c in np.unique(cols):
                cells[int(c)] = ("↷", "jump")
        for b in range(*self._barrier_span(t0, t1)):
            col = self.column_of(int(self.barrier_release[b]), t0, t1, width)
            if col is not None and cells[col][0] == " ":
                cells[col] = ("┳", "barrier")
        return cells

    def _barrier_span(self, t0: int, t1: int) -> tuple[int, int]:
        lo = int(np.searchsorted(self.barrier_release, t0, side="left"))
        hi = int(np.searchsorted(self.barrier_release, t1, side="right"))
        return lo, min(hi, lo + 4096)


REQUESTS_KIND = "requests"


def request_tracks(lanes: int) -> list[Track]:
    """One timeline row per lane of request bars, above the threads and streams."""
    return [
        Track(f"requests:{k}", REQUESTS_KIND, -1, None, k, f"requests {k + 1}/{lanes}")
        for k in range(lanes)
    ]


def request_cells(
    bars: list[RequestBar], column_of: Callable[[int, int, int, int], int | None],
    t0: int, t1: int, width: int,
) -> list[Cell]:  # fmt: skip
    """A lane of requests: a bar from arrival to end, ▲ at the first token, `#id` where the
    bar has room; failed requests in red."""
    cells: list[Cell] = [(" ", "empty")] * width
    for bar in bars:
        if bar.end_ns < t0 or bar.arrival_ns > t1:
            continue
        a = column_of(max(bar.arrival_ns, t0), t0, t1, width)
        e = column_of(min(bar.end_ns, t1), t0, t1, width)
        if a is None or e is None:
            continue
        style = "request" if bar.status == "ok" else "request-failed"
        label = f"#{bar.request_id} "
        for c in range(a, e + 1):
            i = c - a
            ch = label[i] if e - a + 1 > len(label) + 1 and i < len(label) else "━"
            cells[c] = (ch, style)
        if bar.first_token_ns is not None and t0 <= bar.first_token_ns <= t1:
            f = column_of(bar.first_token_ns, t0, t1, width)
            if f is not None:
                cells[f] = ("▲", "request-first")
    return cells


def group_styles(kinds: Sequence[str], names: Sequence[str]) -> list[str]:
    """Style name of every group (kernel families classified once per distinct name)."""
    family = _family_classifier()
    cache: dict[tuple[str, str], str] = {}
    out = []
    for k, n in zip(kinds, names, strict=True):
        style = cache.get((k, n))
        if style is None:
            style = cache[(k, n)] = _style_for(k, n, family)
        out.append(style)
    return out


class OverviewModel:
    """The first frame of a big trace, drawn from the overview written at close
    (`revati.recorder.overview`) while the full `TimelineModel` loads: per track and layer one
    group per bucket of the run. Same drawing interface as `TimelineModel`; no cursor, no
    barrier connectors; finer than a bucket it shows each bucket's longest event."""

    def __init__(self, overview: Overview, tracks: list[Track]) -> None:
        self.ov = overview
        self.t_min, self.t_max = overview.t_min, overview.t_max
        self.all_tracks = tracks
        self.tracks = list(tracks)
        self.group_name = overview.group_name
        self.group_style = group_styles(overview.group_kind, overview.group_name)
        self._cache: OrderedDict[tuple[object, ...], list[Cell]] = OrderedDict()

    columns = TimelineModel.columns
    column_of = TimelineModel.column_of
    axis_cells = TimelineModel.axis_cells

    def set_filter(self, pattern: str | None) -> int:
        return len(self.tracks)

    def jump_cells(self, t0: int, t1: int, width: int) -> list[Cell]:
        return [(" ", "empty")] * width

    def row_cells(self, track: Track, t0: int, t1: int, width: int) -> list[Cell]:
        key = (track.track_id, t0, t1, width)
        cells = self._cache.get(key)
        if cells is None:
            cells = self._cache[key] = self._draw_row(track, t0, t1, width)
            if len(self._cache) > CACHE_ROWS:
                self._cache.popitem(last=False)
        return cells

    def _draw_row(self, track: Track, t0: int, t1: int, width: int) -> list[Cell]:
        c0, c1 = self.columns(t0, t1, width)
        b0 = self.ov.bucket_of(c0)
        b1 = self.ov.bucket_of(c1 - 1)
        cells: list[Cell] = [(" ", "empty")] * width
        layers = THREAD_LAYERS if track.kind == "thread" else ("device",)
        for layer in layers:
            groups = self.ov.layers.get((track.track_id, layer))
            if groups is None:
                continue
            # The longest-event group of the column's last bucket (or its first, if empty).
            last = np.where((b1 >= 0) & (b1 < len(groups)), groups[b1.clip(0, len(groups) - 1)], -1)
            first = np.where(
                (b0 >= 0) & (b0 < len(groups)), groups[b0.clip(0, len(groups) - 1)], -1
            )
            self._paint(cells, np.where(last >= 0, last, first), layer)
        return cells

    def _paint(self, cells: list[Cell], groups: np.ndarray, layer: str) -> None:
        fill = {"call": "▬", "sync": "░", "nvtx": "─", "marker": "│", "device": "█"}[layer]
        col, width = 0, len(groups)
        values = groups.tolist()
        while col < width:
            g = values[col]
            end = col + 1
            while end < width and values[end] == g:
                end += 1
            if g >= 0:
                style = "blocked" if layer == "sync" else self.group_style[g]
                text = _overview_label(layer, self.group_name[g], end - col)
                for k in range(col, end):
                    inside = k - col < len(text)
                    cells[k] = (
                        text[k - col] if inside else fill,
                        style + ("-text" if inside else ""),
                    )
            col = end


def _overview_label(layer: str, name: str, run: int) -> str:
    if run < 5 or layer in ("marker", "nvtx"):
        return ""
    if layer == "sync":
        name = "⏸ " + dedupe_words(name.removeprefix("sync "))
    elif layer == "device":
        name = short_name(name)
    return name[: run - 1] + (" " if len(name) < run - 1 else "")


def _style_for(kind: str, name: str, kernel_family: Callable[[str], str]) -> str:
    if kind == "api_call":
        return "call"
    if kind in ("sync", "nvtx", "marker"):
        return kind
    if kind == "copy":
        return "memcpy"
    if kind == "memset":
        return "memset"
    if kind == "kernel":
        return kernel_family(name)
    return "empty"
