"""vLLM, unmodified, under `revati record`: offline generation on a 2-layer Llama-3-8B (real
hidden sizes, dummy weights created on the virtual device), eager and with vLLM's defaults
(torch.compile and CUDA graphs of decode).

Needs `pip install -e '.[dev,vllm]'`; skips, saying so, where vLLM is not installed.
"""

from __future__ import annotations

import json

import pytest

from tests.integration.torch_helpers import TorchRun
from tests.integration.vllm_helpers import (
    IDLE_S,
    MAX_MODEL_LEN,
    MODEL_DIR,
    OUTPUT_TOKENS,
    PROMPTS,
)


@pytest.fixture(scope="module", params=["eager", "graph"])
def run(request: pytest.FixtureRequest, vllm_offline_run) -> tuple[str, TorchRun]:
    return request.param, vllm_offline_run(request.param)


def test_every_request_produces_its_tokens(run: tuple[str, TorchRun]) -> None:
    _, run_ = run
    outputs = run_.lines("request")
    assert len(outputs) == PROMPTS, run_.proc.stdout
    for line in outputs:
        _, prompt_len, produced = line.split()
        assert int(produced) == OUTPUT_TOKENS and int(prompt_len) > 0, line


def test_nothing_is_unsupported_and_every_kernel_is_named(run: tuple[str, TorchRun]) -> None:
    _, run_ = run
    assert run_.q("SELECT DISTINCT name FROM unsupported_calls") == []
    assert run_.q("SELECT count(*) FROM kernels WHERE name LIKE 'kernel#%'") == [(0,)]


def test_decode_replays_cuda_graphs_only_when_not_eager(run: tuple[str, TorchRun]) -> None:
    mode, run_ = run
    (launches,) = run_.q("SELECT count(*) FROM api_calls WHERE name = 'cudaGraphLaunch'")[0]
    # one replay per decode step after the first token (prefill runs piecewise, eager-sized)
    assert launches >= (OUTPUT_TOKENS - 1 if mode == "graph" else 0)
    assert (launches > 0) == (mode == "graph")


def test_the_kv_cache_is_sized_from_an_h100s_memory(run: tuple[str, TorchRun]) -> None:
    _, run_ = run
    blocks, block_size = map(int, run_.value("kv_blocks").split())
    # 2 layers x (K, V) x 8 kv heads x 128 x bf16 per token
    cache_gib = blocks * block_size * 2 * 2 * 8 * 128 * 2 / 2**30
    # vLLM's default share of an 80 GB H100 (79.65 GiB) is 0.92; weights and activations
    # (about 5 GiB for this model) come off it
    assert 60 < cache_gib < 0.92 * 79.65, cache_gib


def test_gemms_and_attention_carry_shapes(run: tuple[str, TorchRun]) -> None:
    mode, run_ = run
    gemms = run_.q(
        """SELECT f.gemm_m, f.gemm_n, f.gemm_k FROM kernels k JOIN kernel_features f
           USING (kernel_id) WHERE f.gemm_m IS NOT NULL"""
    )
    assert gemms and all(m and n and k for m, n, k in gemms)
    # Llama-3-8B's qkv projection: 4096 inputs, 4096 + 2 * 8 * 128 outputs
    assert any(6144 in (m, n) and k == 4096 for m, n, k in gemms), sorted(set(gemms))[:10]
    attention_carries_its_shape(run_, eager=mode == "eager")


