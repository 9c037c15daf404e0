"""Gradient-boosted regression trees in numpy: least squares, fixed depth, shrinkage.

Each tree is a complete binary tree of `depth` levels in heap order (node i's children are
2i+1 and 2i+2): `feature` and `threshold` per inner node (a record goes left when its feature
is below the threshold), `leaf` per leaf, the learning rate already folded in. A node that does
not split keeps feature 0 with threshold +inf (everything goes left) and its value in every leaf
below it, so prediction is `depth` vectorised steps per tree with no branching on node kinds.

Splits are searched on quantile bins of each feature (`BINS`), as histogram-based boosting
libraries do; a split must leave `min_leaf` records on each side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BINS = 64


@dataclass
class BoostedTrees:
    """A fitted ensemble: prediction = base + Σ trees."""

    base: float
    feature: np.ndarray  # (trees, 2**depth - 1) int
    threshold: np.ndarray  # (trees, 2**depth - 1) float
    leaf: np.ndarray  # (trees, 2**depth) float

    @property
    def depth(self) -> int:
        return int(np.log2(self.leaf.shape[1]))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Sum of the trees for each row of `x` (rows, features)."""
        rows = np.arange(len(x))[:, None]
        node = np.zeros((len(x), len(self.feature)), dtype=np.int64)
        tree = np.arange(len(self.feature))[None, :]
        for _ in range(self.depth):
            value = x[rows, self.feature[tree, node]]
            node = 2 * node + np.where(value < self.threshold[tree, node], 1, 2)
        inner = self.feature.shape[1]
        return self.base + self.leaf[tree, node - inner].sum(axis=1)

    def to_params(self) -> dict:
        return {
            "base": round(self.base, 5),
            "feature": self.feature.tolist(),
            "threshold": [[_json_float(v) for v in row] for row in self.threshold],
            "leaf": np.round(self.leaf, 5).tolist(),
        }

    @classmethod
    def from_params(cls, params: dict) -> BoostedTrees:
        return cls(
            base=float(params["base"]),
            feature=np.asarray(params["feature"], dtype=np.int64),
            threshold=np.array([[float(v) for v in row] for row in params["threshold"]]),
            leaf=np.asarray(params["leaf"], dtype=np.float64),
        )


def _json_float(v: float) -> float | str:
    """Thresholds keep every digit: a rounded one could move a shape to the other side."""
    return "inf" if np.isinf(v) else float(v)


def fit_boosted_trees(
    x: np.ndarray,
    y: np.ndarray,
    *,
    trees: int = 100,
    depth: int = 3,
    rate: float = 0.1,
    min_leaf: int = 50,
) -> BoostedTrees:
    """Boost `trees` least-squares trees of `depth` on (x, y), each scaled by `rate`."""
    edges = [np.unique(np.quantile(col, np.linspace(0, 1, BINS + 1)[1:-1])) for col in x.T]
    bins = np.stack(
        [np.searchsorted(e, col, side="right") for e, col in zip(edges, x.T, strict=True)], 1
    )
    base = float(np.median(y))
    fitted = np.full(len(y), base)
    shape = (trees, 2**depth - 1)
    feature, threshold = np.zeros(shape, dtype=np.int64), np.full(shape, np.inf)
    leaf = np.zeros((trees, 2**depth))
    for t in range(trees):
        grower = _TreeGrower(bins, edges, y - fitted, depth, min_leaf)
        grower.grow(0, np.arange(len(y)), 0)
        feature[t], threshold[t], leaf[t] = grower.feature, grower.threshold, grower.leaf * rate
        fitted += leaf[t][grower.leaf_of]
    return BoostedTrees(base, feature, threshold, leaf)


class _TreeGrower:
    """Grows one tree of `depth` on binned features and residuals, in heap order."""

    def __init__(self, bins, edges, resid, depth, min_leaf) -> None:
        self.bins, self.edges, self.resid = bins, edges, resid
        self.depth, self.min_leaf = depth, min_leaf
        self.feature = np.zeros(2**depth - 1, dtype=np.int64)
        self.threshold = np.full(2**depth - 1, np.inf)
        self.leaf = np.zeros(2**depth)
        self.leaf_of = np.zeros(len(resid), dtype=np.int64)  # each record's leaf

    def grow(self, node: int, idx: np.ndarray, level: int) -> None:
        if level == self.depth:
            first = node - (2**self.depth - 1)
            self.leaf[first] = self.resid[idx].mean() if len(idx) else 0.0
            self.leaf_of[idx] = first
            return
        split = self._best_split(idx)
        if split is None:  # no split: all go left, every leaf below holds this node's mean
            self.grow(2 * node + 1, idx, level + 1)
            self._fill(2 * node + 2, level + 1, self.resid[idx].mean() if len(idx) else 0.0)
            return
        j, b = split
        self.feature[node], self.threshold[node] = j, self.edges[j][b]
        left = self.bins[idx, j] <= b
        self.grow(2 * node + 1, idx[left], level + 1)
        self.grow(2 * node + 2, idx[~left], level + 1)

    def _fill(self, node: int, level: int, value: float) -> None:
        if level == self.depth:
            self.leaf[node - (2**self.depth - 1)] = value
            return
        self._fill(2 * node + 1, level + 1, value)
        self._fill(2 * node + 2, level + 1, value)

    def _best_split(self, idx: np.ndarray) -> tuple[int, int] | None:
        """(feature, bin) with the largest drop in squared error, or None."""
        r, count = self.resid[idx], len(idx)
        if count < 2 * self.min_leaf:
            return None
        total = r.sum()
        best, best_gain = None, 1e-12
        for j in range(self.bins.shape[1]):
            nb = len(self.edges[j]) + 1
            sums = np.cumsum(np.bincount(self.bins[idx, j], r, nb))[:-1]
            counts = np.cumsum(np.bincount(self.bins[idx, j], minlength=nb))[:-1]
            ok = (counts >= self.min_leaf) & (count - counts >= self.min_leaf)
            left_mean = sums / np.maximum(counts, 1)
            right_mean = (total - sums) / np.maximum(count - counts, 1)
            gain = sums * left_mean + (total - sums) * right_mean - total**2 / count
            gain = np.where(ok, gain, -np.inf)
            b = int(np.argmax(gain))
            if gain[b] > best_gain:
                best, best_gain = (j, b), float(gain[b])
        return best
