"""EventIndex: the global event order held as numpy arrays, for interactive navigation.

Loaded once from `event_order`/`event_groups` (see `event_order.py`). Per event (indexed by
seq) it keeps the group, ref id, start and end; per group the kind, track, pid, rank and name;
and a CSR layout of every group's seqs in order. A filter (rank, track, kinds, name regex)
selects a set of groups; next/previous is then one binary search per selected group, or, when
the filter selects many groups, a scan over growing windows of the group array.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import duckdb
import numpy as np

# Above this many selected groups, next/prev scans windows instead of searching each group.
_MAX_GROUP_SEARCHES = 256
_FIRST_WINDOW = 4096
# Events longer than this quantile of durations are "long" and kept aside for window queries.
_LONG_QUANTILE = 0.99
NO_RANK = -(2**62)  # rank code of groups without a rank


@dataclass(frozen=True)
class GroupFilter:
    """What next/prev and window queries may match; None means any."""

    rank: int | None = None
    track_ids: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None
    name_pattern: str | None = None

    @property
    def is_empty(self) -> bool:
        return (
            self.rank is None
            and self.track_ids is None
            and not self.kinds
            and not self.name_pattern
        )


class EventIndex:
    """Numpy arrays of the global order of one trace."""

    @classmethod
    def load(
        cls, con: duckdb.DuckDBPyConnection, order_table: str, groups_table: str
    ) -> EventIndex:
        """The index of a stored order (`order_table` in seq order)."""
        cols = con.execute(
            f"SELECT grp, kind_code, ref_id, start_ns, end_ns FROM {order_table}"
        ).fetchnumpy()
        return cls(con, groups_table, cols)

    def __init__(
        self, con: duckdb.DuckDBPyConnection, groups_table: str, cols: Mapping[str, np.ndarray]
    ) -> None:
        """`cols`: grp, kind_code, ref_id, start_ns, end_ns of every event (in seq order)."""
        g = con.execute(
            f"SELECT grp, kind, track_id, pid, rank, name FROM {groups_table} ORDER BY grp"
        ).fetchall()
        self.group_kind = np.array([r[1] for r in g], dtype=object)
        self.group_track = np.array([r[2] for r in g], dtype=object)
        self.group_pid = [r[3] for r in g]
        self.group_rank = [r[4] for r in g]
        self.group_name = [r[5] for r in g]
        self._rank_codes = np.array(
            [NO_RANK if r is None else r for r in self.group_rank], dtype=np.int64
        )
        self.grp = np.asarray(cols["grp"], dtype=np.int32)
        self.ref_id = np.asarray(cols["ref_id"], dtype=np.int64)
        self.start_ns = np.asarray(cols["start_ns"], dtype=np.int64)
        self.end_ns = np.asarray(cols["end_ns"], dtype=np.int64)
        self.count = len(self.grp)
        self._ensure_sorted(np.asarray(cols["kind_code"], dtype=np.int8))
        self._build_groups(len(g))
        self._build_long()
        self._end_max = int(self.end_ns.max()) if self.count else 0
        self._names: dict[str, np.ndarray] = {}
        self._by_ref: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _ensure_sorted(self, kind_code: np.ndarray) -> None:
        """The table is stored in seq order; if a writer got that wrong, sort here."""
        if self.count < 2:
            return
        ds, dk, dr = np.diff(self.start_ns), np.diff(kind_code), np.diff(self.ref_id)
        if not np.any((ds < 0) | ((ds == 0) & ((dk < 0) | ((dk == 0) & (dr < 0))))):
            return
        order = np.lexsort((self.ref_id, kind_code, self.start_ns))
        self.grp, self.ref_id = self.grp[order], self.ref_id[order]
        self.start_ns, self.end_ns = self.start_ns[order], self.end_ns[order]

    def _build_groups(self, n_groups: int) -> None:
        key = self.grp.astype(np.uint16) if n_groups <= 65536 else self.grp
        self.csr = np.argsort(key, kind="stable").astype(np.int64)  # seqs grouped by group
        counts = np.bincount(self.grp, minlength=n_groups) if self.count else np.zeros(n_groups)
        self.offsets = np.zeros(n_groups + 1, dtype=np.int64)
        np.cumsum(counts, out=self.offsets[1:])
        self.n_groups = n_groups

    def _build_long(self) -> None:
        dur = self.end_ns - self.start_ns
        if self.count == 0:
            self.long_threshold = 0
            self.long_seqs = np.zeros(0, dtype=np.int64)
            return
        self.long_threshold = int(np.quantile(dur, _LONG_QUANTILE, method="higher"))
        self.long_seqs = np.flatnonzero(dur > self.long_threshold)

    # ---- group selection ---------------------------------------------------------------------

    def select_groups(self, f: GroupFilter) -> np.ndarray:
        """Ids of the groups whose events pass `f`."""
        mask = np.ones(self.n_groups, dtype=bool)
        if f.kinds:
            mask &= np.isin(self.group_kind, list(f.kinds))
        if f.track_ids is not None:
            mask &= np.isin(self.group_track, list(f.track_ids))
        if f.rank is not None:
            mask &= self._rank_codes == f.rank
        if f.name_pattern:
            mask &= self._name_mask(f.name_pattern)
        return np.flatnonzero(mask)

    def _name_mask(self, pattern: str) -> np.ndarray:
        cached = self._names.get(pattern)
        if cached is None:
            rx = re.compile(pattern)
            cached = np.array([rx.search(n) is not None for n in self.group_name], dtype=bool)
            self._names[pattern] = cached
        return cached

    # ---- navigation --------------------------------------------------------------------------

    def next_seq(self, seq: int, groups: np.ndarray | None) -> int | None:
        """Smallest seq > `seq` in `groups` (None = all groups)."""
        if groups is None:
            return seq + 1 if seq + 1 < self.count else None
        if len(groups) <= _MAX_GROUP_SEARCHES:
            best = None
            for g in groups:
                lo, hi = self.offsets[g], self.offsets[g + 1]
                i = lo + np.searchsorted(self.csr[lo:hi], seq, side="right")
                if i < hi and (best is None or self.csr[i] < best):
                    best = int(self.csr[i])
            return best
        return self._scan(seq, groups, forward=True)

    def prev_seq(self, seq: int, groups: np.ndarray | None) -> int | None:
        """Largest seq < `seq` in `groups` (None = all groups)."""
        if groups is None:
            return min(seq, self.count) - 1 if seq > 0 and self.count else None
        if len(groups) <= _MAX_GROUP_SEARCHES:
            best = None
            for g in groups:
                lo, hi = self.offsets[g], self.offsets[g + 1]
                i = lo + np.searchsorted(self.csr[lo:hi], seq, side="left") - 1
                if i >= lo and (best is None or self.csr[i] > best):
                    best = int(self.csr[i])
            return best
        return self._scan(seq, groups, forward=False)

    def _scan(self, seq: int, groups: np.ndarray, *, forward: bool) -> int | None:
        lut = np.zeros(self.n_groups, dtype=bool)
        lut[groups] = True
        width = _FIRST_WINDOW
        if forward:
            a = seq + 1
            while a < self.count:
                b = min(self.count, a + width)
                hits = np.flatnonzero(lut[self.grp[a:b]])
                if len(hits):
                    return int(a + hits[0])
                a, width = b, width * 4
            return None
        b = min(seq, self.count)
        while b > 0:
            a = max(0, b - width)
            hits = np.flatnonzero(lut[self.grp[a:b]])
            if len(hits):
                return int(a + hits[-1])
            b, width = a, width * 4
        return None

    def first_at(self, t_ns: int) -> int | None:
        """First seq whose start is at or after `t_ns`."""
        i = int(np.searchsorted(self.start_ns, t_ns, side="left"))
        return i if i < self.count else None

    def seq_for(self, kind: str, ref_id: int) -> int | None:
        """Seq of the event (kind, ref_id), or None."""
        refs, seqs = self._ref_lookup(kind)
        i = int(np.searchsorted(refs, ref_id))
        return int(seqs[i]) if i < len(refs) and refs[i] == ref_id else None

    def _ref_lookup(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        cached = self._by_ref.get(kind)
        if cached is None:
            kind_groups = np.flatnonzero(self.group_kind == kind)
            lut = np.zeros(self.n_groups, dtype=bool)
            lut[kind_groups] = True
            seqs = np.flatnonzero(lut[self.grp])
            refs = self.ref_id[seqs]
            o = np.argsort(refs, kind="stable")
            cached = (refs[o], seqs[o])
            self._by_ref[kind] = cached
        return cached

    # ---- windows -----------------------------------------------------------------------------

    def window(
        self, start_ns: int, end_ns: int, groups: np.ndarray | None, limit: int | None
    ) -> np.ndarray:
        """Seqs (ascending) of the events overlapping [start_ns, end_ns] in `groups`."""
        lo = int(np.searchsorted(self.start_ns, start_ns - self.long_threshold, side="left"))
        hi = int(np.searchsorted(self.start_ns, end_ns, side="right"))
        short = lo + np.flatnonzero(self.end_ns[lo:hi] >= start_ns)
        ls = self.long_seqs
        long_hits = ls[(self.start_ns[ls] <= end_ns) & (self.end_ns[ls] >= start_ns)]
        seqs = np.union1d(short, long_hits) if len(long_hits) else short
        if groups is not None:
            lut = np.zeros(self.n_groups, dtype=bool)
            lut[groups] = True
            seqs = seqs[lut[self.grp[seqs]]]
        return seqs[:limit] if limit is not None else seqs

    def time_range(self) -> tuple[int, int]:
        if self.count == 0:
            return (0, 0)
        return (int(self.start_ns[0]), self._end_max)
