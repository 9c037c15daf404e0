"""Shapes decoded from kept launch-argument bytes (revati.engine.kernel_args, kernel_layouts):
each layout's bytes, packed as the shim keeps them, decode into the sizes they hold; kernel
names recorded from PyTorch 2.14 give the element types."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from revati import shim
from revati.engine import kernel_layouts
from revati.engine.kernel_args import decode, operand_sizes
from revati.engine.kernel_layouts import BY_ID, LAYOUTS
from revati.engine.launch_runs import launch_runs
from revati.engine.launch_shapes import pair_shapes

ADD_FLOAT = (
    "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>, "
    "std::array<char*, 3ul>, false>(int, at::native::CUDAFunctor_add<float>, std::array<char*, 3ul>)"
)
WHERE = (
    "void at::native::elementwise_kernel<128, 4, at::native::gpu_kernel_impl_nocast<at::native::"
    "(anonymous namespace)::where_kernel_impl(at::TensorIterator&)::{lambda()#1}::operator()() "
    "const::{lambda()#2}::operator()() const::{lambda(bool, unsigned short, unsigned short)#1}>"
    "(at::TensorIteratorBase&, ...)::{lambda(int)#1}>(int, ...)"
)
TO_BF16 = (
    "void at::native::vectorized_elementwise_kernel<8, at::native::bfloat16_copy_kernel_cuda("
    "at::TensorIteratorBase&)::{lambda(float)#1}, std::array<char*, 2ul>, false>(int, ...)"
)
MUL_BINARY = (
    "void at::native::elementwise_kernel<128, 2, at::native::gpu_kernel_impl_nocast<at::native::"
    "BinaryFunctor<c10::BFloat16, c10::BFloat16, float, at::native::binary_internal::MulFunctor"
    "<float> > >(at::TensorIteratorBase&, ...)::{lambda(int)#1}>(int, ...)"
)
MEAN = (
    "void at::native::reduce_kernel<128, 4, at::native::ReduceOp<float, at::native::MeanOps<float, "
    "float, float, float>, unsigned int, float, 4, 4> >(at::native::ReduceOp<float, at::native::"
    "MeanOps<float, float, float, float>, unsigned int, float, 4, 4>)"
)
ARGMAX = (
    "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<c10::BFloat16, at::native::"
    "ArgMaxOps<float>, unsigned int, long, 4, 4> >(at::native::ReduceOp<c10::BFloat16, ...>)"
)
FLASH = (
    "void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4, false, false, "
    "cutlass::bfloat16_t, Flash_kernel_traits<128, 128, 64, 4, cutlass::bfloat16_t> >, false, "
    "true, false, false, true, true, false, false>(pytorch_flash::Flash_fwd_params)"
)
SPLITKV = (
    "void pytorch_flash::flash_fwd_splitkv_kernel<Flash_fwd_kernel_traits<128, 64, 128, 4, false, "
    "false, cutlass::bfloat16_t, Flash_kernel_traits<128, 64, 128, 4, cutlass::bfloat16_t> >, "
    "false, false, false, false, true, false, true, false>(pytorch_flash::Flash_fwd_params)"
)
MEM_EFFICIENT = (
    "fmha_cutlassF_bf16_aligned_64x128_rf_sm80(PyTorchMemEffAttention::AttentionKernel<cutlass::"
    "bfloat16_t, cutlass::arch::Sm80, true, 64, 128, 128, true, true>::Params)"
)


def layout(name: str) -> kernel_layouts.ArgLayout:
    return next(lay for lay in LAYOUTS if lay.name == name)


def kept(name: str, *values: int) -> bytes:
    lay = layout(name)
    return struct.pack(lay.fields, *values).ljust(shim.ARGS_BYTES, b"\0")


def features(shape) -> dict:
    return json.loads(shape.features)


def test_every_layout_keeps_what_its_fields_read_and_names_its_source() -> None:
    lines = kernel_layouts.config_lines().splitlines()
    assert len(lines) == len(LAYOUTS) == len(BY_ID)
    for lay, line in zip(LAYOUTS, lines, strict=True):
        slices = [f"{a}:{o}:{n}" for a, o, n in lay.slices]
        slices += ["v" + ":".join(map(str, lay.varlen))] if lay.varlen else []
        slices += [f"g{lay.group_unit}"] if lay.group_unit else []
        assert line == f"kernel_args={lay.id};{lay.pattern};" + ",".join(slices)
        assert ";" not in lay.pattern and len(line) < 500  # the shim's config line limit
        assert "PyTorch 2.14" in lay.source or "vLLM 0.33.0" in lay.source


def test_an_elementwise_kernel_moves_n_times_its_operand_sizes() -> None:
    add = decode(
        layout("vectorized_elementwise").id, kept("vectorized_elementwise", 4096000), ADD_FLOAT
    )
    assert add is not None and add.bytes == 4096000 * 12 and add.dtype == "fp32"
    assert features(add) == {"layout": "vectorized_elementwise", "elements": 4096000, "operands": 3}
    assert add.predictor_columns()["bytes"] == 4096000 * 12


@pytest.mark.parametrize(
    ("name", "sizes", "dtype"),
    [
        (WHERE, [1, 2, 2, 2], "bool"),  # condition, two inputs, output of the inputs' type
        (TO_BF16, [4, 2], "fp32"),  # a casting copy writes the type its name says
        (MUL_BINARY, [2, 2, 4], "bf16"),  # BinaryFunctor<in, in, out, op>
    ],
)
def test_operand_sizes_come_from_the_types_in_the_name(name, sizes, dtype) -> None:
    assert operand_sizes(name) == (sizes, dtype)


def test_a_zero_count_decodes_to_no_shape() -> None:
    assert decode(layout("elementwise").id, kept("elementwise", 0), WHERE) is None
    assert decode(250, bytes(shim.ARGS_BYTES), WHERE) is None  # a layout this revati lacks


def test_a_reduction_finds_its_config_after_ops_and_ident() -> None:
    factor, ident = struct.unpack("<i", struct.pack("<f", 1 / 1000))[0], 0
    # MeanOps{float factor}, float ident, then ReduceConfig{4, inputs, outputs, 1, 1, 1, ...}
    words = [factor, ident, 4, 1000, 4096, 1, 1, 1, 0, 0, 0, 0, 0]
    mean = decode(layout("reduce").id, kept("reduce", *words), MEAN)
    assert mean is not None and mean.dtype == "fp32"
    assert features(mean)["reduce_inputs"] == 1000 and features(mean)["reduce_outputs"] == 4096
    assert mean.bytes == 4096 * 1000 * 4 + 4096 * 4
    # ArgMaxOps{} and a pair<float, int64> ident: the config at word 6, sized by the accumulator
    words = [0, 0, 0, 0, 0, 0, 16, 4096, 1000, 1, 1, 1, 0]
    argmax = decode(layout("reduce").id, kept("reduce", *words), ARGMAX)
    assert argmax is not None and features(argmax)["elements"] == 4096 * 1000
    assert argmax.bytes == 1000 * 4096 * 2 + 1000 * 8  # bf16 in, int64 out


def test_flash_attention_dims_and_causal_flag() -> None:
    lay = layout("pytorch_flash_fwd")
    shape = decode(lay.id, kept(lay.name, 8, 2, 3, 200, 300, 0, 128), FLASH)
    assert shape is not None and shape.dtype == "bf16" and shape.batch == 3
    assert shape.attention == (3, 200, 300, 8, 2, 128)
    assert features(shape)["attn_causal"] is True
    cols = shape.predictor_columns()
    assert (cols["attn_q_len"], cols["attn_kv_len"], cols["attn_kv_heads"]) == (200, 300, 2)
    lay = layout("pytorch_flash_fwd_splitkv")
    split = decode(lay.id, kept(lay.name, 32, 8, 1, 1, 160, 1, 128), SPLITKV)
    assert split is not None and split.attention == (1, 1, 161, 32, 8, 128)  # + the new keys
    assert features(split)["attn_causal"] is False


def test_memory_efficient_attention_dims_and_kv_heads_from_the_key_strides() -> None:
    lay = layout("pytorch_mem_efficient")
    # head_dim, head_dim_value, queries, keys, mask type, k head stride, k batch stride, b, h
    shape = decode(lay.id, kept(lay.name, 128, 128, 200, 300, 1, 300 * 128, 2 * 300 * 128, 3, 8),
                   MEM_EFFICIENT)  # fmt: skip
    assert shape is not None and shape.attention == (3, 200, 300, 8, 2, 128)
    assert features(shape)["attn_causal"] is True
    # keys laid out (batch, keys, heads, dim): the strides say nothing of the KV heads
    shape = decode(lay.id, kept(lay.name, 64, 64, 1, 40, 0, 64, 40 * 8 * 64, 2, 8), MEM_EFFICIENT)
    assert shape is not None and shape.attention == (2, 1, 40, 8, 8, 64)
    assert features(shape)["attn_causal"] is False


def test_argument_records_pair_with_the_next_launch_of_their_thread() -> None:
    records = np.zeros(4, dtype=shim.RECORD_DTYPE)
    records["type"] = [shim.REC_KERNEL_ARGS, shim.REC_LAUNCH, shim.REC_LAUNCH, shim.REC_KERNEL_ARGS]
    records["thread"] = [1, 2, 1, 1]
    records["kind"][[0, 3]] = layout("vectorized_elementwise").id
    raw = records.view(np.uint8).reshape(4, shim.RECORD_SIZE)
    raw[0, 12:] = np.frombuffer(kept("vectorized_elementwise", 1000), dtype=np.uint8)
    shim.launch_view(records)["kernel"][[1, 2]] = [7, 9]
    names = {9: ADD_FLOAT}
    pending: dict[int, bytes] = {}
    shapes = pair_shapes(records, pending, lambda kernel: names.get(kernel, "other"))
    assert list(shapes) == [2] and shapes[2].bytes == 12000
    assert list(pending) == [1]  # the last record waits for its launch in the next batch


def test_shape_records_do_not_break_a_run_of_launches() -> None:
    records = np.zeros(40, dtype=shim.RECORD_DTYPE)
    records["type"][0::2], records["type"][1::2] = shim.REC_KERNEL_ARGS, shim.REC_LAUNCH
    records["thread"] = 1
    launches = shim.launch_view(records)
    launches["stream"][1::2] = 7
    assert launch_runs(records, launches) == [(1, 40)]  # the first shape record is walked alone
    launches["stream"][21] = 9  # another stream from the 11th launch on: two runs
    launches["stream"][23::2] = 9
    assert launch_runs(records, launches) == [(1, 20), (21, 40)]


def vllm_launches() -> list[dict]:
    """Kept argument bytes of vLLM 0.33's KV-cache writes and FlashAttention 3 launches, as the
    shim kept them in a real run (tests/data/README.md, "Made here")."""
    path = Path(__file__).parents[1] / "data" / "vllm-kernel-args" / "fa3-eager-2l.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def decode_row(row: dict):
    return decode(layout(row["layout"]).id, bytes.fromhex(row["kept"]), row["name"], row["blocks"])


def test_vllm_fa3_launches_decode_into_llama_3_8b_attention() -> None:
    # the run: 4 prompts of 16-19 tokens sharing their first 16 (a cached block), 4 tokens each
    fa3 = [decode_row(row) for row in vllm_launches() if row["layout"] == "vllm_fa3_fwd"]
    assert all(s is not None and s.dtype == "bf16" and s.causal == 1 for s in fa3)
    dims = [s.attention for s in fa3 if s is not None]
    assert {d[3:] for d in dims} == {(32, 8, 128)}  # q heads, kv heads, head dim
    # prompt 0 alone (16 tokens); then its first output beside prompts 1-3 past the cached
    # block (1 + 1 + 2 + 3 queries, up to 19 keys); then decode steps
    assert dims[:3] == [(1, 16, 16, 32, 8, 128), (4, 2, 19, 32, 8, 128), (4, 1, 20, 32, 8, 128)]
    mixed = features(fa3[1])  # type: ignore[arg-type]
    assert (mixed["attn_total_q"], mixed["attn_sum_qq"], mixed["attn_max_kv_len"]) == (7, 15, 19)
    # vLLM computes its KV lengths on the device: under emulation the array holds stale bytes,
    # which the decoder refuses, keeping the maximum
    assert "attn_total_kv" not in mixed


def test_vllm_kv_cache_writes_move_keys_and_values_per_token() -> None:
    rows = [row for row in vllm_launches() if row["layout"] == "vllm_reshape_and_cache_flash"]
    for row in rows:
        shape = decode_row(row)
        tokens = row["blocks"]
        assert shape is not None and shape.dtype == "bf16"
        # keys and values of 8 heads x 128, bf16, read and written; an int64 slot per token
        assert shape.bytes == 2 * tokens * 8 * 128 * (2 + 2) + 8 * tokens
        assert features(shape)["block_size"] == 16


def varlen_kept(lay: kernel_layouts.ArgLayout, values: tuple, summary: tuple) -> bytes:
    plain = struct.pack(lay.fields, *values)
    return (plain + struct.pack(kernel_layouts.VARLEN_SUMMARY[0], *summary)).ljust(
        shim.ARGS_BYTES, b"\0"
    )


def test_a_varlen_summary_that_agrees_with_the_launch_gives_mean_lengths() -> None:
    lay = layout("vllm_fa3_fwd")
    name = next(row["name"] for row in vllm_launches() if row["layout"] == lay.name)
    # 3 sequences: queries 100, 1, 1 (total 102), keys 100, 50, 30 (max 100)
    values = (102, 128, 32, 8, 100, 3)
    summary = (3, 102, 180, 100 * 100 + 50 + 30, 100 * 100 + 2)
    shape = decode(lay.id, varlen_kept(lay, values, summary), name, 132)
    assert shape is not None and shape.attention == (3, 34, 60, 32, 8, 128)
    assert features(shape)["attn_sum_qk"] == 10080 and features(shape)["attn_total_kv"] == 180
    # a summary of other sequences (another batch, or zeros: memory not backed) is ignored
    for other in ((2, 102, 180, 0, 0), (0, 0, 0, 0, 0)):
        shape = decode(lay.id, varlen_kept(lay, values, other), name, 132)
        assert shape is not None and shape.attention == (3, 34, 100, 32, 8, 128)


def test_vllm_fa2_decodes_its_flash_params_and_summary() -> None:
    lay = layout("vllm_fa2_fwd_splitkv")
    name = SPLITKV.replace("pytorch_flash::", "flash::")
    # h, h_k, b, max seqlen_q, max seqlen_k, d; 2 decoding sequences with 40 and 20 keys
    shape = decode(lay.id, varlen_kept(lay, (32, 8, 2, 1, 40, 128), (2, 2, 60, 60, 2)), name)
    assert shape is not None and shape.attention == (2, 1, 30, 32, 8, 128)


VLLM_ROWWISE = {
    "vllm_act_and_mul": "void vllm::act_and_mul_kernel<c10::BFloat16, __nv_bfloat162, &(c10::"
    "BFloat16 vllm::silu_kernel<c10::BFloat16>(c10::BFloat16 const&, float)), ...>(c10::"
    "BFloat16*, c10::BFloat16 const*, int, float, float, float)",
    "vllm_rms_norm": "void vllm::rms_norm_kernel<c10::BFloat16, 8, 2, true>(c10::BFloat16*, "
    "c10::BFloat16 const*, long, long, long, long, long, c10::BFloat16 const*, long, float, int, "
    "int)",
    "vllm_fused_add_rms_norm": "std::enable_if<(((8)>(0)))&&vllm::_typeConvert<c10::BFloat16>::"
    "exists, void>::type vllm::fused_add_rms_norm_kernel<c10::BFloat16, 8, true>(c10::BFloat16*, "
    "long, c10::BFloat16*, c10::BFloat16 const*, float, int, int, long)",
    "vllm_rotary_embedding": "void vllm::rotary_embedding_kernel<c10::BFloat16, c10::BFloat16, "
    "true>(long const*, c10::BFloat16*, c10::BFloat16*, c10::BFloat16 const*, int, long, long, "
    "long, int, int, int, long, bool)",
}


@pytest.mark.parametrize(
    ("name", "values", "elements"),
    [
        ("vllm_act_and_mul", (14336,), 22 * 3 * 14336),  # Llama-3-8B's MLP, 22 tokens
        ("vllm_rms_norm", (4096,), 22 * 2 * 4096 + 4096),
        ("vllm_fused_add_rms_norm", (4096,), 22 * 4 * 4096 + 4096),
        ("vllm_rotary_embedding", (128, 32, 8, 128), 22 * (2 * 40 * 128 + 128)),
    ],
)
def test_vllm_one_block_per_token_kernels_move_their_rows(name, values, elements) -> None:
    shape = decode(layout(name).id, kept(name, *values), VLLM_ROWWISE[name], 22)
    assert shape is not None and shape.dtype == "bf16" and shape.bytes == 2 * elements
    assert features(shape) == {"layout": name, "elements": elements, "tokens": 22}


CUSTOM_ALLREDUCE = (
    "void vllm::cross_device_reduce_{}stage<__nv_bfloat16, {}>(vllm::RankData*, vllm::RankSignals, "
    "vllm::Signal*, __nv_bfloat16*, int, int)"
)


@pytest.mark.parametrize(("stages", "world"), [(1, 2), (2, 8)])
def test_vllm_custom_allreduce_keeps_its_group_rank_and_message(stages, world) -> None:
    lay = layout("vllm_custom_allreduce")
    # 22 tokens of a 4096-wide bf16 hidden state: 22 * 4096 * 2 / 16 packs, on rank 1
    packs = 22 * 4096 * 2 // 16
    name = CUSTOM_ALLREDUCE.format(stages, world)
    shape = decode(lay.id, kept(lay.name, 0x7F0012340000, 1, packs), name)
    assert shape is not None and shape.dtype == "bf16" and shape.bytes == 22 * 4096 * 2
    assert features(shape) == {
        "layout": "vllm_custom_allreduce", "message_bytes": 22 * 4096 * 2, "world_size": world,
        "rank": 1, "stages": stages, "signal0": 0x7F0012340000,
    }  # fmt: skip
    # a rank outside the group, or no packs: not this kernel's arguments
    for bad in ((world, packs), (0, 0)):
        assert decode(lay.id, kept(lay.name, 1, *bad), name) is None
