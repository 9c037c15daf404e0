"""The predictor interface: batches in, durations and models out, never an error for odd input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from revati.errors import RevatiConfigError
from revati.predict import OpBatch, get_device, kernel_family, load_predictor
from revati.predict.predictor import Predictor
from revati.predict.profile import Profile


def test_from_columns_fills_defaults():
    b = OpBatch.from_columns(3, name=["a", "b", "c"], gemm_m=[1, 2, 3])
    assert list(b.kind) == ["kernel"] * 3 and list(b.dtype) == [""] * 3
    assert b.grid_x.dtype == np.int64 and list(b.gemm_n) == [0, 0, 0]
    with pytest.raises(ValueError, match="expected 3"):
        OpBatch.from_columns(3, name=["a"])


def test_unknown_kernel_gets_the_flagged_fallback():
    p = load_predictor("h100-sxm")
    pred = p.predict(
        OpBatch.from_columns(2, name=["mystery_kernel", "mystery_kernel"], bytes=[0, 1 << 20])
    )
    assert list(pred.model) == ["constant:unmodelled", "bandwidth"]
    assert list(pred.unmodelled) == [True, False]
    assert pred.duration_ns.dtype == np.int64 and (pred.duration_ns >= 1).all()


def test_odd_inputs_never_raise():
    p = load_predictor("h100-sxm")
    batch = OpBatch.from_columns(
        4,
        kind=["kernel", "copy", "collective", "memset"],
        name=["sm90_xmma_gemm_x", "", "ncclKernel_AllReduce", ""],
        gemm_m=[-5, 0, 0, 0],
        bytes=[0, 0, 0, 0],
        world_size=[0, 0, 0, 0],
    )
    pred = p.predict(batch)
    assert (pred.duration_ns >= 1).all() and pred.unmodelled.all()
    assert len(p.predict(OpBatch.from_columns(0)).duration_ns) == 0


def test_identity_names_device_profile_and_hash():
    p = load_predictor("h100-sxm")
    assert p.identity.startswith("revati-predict 1 device=h100-sxm profile=h100-vidur sha256=")
    assert load_predictor("l40s").identity == "revati-predict 1 device=l40s profile=none"


def test_shipped_profile_models_are_used():
    p = load_predictor("h100-sxm")
    b = OpBatch.from_columns(
        3,
        kind=["kernel", "collective", "kernel"],
        name=["sm90_xmma_gemm_bf16", "ncclDevKernel_AllReduce_Sum_bf16_RING_LL", "vectorized_elementwise_kernel"],
        gemm_m=[1000, 0, 0], gemm_n=[3000, 0, 0], gemm_k=[4096, 0, 0], dtype=["bf16", "", ""],
        bytes=[0, 64 << 20, 32 << 20], collective=["", "allreduce", ""], world_size=[0, 8, 0],
    )  # fmt: skip
    pred = p.predict(b)
    assert list(pred.model) == ["gemm", "collective", "bandwidth"]
    flops = 2 * 1000 * 3000 * 4096
    assert flops / 989.4e12 * 1e9 < pred.duration_ns[0] < 4 * flops / 989.4e12 * 1e9
    # 64 MiB ring allreduce over 8 NVSwitch GPUs: a few hundred microseconds
    assert 100_000 < pred.duration_ns[1] < 2_000_000


def test_gemm_time_grows_with_size_and_falls_with_faster_device():
    b = OpBatch.from_columns(
        3, name="cutlass_gemm", gemm_m=[512, 2048, 8192], gemm_n=8192, gemm_k=8192, dtype="bf16"
    )
    h100 = load_predictor("h100-sxm").predict(b).duration_ns
    b200 = load_predictor("b200", profile="h100-vidur").predict(b).duration_ns
    assert h100[0] < h100[1] < h100[2]
    assert (b200 < h100).all()


def test_attention_prefill_and_decode_from_flops_and_bytes():
    p = load_predictor("h100-sxm")
    b = OpBatch.from_columns(
        2, name="flash_fwd_kernel", dtype="bf16", attn_batch=[1, 64], attn_q_len=[4096, 1],
        attn_kv_len=[4096, 4096], attn_heads=32, attn_kv_heads=8, attn_head_dim=128,
    )  # fmt: skip
    pred = p.predict(b)
    assert list(pred.model) == ["attention:uncalibrated"] * 2
    prefill_flops = 4 * 32 * 128 * (4096 * 4096 - 4096 * 4095 / 2)
    assert pred.duration_ns[0] > prefill_flops / 989.4e12 * 1e9
    decode_bytes = 2 * 64 * 128 * (2 * 32 + 2 * 4096 * 8)
    assert pred.duration_ns[1] > decode_bytes / 3350


def test_copies_use_the_link_they_cross():
    p = load_predictor("h100-sxm")
    b = OpBatch.from_columns(2, kind="copy", name="", copy_kind=["HtoD", "DtoD"], bytes=1 << 30)
    htod, dtod = p.predict(b).duration_ns
    assert htod > 1e9 / 64 and htod > 5 * dtod


def test_families():
    assert kernel_family("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n") == "gemm"
    assert kernel_family("void flash_fwd_splitkv_kernel<...>") == "attention"
    assert kernel_family("ncclDevKernel_AllReduce_Sum_f32_RING_LL") == "collective"
    assert kernel_family("nvjet_tst_128x256_64x4_1x2_h_bz_coopA_NNT") == "gemm"
    assert kernel_family("void at::native::vectorized_elementwise_kernel<4>") == "elementwise"
    assert kernel_family("Memcpy HtoD (Pageable -> Device)") == "memcpy"
    # vLLM's KV-cache write names flash attention's cache layout but is a copy
    assert kernel_family("void vllm::reshape_and_cache_flash_kernel<int>") == "elementwise"


def test_unknown_device_and_bad_profiles_are_config_errors(tmp_path):
    with pytest.raises(RevatiConfigError, match="unknown device"):
        load_predictor("gtx480")
    with pytest.raises(RevatiConfigError, match="neither a file nor a shipped profile"):
        load_predictor("h100-sxm", profile=str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RevatiConfigError, match="not readable JSON"):
        load_predictor("h100-sxm", profile=str(bad))
    bad.write_text(
        json.dumps(
            {
                "format": "revati-profile",
                "version": 99,
                "name": "x",
                "device": "h100-sxm",
                "models": {},
            }
        )
    )
    with pytest.raises(RevatiConfigError, match="version 99"):
        load_predictor("h100-sxm", profile=str(bad))
    bad.write_text(
        json.dumps(
            {
                "format": "revati-profile",
                "version": 1,
                "name": "x",
                "device": "h100-sxm",
                "models": [],
            }
        )
    )
    with pytest.raises(RevatiConfigError, match="'models' must map"):
        load_predictor("h100-sxm", profile=str(bad))


def test_profile_with_malformed_parameters_is_a_config_error(tmp_path):
    for models in (
        {"gemm": {"theta": [0.0] * 3}},
        {"bandwidth": {"family": {"elementwise": "x"}}},
        {"table": {"tables": {"k": 1}}},
    ):
        Profile(name="bad", device="h100-sxm", models=models).save(tmp_path / "bad.json")
        with pytest.raises(RevatiConfigError, match="recalibrate"):
            load_predictor("h100-sxm", profile=str(tmp_path / "bad.json"))


def test_profile_round_trips_and_hash_changes_with_content(tmp_path):
    prof = Profile(name="t", device="h100-sxm", models={"gemm": {"theta": [0.0] * 13}})
    prof.save(tmp_path / "t.json")
    p1 = load_predictor("h100-sxm", profile=str(tmp_path / "t.json"))
    assert p1.profile is not None and p1.profile.sha256 == prof.sha256
    prof.models["gemm"]["theta"][0] = 1.0
    prof.save(tmp_path / "t.json")
    assert load_predictor("h100-sxm", profile=str(tmp_path / "t.json")).identity != p1.identity


def test_large_batch_is_consistent_with_small_batches():
    p = load_predictor("h100-sxm")
    rng = np.random.default_rng(0)
    n = 5000
    names = np.array(
        ["sm90_xmma_gemm_a", "elementwise_x", "ncclKernel_AllReduce", "weird"], dtype=object
    )
    b = OpBatch.from_columns(
        n, name=names[rng.integers(0, 4, n)], gemm_m=rng.integers(1, 4096, n), gemm_n=4096,
        gemm_k=4096, bytes=rng.integers(0, 1 << 26, n), world_size=8, collective="allreduce",
    )  # fmt: skip
    whole = p.predict(b)
    for lo in range(0, n, 1000):
        part = p.predict(b.take(np.arange(lo, lo + 1000)))
        assert (part.duration_ns == whole.duration_ns[lo : lo + 1000]).all()
        assert (part.model == whole.model[lo : lo + 1000]).all()


def test_predictor_on_every_device():
    b = OpBatch.from_columns(
        1, name="cutlass_gemm", gemm_m=4096, gemm_n=4096, gemm_k=4096, dtype="fp8"
    )
    times = {
        d: Predictor(get_device(d), None).predict(b).duration_ns[0]
        for d in ("a100-sxm-80gb", "h100-sxm", "b200")
    }
    assert times["b200"] < times["h100-sxm"] < times["a100-sxm-80gb"]


def test_grid_only_kernels_scale_with_their_grid():
    p = load_predictor("h100-sxm")
    b = OpBatch.from_columns(2, name="my_vector_add", grid_x=[4, 1 << 16], block_x=256)
    pred = p.predict(b)
    assert list(pred.model) == ["grid:unmodelled"] * 2 and pred.unmodelled.all()
    small, large = pred.duration_ns
    assert small >= get_device("h100-sxm").launch_latency_ns
    assert large > 2 * small  # 16M threads x 12 bytes over HBM at half efficiency ~ 120 µs


def test_shapeless_gemm_kernels_get_the_constant_not_the_grid_estimate():
    pred = load_predictor("h100-sxm").predict(
        OpBatch.from_columns(1, name="sm90_xmma_gemm_bf16", grid_x=132, block_x=384)
    )
    assert list(pred.model) == ["constant:unmodelled"] and pred.duration_ns[0] == 5000
