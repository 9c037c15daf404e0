"""Kernel shapes recovered from the operators of PyTorch-profiler traces recorded with shapes."""

from __future__ import annotations

import json

import pytest
from revati.recorder.importers import import_kineto, import_nsys
from revati.recorder.importers.operator_shapes import HostOp, OperatorIndex, nvtx_op, op_features
from revati.recorder.reader import open_trace

LENS = "real-traces/AMD-AGI__TraceLens/tests/traces/h100"
BERT = f"{LENS}/gaunernst_bert-small-uncased__1016001.json.gz"
VIT = f"{LENS}/Falconsai_nsfw_image_detection__1016002.json.gz"
GEMM_NAMES = "name SIMILAR TO '.*(gemm|xmma|nvjet|sm90_).*'"
ATTN_NAMES = "name SIMILAR TO '.*(flash|fmha|attention).*'"


def _counts(trace_path):
    with open_trace(trace_path) as trace:
        return trace.sql(
            f"SELECT count(*) FILTER (WHERE {GEMM_NAMES}), "
            f"count(*) FILTER (WHERE {GEMM_NAMES} AND gemm_m > 0), "
            f"count(*) FILTER (WHERE {ATTN_NAMES}), "
            f"count(*) FILTER (WHERE {ATTN_NAMES} AND features LIKE '%attn_head_dim%'), "
            "count(*), count(bytes) "
            "FROM kernels LEFT JOIN kernel_features USING (kernel_id)"
        )[0]


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        # (GEMM kernels, with m/n/k, attention kernels, with dims, kernels, with bytes)
        (BERT, (26, 26, 4, 4, 60, 56)),
        (VIT, (73, 73, 12, 12, 154, 142)),
    ],
)
def test_every_gemm_and_attention_kernel_gains_its_shape(tmp_path, test_data, rel, expected):
    out = tmp_path / "t.duckdb"
    import_kineto([test_data / rel], out)
    assert _counts(out) == expected


def test_bert_gemm_and_attention_shapes_come_from_their_operators(tmp_path, test_data):
    out = tmp_path / "bert.duckdb"
    import_kineto([test_data / BERT], out)
    with open_trace(out) as trace:
        gemms = trace.sql(
            "SELECT DISTINCT gemm_m, gemm_n, gemm_k, batch, dtype "
            f"FROM kernels JOIN kernel_features USING (kernel_id) WHERE {GEMM_NAMES}"
        )
        attn = trace.sql(
            f"SELECT DISTINCT features FROM kernels JOIN kernel_features USING (kernel_id) "
            f"WHERE {ATTN_NAMES}"
        )
    # aten::addmm with inputs [512], [141, 512], [512, 512] (bf16): 141 tokens through 512x512
    assert (141, 512, 512, 1, "bf16") in gemms
    assert all(row[4] == "bf16" and row[0] == 141 for row in gemms)
    (features,) = [json.loads(row[0]) for row in attn]
    want = dict(attn_batch=1, attn_q_len=141, attn_kv_len=141, attn_heads=8, attn_kv_heads=8)
    assert {k: features[k] for k in want} == want
    assert features["attn_head_dim"] == 64 and features["attn_causal"] is False


def _op(name, dims, types, concrete=()):
    return HostOp(name, 0.0, 1.0, list(dims), list(types), list(concrete))


BF = "c10::BFloat16"


def test_gemm_operators_give_m_n_k_batch():
    assert op_features(_op("aten::mm", [[64, 32], [32, 16]], [BF, BF]))["gemm_m"] == 64
    bmm = op_features(_op("aten::bmm", [[8, 64, 32], [8, 32, 16]], ["float", "float"]))
    assert (bmm["gemm_m"], bmm["gemm_n"], bmm["gemm_k"], bmm["batch"], bmm["dtype"]) == (
        64, 16, 32, 8, "fp32"
    )  # fmt: skip
    linear = op_features(_op("aten::linear", [[4, 10, 32], [16, 32], [16]], [BF, BF, BF]))
    assert (linear["gemm_m"], linear["gemm_n"], linear["gemm_k"], linear["batch"]) == (
        40,
        16,
        32,
        1,
    )
    addmm = op_features(_op("aten::addmm", [[64, 16], [64, 32], [32, 16]], [BF] * 3))
    assert (addmm["gemm_m"], addmm["gemm_n"], addmm["gemm_k"]) == (64, 16, 32)
    assert addmm["bytes"] == (64 * 32 + 32 * 16 + 64 * 16) * 2
    matmul = op_features(_op("aten::matmul", [[2, 5, 32], [32, 16]], [BF, BF]))
    assert (matmul["gemm_m"], matmul["batch"]) == (10, 1)
    cplx = op_features(_op("aten::mm", [[4, 4], [4, 4]], ["c10::complex<float>"] * 2))
    assert cplx["dtype"] == "c64"


