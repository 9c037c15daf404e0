"""Shapes of vLLM 0.33.0's kernels from their kept argument bytes (layouts:
`vllm_layouts.py`): FlashAttention 3 and 2 forward launches, varlen ones with the totals the
shim read from their length arrays, and vLLM's one-block-per-token kernels."""

from __future__ import annotations

from collections.abc import Callable

from revati.engine.arg_layout import ArgLayout
from revati.engine.arg_shapes import (
    ArgsShape,
    attention_shape,
    layout_json,
    scalar_types,
    template_bools,
)


def _mainloop_bools(name: str) -> list[bool]:
    """The bool template arguments of FlashAttention 3's CollectiveMainloopFwdSm90, in order
    (Is_causal, Is_local, Has_softcap, Varlen, PagedKVNonTMA, AppendKV, HasQv, ...): the
    words after its architecture tag, up to the first that is not a bool."""
    args = name.split("CollectiveMainloopFwdSm90<", 1)[-1].split("cutlass::arch::", 1)[-1]
    out = []
    for word in args.split(", ")[1:]:
        if word.strip() not in ("true", "false"):
            break
        out.append(word.strip() == "true")
    return out


def _varlen_dims(
    v: dict, b: int, q_len: int, kv_len: int, total_q: int
) -> tuple[tuple[int, int], dict]:
    """The (query, KV) lengths the model reads for a varlen launch of `b` sequences whose
    parameters say `q_len` (the mean or maximum query length), `kv_len` (the maximum KV length)
    and `total_q` (0 if they do not), and its features.

    The shim's summary of the length arrays is believed only where it agrees with the
    parameters: the query lengths where it counts `b` sequences whose total is `total_q` (or
    at most b * q_len), the KV lengths where, besides, their total lies between the query total
    and b * kv_len. Arrays that a kernel wrote (vLLM computes its KV lengths on the device;
    under emulation kernels write nothing) hold stale bytes that fail these checks, and the
    KV length stays the maximum."""
    q_sum, k_sum = int(v["sum_q"]), int(v["sum_k"])
    q_read = v["sequences"] == b and q_sum > 0
    q_read = q_read and (q_sum == total_q if total_q else q_sum <= b * q_len)
    k_read = q_read and q_sum <= k_sum <= b * kv_len
    features: dict[str, object] = {"attn_max_kv_len": kv_len}
    if q_read:
        q_len = max(1, round(q_sum / b))
        features.update(attn_total_q=q_sum, attn_sum_qq=int(v["sum_qq"]))
    if k_read:
        kv_len = round(k_sum / b)
        features.update(attn_total_kv=k_sum, attn_sum_qk=int(v["sum_qk"]))
    return (q_len, kv_len), features


