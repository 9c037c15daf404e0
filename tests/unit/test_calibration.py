"""Calibration: fits recover known parameters from synthetic data; real sources load."""

from __future__ import annotations

import numpy as np
import pytest

from revati.predict import OpBatch, get_device
from revati.predict.calibration.fit import fit_profile
from revati.predict.calibration.measurements import Measurements
from revati.predict.calibration.vidur import load_vidur
from revati.predict.models.attention import AttentionModel
from revati.predict.models.bandwidth import BandwidthModel
from revati.predict.models.collective import CollectiveModel
from revati.predict.models.gemm import GemmModel
from revati.predict.models.table import TableModel, key_text, parse_key
from revati.predict.predictor import Predictor

H100 = get_device("h100-sxm")
RNG = np.random.default_rng(7)


def _ape(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b) / b * 100


def test_gemm_fit_recovers_a_known_surface():
    n = 600
    b = OpBatch.from_columns(
        n, name="gemm_x", dtype="bf16", gemm_m=RNG.integers(1, 8192, n),
        gemm_n=RNG.choice([1024, 4096, 14336], n), gemm_k=RNG.choice([2048, 4096, 8192], n),
    )  # fmt: skip
    theta = [-2.0, 0.5, 0.1, 0.05, -0.03, 0.0, 0.0, 1.2, 1.5, 2.0, 0.7, 0.01, -0.01]
    truth = GemmModel(H100, {"theta": theta, "m_tile": 128})
    measured = truth.predict(b)
    params = GemmModel.fit(H100, b, measured)
    assert params is not None
    assert params["m_tile"] == 128
    fitted = GemmModel(H100, params).predict(b)
    assert _ape(fitted, measured).max() < 2.0


def test_gemm_rounds_m_up_to_whole_tiles_only_when_the_profile_says_so():
    m = np.array([100, 129, 200, 256, 257])
    b = OpBatch.from_columns(
        len(m), name="gemm_x", dtype="bf16", gemm_m=m, gemm_n=4096, gemm_k=4096
    )
    theta = GemmModel.default_params(H100)["theta"]
    tiled = GemmModel(H100, {"theta": theta, "m_tile": 128}).predict(b)
    assert tiled[1] == tiled[2] == tiled[3]  # 129..256 rows: two tiles each
    assert tiled[0] < tiled[1] < tiled[4]  # below one tile m is exact; 257 needs a third
    untiled = GemmModel(H100, {"theta": theta}).predict(b)  # profiles from before m_tile
    assert len(set(untiled[1:4])) == 3  # each m its own problem


def test_bandwidth_fit_recovers_floor_efficiency_and_slope():
    n = 300
    b = OpBatch.from_columns(n, name="my_norm_kernel", bytes=RNG.integers(1 << 12, 1 << 29, n))
    truth = BandwidthModel(H100, {"family": {"elementwise": [2500.0, 0.6, 0.05]}, "by_name": {}})
    measured = truth.predict(b)
    params = BandwidthModel.fit(H100, b, measured)
    floor, eff, slope = params["by_name"]["my_norm_kernel"]
    assert floor == pytest.approx(2500.0, rel=0.02)
    assert eff == pytest.approx(0.6, rel=0.02)
    assert slope == pytest.approx(0.05, abs=0.005)


