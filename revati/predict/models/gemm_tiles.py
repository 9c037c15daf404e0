"""The GEMM surface's tile correction: boosted trees over features of the kernel cuBLAS may pick.

cuBLAS runs a GEMM as output tiles spread over the SMs; which tile (and so how many waves, and
how full the last one is) depends on the shape, and the time steps with it where a smooth
surface cannot. The correction is a log factor learnt by `boosted_trees` from the surface's log
residual over features that do not name an LLM: log m, n, k and k/n, and for plausible Hopper
tile shapes the wave efficiency (tiles / (whole waves × SMs)), the waves and the tile count,
the k-depth per SM, FLOPs, arithmetic intensity and the padding of the last 128-row tile.
Tile counts scale with the device's SM count, so the features transfer between GPUs.
"""

from __future__ import annotations

import numpy as np

from revati.predict.models.boosted_trees import BoostedTrees, fit_boosted_trees

# (rows, columns) of output tiles whose wave efficiency is a feature
EFFICIENCY_TILES = (
    (128, 128),
    (128, 256),
    (256, 128),
    (64, 128),
    (64, 256),
    (256, 256),
    (128, 64),
    (128, 192),
)
COUNT_TILES = ((128, 128), (128, 256), (64, 128))  # tiles whose wave and tile counts are features
FEATURES = (
    ["log_m", "log_n", "log_k", "log_k_over_n"]
    + [f"wave_efficiency_{a}x{b}" for a, b in EFFICIENCY_TILES]
    + [f"waves_{a}x{b}" for a, b in COUNT_TILES]
    + [f"log_tiles_{a}x{b}" for a, b in COUNT_TILES]
    + ["log_k_per_sm", "log_flops", "log_intensity", "m_padding"]
)  # fmt: skip
TREES = 60
DEPTH = 4
RATE = 0.15
MIN_LEAF = 50
CLIP = 1.0  # |log residual| beyond this (a factor e) is an outlier the trees should not chase


def tile_features(m, n, k, count, sms: int) -> np.ndarray:
    """(records, len(FEATURES)) features of the GEMMs m×n×k (× count), rows unrounded."""
    m, n, k, count = (np.asarray(v, dtype=np.float64) for v in (m, n, k, count))

    def tiles(a: int, b: int) -> np.ndarray:
        return np.ceil(m / a) * np.ceil(n / b) * count

    def wave_efficiency(a: int, b: int) -> np.ndarray:
        t = tiles(a, b)
        return t / (np.ceil(t / sms) * sms)

    cols = [np.log(m), np.log(n), np.log(k), np.log(k / n)]
    cols += [wave_efficiency(a, b) for a, b in EFFICIENCY_TILES]
    cols += [np.ceil(tiles(a, b) / sms) for a, b in COUNT_TILES]
    cols += [np.log(tiles(a, b)) for a, b in COUNT_TILES]
    cols += [np.log(k * sms / tiles(128, 128)), np.log(m * n * k * count)]
    cols += [np.log(m * n * k / (m * k + k * n + m * n))]
    whole = np.ceil(m / 128) * 128
    cols += [(whole - m) / whole]
    return np.stack(cols, axis=1)


def fit_tile_correction(features: np.ndarray, log_residual: np.ndarray) -> dict:
    """Profile parameters of the trees fitted on the surface's log residual."""
    trees = fit_boosted_trees(
        features,
        np.clip(log_residual, -CLIP, CLIP),
        trees=TREES,
        depth=DEPTH,
        rate=RATE,
        min_leaf=MIN_LEAF,
    )
    return {"features": list(FEATURES), **trees.to_params()}


def tile_correction(params: dict, features: np.ndarray) -> np.ndarray:
    """exp(trees) for records with `features` (rows of `tile_features`); trees fitted on
    another feature list than this version's are not applied (factor 1)."""
    if params.get("features") != list(FEATURES):
        return np.ones(len(features))
    return np.exp(BoostedTrees.from_params(params).predict(features))
