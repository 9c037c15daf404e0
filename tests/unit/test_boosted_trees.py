"""Boosted trees (numpy) and the GEMM surface's tile correction built on them."""

from __future__ import annotations

import json

import numpy as np

from revati.predict.batch import OpBatch
from revati.predict.catalog import get_device
from revati.predict.models.boosted_trees import BoostedTrees, fit_boosted_trees
from revati.predict.models.gemm import GemmModel
from revati.predict.models.gemm_tiles import FEATURES, tile_features

RNG = np.random.default_rng(7)
H100 = get_device("h100-sxm")


def test_trees_learn_a_known_step_function_and_ignore_noise_features():
    x = RNG.integers(0, 10, (4000, 3)).astype(float)  # fewer values than bins: exact splits
    y = 2.0 * (x[:, 0] >= 5) + 0.5 * (x[:, 1] >= 3) + 0.1 * x[:, 0]  # x[:, 2] is noise
    trees = fit_boosted_trees(x, y, trees=60, depth=2, rate=0.3, min_leaf=20)
    probe = RNG.integers(0, 10, (1000, 3)).astype(float)
    truth = 2.0 * (probe[:, 0] >= 5) + 0.5 * (probe[:, 1] >= 3) + 0.1 * probe[:, 0]
    assert np.abs(trees.predict(probe) - truth).max() < 0.05
    used = trees.feature[np.isfinite(trees.threshold)]
    assert set(used.tolist()) == {0, 1}


def test_a_constant_target_grows_no_splits():
    x = RNG.uniform(0, 1, (500, 2))
    trees = fit_boosted_trees(x, np.full(500, 3.5), trees=5, depth=3, min_leaf=10)
    assert np.isinf(trees.threshold).all()
    np.testing.assert_allclose(trees.predict(RNG.uniform(-5, 5, (50, 2))), 3.5)


def test_trees_round_trip_through_profile_json():
    x = RNG.normal(size=(2000, 4))
    y = np.sin(x[:, 0]) + x[:, 1] * (x[:, 2] > 0)
    trees = fit_boosted_trees(x, y, trees=30, depth=3, min_leaf=30)
    back = BoostedTrees.from_params(json.loads(json.dumps(trees.to_params())))
    np.testing.assert_allclose(back.predict(x), trees.predict(x), atol=1e-3)
    assert back.depth == 3 and back.feature.shape == (30, 7)


def test_tile_features_count_waves_of_the_device():
    f = dict(zip(FEATURES, tile_features([256], [128 * 132], [4096], [1], 132)[0], strict=True))
    assert f["waves_128x128"] == 2 and f["wave_efficiency_128x128"] == 1.0  # 264 tiles
    g = dict(zip(FEATURES, tile_features([129], [128 * 66], [4096], [1], 132)[0], strict=True))
    assert g["wave_efficiency_128x128"] == 1.0 and g["wave_efficiency_128x256"] == 0.5
    assert abs(g["m_padding"] - 127 / 256) < 1e-12


def wave_bound_gemms(n: int) -> tuple[OpBatch, np.ndarray]:
    """GEMMs whose time is whole waves of 128×128 tiles: a staircase a smooth surface misses."""
    m = RNG.integers(64, 4096, n)
    nn = RNG.choice([1024, 2816, 4096, 6144, 11008], n)
    k = RNG.choice([2048, 4096, 8192], n)
    waves = np.ceil(np.ceil(m / 128) * np.ceil(nn / 128) / 132)
    ns = 4000.0 + waves * k * 3.0
    batch = OpBatch.from_columns(n, name="gemm_x", dtype="bf16", gemm_m=m, gemm_n=nn, gemm_k=k)
    return batch, ns


def test_tile_correction_follows_wave_steps_the_surface_cannot():
    batch, ns = wave_bound_gemms(3000)
    params = GemmModel.fit(H100, batch, ns)
    assert params is not None and params["tiles"]["features"] == list(FEATURES)
    probe, truth = wave_bound_gemms(1000)
    with_tiles = GemmModel(H100, params).predict(probe)
    surface_only = GemmModel(H100, {k: v for k, v in params.items() if k != "tiles"})
    error = np.mean(np.abs(with_tiles - truth) / truth)
    assert error < 0.5 * np.mean(np.abs(surface_only.predict(probe) - truth) / truth)
    assert error < 0.05