def attention_carries_its_shape(run_: TorchRun, *, eager: bool) -> None:
    """Every FlashAttention 3 launch and KV-cache write carries Llama-3-8B's attention shape
    (32 query heads, 8 KV heads, head dim 128, bf16, causal), decoded from its arguments."""
    rows = run_.q(
        """SELECT k.name, k.grid_x, k.graph_id, f.dtype, f.features FROM kernels k
           LEFT JOIN kernel_features f USING (kernel_id)
           WHERE k.name LIKE '%FlashAttnFwdSm90%' OR k.name LIKE '%reshape_and_cache_flash%'
           ORDER BY k.kernel_id"""
    )
    fa3 = [(json.loads(f), dtype) for name, _, _, dtype, f in rows if "FlashAttnFwdSm90" in name]
    assert fa3 and all(f is not None for _, _, _, _, f in rows), rows[:4]
    # eager, every launch is a step of the requests (the longest: its prompt and outputs); with
    # graphs, vLLM also runs dummy batches of its longest length before capturing, and a graph
    # replays the arguments of its capture
    longest = PROMPTS - 1 + 16 + OUTPUT_TOKENS if eager else MAX_MODEL_LEN
    for f, dtype in fa3:
        assert f["layout"] == "vllm_fa3_fwd" and dtype == "bf16" and f["attn_causal"] is True
        assert (f["attn_heads"], f["attn_kv_heads"], f["attn_head_dim"]) == (32, 8, 128), f
        assert 1 <= f["attn_batch"] <= PROMPTS and 1 <= f["attn_q_len"] <= f["attn_total_q"]
        assert f["attn_q_len"] <= f["attn_kv_len"] <= f["attn_max_kv_len"] <= longest, f
    # in eager steps each layer writes its new tokens to the cache, then attends with exactly
    # those queries: the write's thread blocks (one per token) equal the attention's total
    if eager:
        pairs = [(a, b) for a, b in zip(rows, rows[1:], strict=False) if "FlashAttnFwdSm90" in b[0]]
        assert pairs and all(
            "reshape_and_cache" in a[0] and a[1] == json.loads(b[4])["attn_total_q"]
            for a, b in pairs
        ), pairs[:2]
        # the queries sum over the run to the prompts' tokens past the cached shared block
        # (16 tokens, all four prompts start alike) and one per later output token
        layers = json.loads((MODEL_DIR / "config.json").read_text())["num_hidden_layers"]
        total = sum(f["attn_total_q"] for f, _ in fa3) // layers
        assert total == 16 + sum(range(1, PROMPTS)) + PROMPTS * (OUTPUT_TOKENS - 1), total


# Llama-3-8B's rows: what vLLM's one-block-per-token kernels move per token, and once
ROW_ELEMENTS = {
    "act_and_mul_kernel": (3 * 14336, 0),  # the MLP's gate and up halves, the product
    "fused_add_rms_norm_kernel": (4 * 4096, 4096),  # the hidden row and its residual, the weight
    "rms_norm_kernel": (2 * 4096, 4096),
    "rotary_embedding_kernel": (2 * (32 + 8) * 128 + 128, 0),  # q and k heads, cos/sin
}


def test_vllm_row_kernels_carry_their_sizes(run: tuple[str, TorchRun]) -> None:
    mode, run_ = run
    rows = run_.q(
        """SELECT k.name, k.grid_x, f.features FROM kernels k
           LEFT JOIN kernel_features f USING (kernel_id)
           WHERE k.name LIKE '%vllm::%' AND (k.name LIKE '%norm_kernel%'
                 OR k.name LIKE '%act_and_mul_kernel%' OR k.name LIKE '%rotary_embedding%')"""
    )
    # eager, vLLM runs its own kernels; compiled, Inductor may fuse some into Triton kernels
    found = {next(k for k in ROW_ELEMENTS if f"::{k}<" in name) for name, _, _ in rows}
    assert found == set(ROW_ELEMENTS) or (mode == "graph" and found <= set(ROW_ELEMENTS))
    for name, tokens, features in rows:
        per_token, once = next(v for k, v in ROW_ELEMENTS.items() if f"::{k}<" in name)
        assert features is not None, name
        assert json.loads(features)["elements"] == tokens * per_token + once, (name, features)


def test_the_idle_engine_lets_the_clock_jump(run: tuple[str, TorchRun]) -> None:
    """While the program sleeps and the engine core idles, no participant thread counts as
    running: every idle wait of vLLM and PyTorch (ZMQ's and Gloo's epoll loops, the NCCL
    watchdog's timed waits, the OpenMP pool's barrier, timed futex waits) is seen, so the idle
    time passes in jumps, none of it flowing at wall speed."""
    _, run_ = run
    sleeps = run_.q(
        f"SELECT blocked_ns, resumed_ns FROM syncs WHERE kind = 'sleep' "
        f"AND deadline_ns - blocked_ns BETWEEN {IDLE_S * 1e9 - 1e6} AND {IDLE_S * 1e9}"
    )
    assert len(sleeps) == 1, sleeps
    start, end = sleeps[0]
    (jumped,) = run_.q(
        f"SELECT coalesce(sum(to_ns - from_ns), 0) FROM jumps WHERE from_ns >= {start} "
        f"AND to_ns <= {end}"
    )[0]
    assert jumped > 0.9 * (end - start), (jumped, end - start)
    (held,) = run_.q("SELECT count(*) FROM processes WHERE running_wall_ns > 0")[0]
    assert held >= 2  # the program's and the engine core's processes, at least
