"""Shapes decoded from the launch arguments of real PyTorch kernels under `revati record`: each
operation of a program with known sizes lands in the trace with the element count, bytes or
attention dims of its tensors, and is predicted by a shape model, not a fallback."""

from __future__ import annotations

import json

import pytest

from revati.predict.batch import ATTENTION_COLUMNS
from tests.integration.torch_helpers import TorchRun, record_python

PROGRAM = """
import torch
import torch.nn.functional as F
x = torch.randn(1000, 4096, device="cuda")
y = torch.randn(1000, 4096, device="cuda")
b = x.to(torch.bfloat16)
ids = torch.tensor([[5, 7, 9], [11, 13, 15]], device="cuda")
q = torch.randn(3, 8, 200, 128, device="cuda", dtype=torch.bfloat16)
k = torch.randn(3, 2, 300, 128, device="cuda", dtype=torch.bfloat16)
keep = torch.ones(1, 1, 1, 300, device="cuda", dtype=torch.bool)
torch.cuda.synchronize()
ops = {
    "add": lambda: x + y,
    "mul": lambda: x * y,
    "silu": lambda: F.silu(b),
    "sum_rows": lambda: x.sum(dim=1),
    "mean_cols": lambda: x.mean(dim=0),
    "softmax": lambda: torch.softmax(x, dim=-1),
    "softmax_small": lambda: torch.softmax(x[:, :512], dim=-1),
    "embedding": lambda: F.embedding(ids, b),
    "cat": lambda: torch.cat([x, y], dim=0),
    "sdpa_causal": lambda: F.scaled_dot_product_attention(
        q, q, q, is_causal=True),
    "sdpa_gqa": lambda: F.scaled_dot_product_attention(q, k, k, enable_gqa=True),
    "sdpa_masked": lambda: F.scaled_dot_product_attention(
        q[:, :, :1], k, k, attn_mask=keep, enable_gqa=True),
    "add_loop": lambda: [x.add_(1.0) for _ in range(40)],
}
for name, op in ops.items():  # a synchronize before each operation marks where it starts
    op()
    torch.cuda.synchronize()
print("done", len(ops))
"""
N = 1000 * 4096
OPS = ("add", "mul", "silu", "sum_rows", "mean_cols", "softmax", "softmax_small", "embedding",
       "cat", "sdpa_causal", "sdpa_gqa", "sdpa_masked", "add_loop")  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> TorchRun:
    return record_python(tmp_path_factory.mktemp("kernel_args"), PROGRAM)


def kernels_of(run: TorchRun, op: str) -> list[tuple[str, str, int | None, dict]]:
    """(name, model, bytes, features) of the kernels that operation `op` launched: those between
    the synchronize that ends the one before and the one that ends it."""
    index = OPS.index(op)
    syncs = [t for (t,) in run.q(
        "SELECT enter_ns FROM api_calls WHERE name = 'cudaDeviceSynchronize' ORDER BY enter_ns"
    )][-len(OPS) - 1 :]  # fmt: skip
    rows = run.q(
        f"""SELECT k.name, k.model, f.bytes, f.features
            FROM kernels k LEFT JOIN kernel_features f USING (kernel_id)
            WHERE k.launch_ns > {syncs[index]} AND k.launch_ns < {syncs[index + 1]}
            ORDER BY k.kernel_id"""
    )
    assert rows, f"no kernel in {op}"
    return [(n, m, b, json.loads(f) if f else {}) for n, m, b, f in rows]


def only(run: TorchRun, op: str) -> tuple[str, str, int | None, dict]:
    found = kernels_of(run, op)
    assert len(found) == 1, found
    return found[0]


def test_the_program_ran_and_nothing_is_left_to_a_fallback(run: TorchRun) -> None:
    assert run.value("done") == str(len(OPS))
    fallback = run.q("SELECT name, model FROM kernels WHERE model LIKE '%unmodelled'")
    # the split-KV combine step of flash attention has no layout (its own small kernel)
    assert all("combine" in name for name, _ in fallback), fallback


@pytest.mark.parametrize(("op", "operands"), [("add", 3), ("mul", 3)])
def test_binary_elementwise_counts_every_element_of_three_fp32_tensors(run, op, operands) -> None:
    _, model, nbytes, feats = only(run, op)
    assert feats["elements"] == N and feats["operands"] == operands
    assert nbytes == N * 4 * 3 and model == "bandwidth"


def test_silu_on_bf16_reads_and_writes_two_bytes_an_element(run: TorchRun) -> None:
    _, model, nbytes, feats = only(run, "silu")
    assert feats["elements"] == N and nbytes == N * 2 * 2 and model == "bandwidth"


@pytest.mark.parametrize(
    ("op", "inputs", "outputs"), [("sum_rows", 4096, 1000), ("mean_cols", 1000, 4096)]
)
def test_a_reduction_knows_its_inputs_per_output_and_outputs(run, op, inputs, outputs) -> None:
    _, model, nbytes, feats = only(run, op)
    assert (feats["reduce_inputs"], feats["reduce_outputs"]) == (inputs, outputs)
    assert nbytes == N * 4 + outputs * 4 and model == "bandwidth"


@pytest.mark.parametrize(("op", "classes"), [("softmax", 4096), ("softmax_small", 512)])
def test_softmax_rows_times_classes(run, op, classes) -> None:
    kernels = [k for k in kernels_of(run, op) if "softmax" in k[0].lower()]
    assert len(kernels) == 1, kernels
    _, model, nbytes, feats = kernels[0]
    assert (feats["rows"], feats["classes"]) == (1000, classes)
    assert nbytes == 1000 * classes * 8 and model == "bandwidth"


def test_embedding_copies_one_row_per_index(run: TorchRun) -> None:
    _, model, nbytes, feats = only(run, "embedding")
    assert feats["elements"] == 6 * 4096  # 6 indices of a 4096-wide bf16 table
    assert nbytes == 2 * 6 * 4096 * 2 + 6 * 8 and model == "bandwidth"


def test_cat_copies_its_whole_output(run: TorchRun) -> None:
    _, model, nbytes, feats = only(run, "cat")
    assert feats["elements"] == 2 * N and nbytes == 2 * 2 * N * 4 and model == "bandwidth"


@pytest.mark.parametrize(
    ("op", "dims", "causal"),
    [
        ("sdpa_causal", (3, 200, 200, 8, 8, 128), True),
        ("sdpa_gqa", (3, 200, 300, 8, 2, 128), False),
        ("sdpa_masked", (3, 1, 300, 8, 2, 128), False),
    ],
)
def test_attention_dims_equal_the_tensor_shapes(run, op, dims, causal) -> None:
    attention = [k for k in kernels_of(run, op) if k[3].get("attn_head_dim")]
    assert len(attention) == 1, kernels_of(run, op)
    name, model, _, feats = attention[0]
    assert tuple(feats[k] for k in ATTENTION_COLUMNS) == dims, name
    assert feats["attn_causal"] is causal and model.startswith("attention")


def test_a_run_of_launches_keeps_every_launch_shape(run: TorchRun) -> None:
    """Back-to-back launches are placed as one vectorised run; each keeps its features."""
    kernels = kernels_of(run, "add_loop")
    assert len(kernels) == 40
    assert all(feats.get("elements") == N and nbytes == N * 8 for _, _, nbytes, feats in kernels)
