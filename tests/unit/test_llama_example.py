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


def _shard_of(full: llama.LlamaDecoder, part: llama.LlamaDecoder) -> None:
    """Copy this tensor-parallel rank's slices of the full model's weights into `part`."""
    cfg, shard = full.cfg, part.shard
    hd, q, kv = cfg.head_dim, part.heads * cfg.head_dim, part.kv_heads * cfg.head_dim
    inter = cfg.intermediate // shard.tp
    r = shard.tp_rank
    # this rank's key/value heads: its own slice, or (fewer kv heads than ranks) the one its
    # query heads share in grouped-query attention
    group = cfg.heads // cfg.kv_heads
    kv0 = r * kv if cfg.kv_heads >= shard.tp else (r * part.heads // group) * hd
    part.embedding.copy_(full.embedding)
    part.lm_head.copy_(full.lm_head)
    for a, b in zip(full.layers, part.layers, strict=True):
        wq, wk, wv = a.qkv.split([cfg.hidden, cfg.kv_heads * hd, cfg.kv_heads * hd])
        b.qkv.copy_(torch.cat([wq[r * q : (r + 1) * q], wk[kv0 : kv0 + kv], wv[kv0 : kv0 + kv]]))
        b.o.copy_(a.o[:, r * q : (r + 1) * q])
        gate, up = a.gate_up.chunk(2)
        b.gate_up.copy_(
            torch.cat([gate[r * inter : (r + 1) * inter], up[r * inter : (r + 1) * inter]])
        )
        b.down.copy_(a.down[:, r * inter : (r + 1) * inter])


@pytest.mark.parametrize("tp", [2, 4])
def test_tensor_parallel_shards_compute_what_the_whole_model_does(tp: int) -> None:
    """Column-parallel qkv and gate/up, row-parallel o and down, one sum per block: the ranks
    (threads here, summing through a barrier) sample the tokens the unsharded model samples."""
    import threading

    cfg = llama.PRESETS["tiny"]
    cpu, f64 = torch.device("cpu"), torch.float64
    torch.manual_seed(2)
    full = llama.LlamaDecoder(cfg, batch=2, max_len=10, device=cpu, dtype=f64)
    prompt = torch.randint(0, cfg.vocab, (2, 6))
    partials: list[torch.Tensor | None] = [None] * tp
    meet = threading.Barrier(tp)

    def reducer(rank: int):
        def reduce(x: torch.Tensor) -> torch.Tensor:
            partials[rank] = x.clone()
            meet.wait()
            total = sum(p for p in partials if p is not None)
            meet.wait()
            x.copy_(total)
            return x

        return reduce

    parts = [
        llama.LlamaDecoder(cfg, 2, 10, cpu, f64, llama.Shard(tp, r), reducer(r)) for r in range(tp)
    ]
    for part in parts:
        _shard_of(full, part)
    results: list[torch.Tensor | None] = [None] * tp

    def run(rank: int) -> None:
        first = parts[rank].forward(prompt, torch.arange(6), prefill=True)
        results[rank] = parts[rank].forward(first.view(2, 1), torch.tensor([6]), prefill=False)

    threads = [threading.Thread(target=run, args=(r,)) for r in range(tp)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first = full.forward(prompt, torch.arange(6), prefill=True)
    expected = full.forward(first.view(2, 1), torch.tensor([6]), prefill=False)
    assert all(r is not None and torch.equal(r, expected) for r in results)


def test_pipeline_stages_split_the_layers() -> None:
    cfg = llama.LlamaConfig(layers=5)
    stages = [llama.Shard(pp=2, stage=s).layers(cfg) for s in range(2)]
    assert stages == [range(0, 3), range(3, 5)]
    with pytest.raises(ValueError, match="--tp 3 must divide"):
        llama.Shard(tp=3).heads(cfg)
