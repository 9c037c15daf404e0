"""The Llama-shaped decoder workload, run with real PyTorch on the CPU (shapes and control flow).

Under emulation it runs through `revati record --example llama` (tests/integration); here the same
code runs eagerly on the host so a shape or indexing mistake shows without the CUDA layers.
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch is an optional extra: pip install -e '.[torch]'"
)

from revati.examples import llama  # noqa: E402


def test_decode_reuses_the_prefix_cache_and_returns_one_token_per_sequence() -> None:
    torch.manual_seed(0)
    cfg = llama.PRESETS["tiny"]
    model = llama.LlamaDecoder(cfg, batch=3, max_len=12, device=torch.device("cpu"))
    prompt = torch.randint(0, cfg.vocab, (3, 8))
    first = model.forward(prompt, torch.arange(8), prefill=True)
    assert first.shape == (3,) and first.dtype == torch.long
    assert bool((first >= 0).all()) and bool((first < cfg.vocab).all())
    # The prefill filled positions 0..7 of every layer's cache and nothing after them.
    keys = model.cache.keys[0]
    assert keys[:, :, :8].abs().sum() > 0
    assert keys[:, :, 8:].abs().sum() == 0
    loop = llama.DecodeLoop(model, graph=False)
    second = loop.step(first, 8)
    assert second.shape == (3,)
    assert keys[:, :, 8].abs().sum() > 0 and keys[:, :, 9:].abs().sum() == 0


def test_decode_step_matches_a_full_causal_forward() -> None:
    """The masked single-token step computes what a causal pass over the whole prefix does."""
    cfg = llama.PRESETS["tiny"]
    cpu = torch.device("cpu")

    def model() -> llama.LlamaDecoder:
        torch.manual_seed(1)  # same seed, same weights
        return llama.LlamaDecoder(cfg, batch=2, max_len=10, device=cpu, dtype=torch.float64)

    stepping, whole = model(), model()
    prompt = torch.randint(0, cfg.vocab, (2, 6))
    nxt = stepping.forward(prompt, torch.arange(6), prefill=True)
    stepped = llama.DecodeLoop(stepping, graph=False).step(nxt, 6)
    full = whole.forward(torch.cat([prompt, nxt.view(2, 1)], dim=1), torch.arange(7), prefill=True)
    assert torch.equal(full, stepped)


def test_main_prints_step_times_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    llama.main(["--model", "tiny", "--device", "cpu", "--prompt-len", "4", "--decode-steps", "3"])
    out = json.loads(capsys.readouterr().out)
    assert out["decode_steps"] == 3 and out["mode"] == "eager" and out["prefill_ms"] > 0
