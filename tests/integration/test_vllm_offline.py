"""vLLM, unmodified, under `revati record`: offline generation on a 2-layer Llama-3-8B (real
hidden sizes, dummy weights created on the virtual device), eager and with vLLM's defaults
(torch.compile and CUDA graphs of decode).

Needs `pip install -e '.[dev,vllm]'`; skips, saying so, where vLLM is not installed.
"""

from __future__ import annotations

import pytest

from tests.integration.torch_helpers import TorchRun
from tests.integration.vllm_helpers import OUTPUT_TOKENS, PROMPTS


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
    _, run_ = run
    gemms = run_.q(
        """SELECT f.gemm_m, f.gemm_n, f.gemm_k FROM kernels k JOIN kernel_features f
           USING (kernel_id) WHERE f.gemm_m IS NOT NULL"""
    )
    assert gemms and all(m and n and k for m, n, k in gemms)
    # Llama-3-8B's qkv projection: 4096 inputs, 4096 + 2 * 8 * 128 outputs
    assert any(6144 in (m, n) and k == 4096 for m, n, k in gemms), sorted(set(gemms))[:10]
    attention = run_.q(
        """SELECT name, grid_x * grid_y * grid_z, block_x * block_y * block_z FROM kernels
           WHERE name ILIKE '%flash%fwd%' OR name ILIKE '%flash%attn%'"""
    )
    assert attention, run_.q("SELECT DISTINCT name FROM kernels LIMIT 50")
    assert all(grid > 0 and block > 0 for _, grid, block in attention)