def test_attention_layouts_and_causal_flag():
    bhsd = op_features(
        _op(
            "aten::_scaled_dot_product_flash_attention",
            [[2, 16, 100, 64], [2, 4, 300, 64], [2, 4, 300, 64], [], []],
            [BF, BF, BF, "Scalar", "Scalar"],
            ["", "", "", "0.", "True"],
        )
    )
    assert (bhsd["attn_heads"], bhsd["attn_kv_heads"], bhsd["attn_q_len"]) == (16, 4, 100)
    assert bhsd["attn_kv_len"] == 300 and bhsd["attn_causal"] is True
    bshd = op_features(
        _op("aten::_flash_attention_forward", [[2, 100, 16, 64], [2, 300, 4, 64]], [BF, BF])
    )
    assert (bshd["attn_q_len"], bshd["attn_kv_len"], bshd["attn_heads"]) == (100, 300, 16)
    assert "attn_causal" not in bshd


def test_other_operators_give_bytes_and_scalars_give_nothing():
    add = op_features(_op("aten::add", [[1024, 256], [1024, 256], []], [BF, BF, "Scalar"]))
    assert add == {"bytes": 3 * 1024 * 256 * 2}
    assert op_features(_op("aten::add", [[], []], ["Scalar", "Scalar"])) == {}
    assert op_features(_op("aten::mm", [[64, 32]], [BF])) == {}


def test_a_call_without_external_id_uses_the_innermost_open_operator():
    def event(name, ts, dur, dims):
        args = {"Input Dims": dims, "Input type": [BF] * len(dims)}
        return dict(cat="cpu_op", name=name, pid=1, tid=1, ts=ts, dur=dur, args=args)

    index = OperatorIndex.from_kineto(
        [
            event("aten::linear", 0, 100, [[8, 32], [16, 32]]),
            event("aten::addmm", 10, 50, [[16], [8, 32], [32, 16]]),
            event("aten::add", 70, 10, [[8, 16], [8, 16]]),
        ]
    )
    call = dict(cat="cuda_runtime", pid=1, tid=1, ts=20, args={"correlation": 5})
    assert op_features(index.enclosing((1, 1), 20)[0])["gemm_m"] == 8
    assert index.launcher_features(call)["gemm_n"] == 16
    assert index.launcher_features({**call, "ts": 75}) == {"bytes": 3 * 8 * 16 * 2}
    assert index.launcher_features({**call, "ts": 95})["gemm_k"] == 32  # only the linear
    assert index.launcher_features({**call, "tid": 2}) == {}


def test_convolutions_become_their_implicit_gemm():
    # the ViT patch embedding: 4 images 3x224x224, 768 filters 3x16x16, stride 16
    conv = _op(
        "aten::cudnn_convolution",
        [[4, 3, 224, 224], [768, 3, 16, 16], [], [], [], []],
        [BF, BF, "ScalarList", "ScalarList", "ScalarList", "Scalar"],
        ["", "", "[0, 0]", "[16, 16]", "[1, 1]", "1"],
    )
    f = op_features(conv)
    assert (f["gemm_m"], f["gemm_n"], f["gemm_k"], f["batch"]) == (4 * 14 * 14, 768, 3 * 256, 1)
    padded = _op(
        "aten::conv2d",
        [[1, 64, 56, 56], [64, 64, 3, 3], [], [], [], [], []],
        [BF, BF, "", "ScalarList", "ScalarList", "ScalarList", "Scalar"],
        ["", "", "", "[1, 1]", "[1, 1]", "[1, 1]", "1"],
    )
    assert op_features(padded)["gemm_m"] == 56 * 56


def test_emit_nvtx_ranges_give_untyped_shapes():
    text = "aten::addmm, seq = 12, op_id = 34, sizes = [[768], [788, 768], [768, 768], [], []]"
    op = nvtx_op(text + ", input_op_ids = [(1, 0)]", 10.0, 20.0)
    assert op is not None and op.name == "aten::addmm"
    f = op_features(op)
    assert (f["gemm_m"], f["gemm_n"], f["gemm_k"], f["dtype"]) == (788, 768, 768, "")
    assert f["bytes"] == (788 * 768 + 768 * 768 + 788 * 768) * 2
    assert nvtx_op("aten::mm, op_id = 314307", 0, 1) is None  # recorded without shapes
    index = OperatorIndex.from_nvtx([(7, text, 10.0, 20.0), (7, "aten::linear, op_id = 1", 0, 30)])
    assert index.features_at(7, 15.0)["gemm_m"] == 788
    assert index.features_at(7, 25.0) == {} and index.features_at(8, 15.0) == {}


def test_nsight_traces_without_nvtx_sizes_gain_no_shapes(tmp_path, test_data):
    out = tmp_path / "n.duckdb"
    import_nsys(
        test_data / "real-traces/GindaChen__nsys-ai/tests/fixtures/h100_2gpu_1s.sqlite", out
    )
    with open_trace(out) as trace:
        ranges, kernels, shaped = trace.sql(
            "SELECT (SELECT count(*) FROM nvtx_ranges WHERE name LIKE 'aten::%'), count(*), "
            "count(gemm_m) FROM kernels LEFT JOIN kernel_features USING (kernel_id)"
        )[0]
    assert ranges > 1000 and kernels == 3442 and shaped == 0
