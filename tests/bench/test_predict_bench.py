"""Predictor throughput: 100k mixed records (run with `pytest tests/bench -s` to see figures)."""

from __future__ import annotations

import time

import numpy as np

from revati.predict import OpBatch, load_predictor

NAMES = np.array(
    [
        "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64",
        "void at::native::vectorized_elementwise_kernel<4>",
        "flash_fwd_splitkv_kernel",
        "ncclDevKernel_AllReduce_Sum_bf16_RING_LL",
        "triton_poi_fused_add_mul_0",
    ]
    + [f"custom_kernel_{i}" for i in range(200)],
    dtype=object,
)


def mixed_batch(n: int, seed: int = 0) -> OpBatch:
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(NAMES), n)
    return OpBatch.from_columns(
        n,
        kind=np.where(pick == 3, "collective", "kernel"),
        name=NAMES[pick],
        grid_x=rng.integers(1, 4096, n), block_x=128,
        gemm_m=np.where(pick == 0, rng.integers(1, 8192, n), 0), gemm_n=4096, gemm_k=4096,
        dtype="bf16", bytes=np.where(pick % 2 == 1, rng.integers(1, 1 << 28, n), 0),
        collective="allreduce", world_size=8,
        attn_batch=16, attn_q_len=1, attn_kv_len=rng.integers(1, 8192, n), attn_heads=32,
        attn_kv_heads=8, attn_head_dim=128,
    )  # fmt: skip


def test_predict_100k_records():
    predictor = load_predictor("h100-sxm")
    batch = mixed_batch(100_000)
    predictor.predict(batch)  # warm caches
    times = []
    for _ in range(5):
        start = time.perf_counter()
        pred = predictor.predict(batch)
        times.append(time.perf_counter() - start)
    assert len(pred.duration_ns) == 100_000 and (pred.duration_ns >= 1).all()
    models, counts = np.unique(pred.model.astype(str), return_counts=True)
    print(
        f"\npredict 100k mixed records on h100-sxm: best {min(times) * 1e3:.1f} ms, median {np.median(times) * 1e3:.1f} ms"
    )
    print("  models: " + ", ".join(f"{m} {c}" for m, c in zip(models, counts, strict=True)))
    assert {"gemm", "attention:uncalibrated", "collective", "bandwidth"} <= set(models)