def test_collective_fit_recovers_ring_alpha_beta():
    sizes = np.repeat(2 ** np.arange(20, 31), 3)  # large messages: the ring regime
    world = np.tile([2, 4, 8], len(sizes) // 3)
    b = OpBatch.from_columns(
        len(sizes),
        kind="collective",
        name="nccl:allreduce",
        collective="allreduce",
        world_size=world,
        bytes=sizes,
    )
    alg = {"ring": [9000.0, 500.0, 300.0], "tree": [9000.0, 50_000.0, 100.0]}
    truth = CollectiveModel(H100, {"topology": "t", "topologies": {"t": alg}})
    measured = truth.predict(b)
    params = CollectiveModel.fit(H100, b, measured, np.full(len(sizes), "t", dtype=object))
    ring = params["topologies"]["t"]["ring"]
    assert ring[2] == pytest.approx(300.0, rel=0.01)  # bytes/ns
    refit = CollectiveModel(H100, {**params, "topology": "t"}).predict(b)
    assert _ape(refit, measured).max() < 1.0


def test_attention_fit_recovers_efficiencies():
    n = 200
    q = np.where(np.arange(n) % 2 == 0, RNG.integers(128, 8192, n), 1)
    b = OpBatch.from_columns(
        n, name="flash_fwd", dtype="bf16", attn_batch=RNG.integers(1, 64, n), attn_q_len=q,
        attn_kv_len=q + RNG.integers(0, 8192, n), attn_heads=32, attn_kv_heads=8, attn_head_dim=128,
    )  # fmt: skip
    truth_params = {"prefill": [3000.0, 0.55, 0.5], "decode": [5000.0, 0.3, 0.8]}
    measured = AttentionModel(H100, truth_params).predict(b)
    params = AttentionModel.fit(H100, b, measured)
    assert params["prefill"][1] == pytest.approx(0.55, rel=0.02)
    assert params["decode"][2] == pytest.approx(0.8, rel=0.02)


def test_table_interpolates_in_log_space_and_reaches_only_near_sizes():
    m = np.array([64, 128, 256, 512])
    t = np.array([10_000.0, 12_000.0, 20_000.0, 40_000.0])
    b = OpBatch.from_columns(4, name="gemm_k1", gemm_m=m, gemm_n=1024, gemm_k=512, dtype="fp16")
    model = TableModel(H100, TableModel.fit(H100, b, t))
    q = OpBatch.from_columns(
        5,
        name="gemm_k1",
        gemm_m=[128, 181, 1024, 4096, 128],
        gemm_n=[1024] * 4 + [2048],
        gemm_k=512,
        dtype="fp16",
    )
    claimed = model.claims(q, np.full(5, "gemm", dtype=object))
    # GEMM time is a staircase over m: a GEMM table claims only inside its measured range
    assert list(claimed) == [True, True, False, False, False]
    pred = model.predict(q.take(claimed))
    assert pred[0] == pytest.approx(12_000, rel=1e-4)
    assert pred[1] == pytest.approx(np.sqrt(12_000 * 20_000), rel=1e-3)  # log-log midpoint
    grid = OpBatch.from_columns(4, name="k", grid_x=m, block_x=128)
    model = TableModel(H100, TableModel.fit(H100, grid, t))
    q = OpBatch.from_columns(3, name="k", grid_x=[1024, 4096, 512], block_x=[128, 128, 256])
    claimed = model.claims(q, np.full(3, "elementwise", dtype=object))
    assert list(claimed) == [True, False, False]  # within 2x of the largest, same block size
    assert model.predict(q.take(claimed))[0] == pytest.approx(80_000, rel=1e-3)  # linear beyond


def test_table_keys_round_trip():
    for sig in [
        ("g", 1, 4096, 512, 1, "bf16"),
        ("n|x", 2, 8, 0, 0, "allreduce"),
        ("e", 4, 256, 0, 0, ""),
    ]:
        assert parse_key(key_text(sig)) == sig


def test_fit_profile_on_synthetic_mixture_predicts_it_back():
    gemm = OpBatch.from_columns(
        50, name="sm90_gemm", gemm_m=np.arange(1, 51) * 64, gemm_n=4096, gemm_k=4096, dtype="bf16"
    )
    data = Measurements(
        gemm, 5000.0 + np.arange(1, 51) * 1000.0, np.full(50, "a", dtype=object), "h100-sxm"
    )
    profile = fit_profile(data, "synthetic", ["test"])
    assert set(profile.models) == {"gemm", "table"}  # no grid: nothing for the launch model
    pred = Predictor(H100, profile).predict(gemm)
    assert (pred.model == "table").all()
    assert _ape(pred.duration_ns, data.measured_ns).max() < 0.05  # logs stored to 5 decimals


def test_vidur_tables_load_with_shapes(test_data):
    data = load_vidur(test_data / "vidur-profiles", "h100")
    fams = data.families
    assert {"gemm", "elementwise", "collective"} <= set(fams)
    gemm = data.take(fams == "gemm")
    assert (gemm.batch.gemm_m > 0).all() and (gemm.batch.gemm_k > 0).all()
    llama = gemm.take(
        (gemm.group == "meta-llama/Llama-2-7b-hf") & (gemm.batch.name == "gemm:mlp_up_proj")
    )
    row = np.flatnonzero((llama.batch.gemm_m == 1024) & (llama.batch.gemm_n == 2 * 11008))[0]
    assert llama.batch.gemm_k[row] == 4096
    assert 50_000 < llama.measured_ns[row] < 500_000
    coll = data.take(fams == "collective")
    assert set(coll.topology) == {
        "dgx/1node",
        "dgx/1pernode",
        "pairwise_nvlink/1node",
        "pairwise_nvlink/1pernode",
    }


def test_vidur_tables_read_as_kept_in_the_repository(test_data):
    """tests/data keeps the tables xz-compressed (.csv.xz); they read as the plain .csv do."""
    from tests.conftest import TEST_DATA

    kept = load_vidur(TEST_DATA / "vidur-profiles", "h100")
    plain = load_vidur(test_data / "vidur-profiles", "h100")
    assert len(kept) == len(plain) == 42615
    assert (kept.measured_ns == plain.measured_ns).all()
    assert (kept.group == plain.group).all()