def decode_fa3(layout: ArgLayout, v: dict, name: str) -> ArgsShape | None:
    """FlashAttention 3's forward kernel. A varlen launch (vLLM's always) packs its sequences:
    its query length is their total; the lengths the model reads are the batch's means where
    the shim read the sequences' lengths, else the mean query length and the maximum KV
    length."""
    bools = _mainloop_bools(name)
    if len(bools) < 4:
        return None
    causal, varlen = bools[0], bools[3]
    b, q, kv = int(v["b"]), int(v["seqlen_q"]), int(v["max_seqlen_k"])
    heads = (int(v["h"]), int(v["h_k"]), int(v["d"]))
    if not varlen or b <= 0:
        return attention_shape(layout, name, (b, q, kv, *heads), causal)
    (q_len, kv_len), extra = _varlen_dims(v, b, -(-q // b), kv, q)
    extra.setdefault("attn_total_q", q)
    return attention_shape(layout, name, (b, q_len, kv_len, *heads), causal, **extra)


def decode_flash_varlen(layout: ArgLayout, v: dict, name: str) -> ArgsShape | None:
    """FlashAttention 2 (vLLM's): max lengths in the parameters, the sequences' own in device
    arrays when the launch is varlen (the summary)."""
    bools = template_bools(name)
    causal = len(bools) > 1 and bools[1 if "flash_fwd_kernel<" in name else 0]
    b, q, kv = int(v["b"]), int(v["seqlen_q"]), int(v["seqlen_k"])
    (q_len, kv_len), extra = _varlen_dims(v, b, q, kv, 0) if b > 0 else ((q, kv), {})
    dims = (b, q_len, kv_len, int(v["h"]), int(v["h_k"]), int(v["d"]))
    return attention_shape(layout, name, dims, causal, **extra)


def decode_kv_cache_write(layout: ArgLayout, v: dict, name: str) -> ArgsShape | None:
    """vLLM's reshape_and_cache_flash: one block per token copies its keys and values
    (num_heads x head_size each) into the paged cache and reads its slot (int64)."""
    tokens, heads, size = int(v["blocks"]), int(v["num_heads"]), int(v["head_size"])
    types = scalar_types(name.split(">(", 1)[0])
    if min(tokens, heads, size) <= 0 or len(types) < 2:
        return None
    elements = 2 * tokens * heads * size
    nbytes = elements * (types[0][0] + types[1][0]) + 8 * tokens
    features = layout_json(layout, elements=elements, tokens=tokens, heads=heads, head_size=size,
                     block_size=int(v["block_size"]))  # fmt: skip
    return ArgsShape(types[0][1], nbytes, features=features)


def decode_vllm_rowwise(layout: ArgLayout, v: dict, name: str) -> ArgsShape | None:
    """vLLM's one-block-per-token kernels: elements moved per token (reads and writes) and per
    launch (a weight read once), from the sizes in their arguments."""
    tokens = int(v["blocks"])
    if layout.name == "vllm_act_and_mul":
        per_token, once = 3 * int(v["d"]), 0  # reads x and y, writes act(x) * y
    elif layout.name == "vllm_rotary_embedding":  # rotates queries and keys in place
        heads = int(v["num_heads"]) + int(v["num_kv_heads"])
        per_token, once = 2 * heads * int(v["head_size"]) + int(v["rot_dim"]), 0
    else:  # rms norm: reads and writes a row (with the residual: two), reads the weight once
        hidden = int(v["hidden_size"])
        per_token, once = (4 if "fused_add" in layout.name else 2) * hidden, hidden
    types = scalar_types(name.split("_kernel<", 1)[-1])  # its first template argument
    if min(tokens, per_token) <= 0 or not types:
        return None
    size, dtype = types[0]
    elements = tokens * per_token + once
    return ArgsShape(
        dtype, elements * size, features=layout_json(layout, elements=elements, tokens=tokens)
    )


def decode_custom_allreduce(layout: ArgLayout, v: dict, name: str) -> ArgsShape | None:
    """vLLM's custom all-reduce kernel: the message's bytes (16-byte packs), the group's size
    (its `ngpus` template argument), this rank, and the address of rank 0's signal buffer as
    this process maps it (`signals[0]`: rank 0's own allocation, IPC-mapped in its peers), which
    names the group once mapped back to its exporter."""
    head = name.split(">(", 1)[0]
    world = head.rsplit(", ", 1)[-1] if ", " in head else ""
    packs, rank = int(v["packs"]), int(v["rank"])
    types = scalar_types(head.split("stage<", 1)[-1])
    if not world.isdigit() or packs <= 0 or not 0 <= rank < int(world) or not types:
        return None
    nbytes = 16 * packs
    features = layout_json(layout, message_bytes=nbytes, world_size=int(world), rank=rank,
                           stages=2 if "_2stage<" in name else 1, signal0=int(v["signal0"]))  # fmt: skip
    return ArgsShape(types[0][1], nbytes, features=features)


VLLM_DECODERS: dict[str, Callable[[ArgLayout, dict, str], ArgsShape | None]] = {
    "fa3": decode_fa3,
    "flash_varlen": decode_flash_varlen,
    "kv_cache_write": decode_kv_cache_write,
    "vllm_rowwise": decode_vllm_rowwise,
    "custom_allreduce": decode_custom_allreduce,
}
