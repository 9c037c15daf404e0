"""Stock PyTorch tensors, copies, elementwise ops, reductions and common layers under record."""

from __future__ import annotations

import pytest

from tests.integration.torch_helpers import TorchRun, record_python

PROGRAM = """
import torch
host = torch.tensor([3.0, 1.0, 4.0, 1.0, 5.0])
dev = host.to("cuda")                           # HtoD into backed memory
print("roundtrip", dev.cpu().tolist())          # DtoH: the bytes come back
x = torch.arange(12, dtype=torch.float32, device="cuda").reshape(3, 4)
print("item", (x * 2 + 1).sum().item(), x.max().item(), x.argmax().item())
values, index = torch.topk(x.flatten(), 3)
print("topk", len(values.tolist()), len(index.tolist()))
print("softmax", tuple(torch.softmax(x, dim=-1).shape))
print("layer_norm", tuple(torch.nn.functional.layer_norm(x, (4,)).shape))
emb = torch.nn.Embedding(10, 8).to("cuda")
print("embedding", tuple(emb(torch.tensor([1, 2], device="cuda")).shape))
print("multinomial", tuple(torch.multinomial(torch.ones(5, device="cuda"), 2).shape))
torch.cuda.synchronize()
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> TorchRun:
    return record_python(tmp_path_factory.mktemp("torch_basics"), PROGRAM)


def kernel_count(run: TorchRun, like: str) -> int:
    return run.q(f"SELECT count(*) FROM kernels WHERE name LIKE '%{like}%'")[0][0]


def test_host_data_round_trips_through_backed_device_memory(run: TorchRun) -> None:
    assert run.value("roundtrip") == "[3.0, 1.0, 4.0, 1.0, 5.0]"
    kinds = dict(run.q("SELECT kind, count(*) FROM copies GROUP BY kind"))
    assert kinds.get("HtoD", 0) >= 1 and kinds.get("DtoH", 0) >= 2


def test_item_reads_back_a_value_the_device_computed(run: TorchRun) -> None:
    # kernels write nothing (docs/design.md §4): the values are stale, the calls complete
    assert run.value("item") == "0.0 0.0 0"
    assert kernel_count(run, "reduce_kernel") >= 3  # sum, max, argmax


@pytest.mark.parametrize(
    ("key", "shape", "kernel"),
    [
        ("topk", "3 3", "gatherTopK"),
        ("softmax", "(3, 4)", "softmax_warp_forward"),
        ("layer_norm", "(3, 4)", "layer_norm_kernel"),
        ("embedding", "(2, 8)", "indexSelect"),
        ("multinomial", "(2,)", "distribution_elementwise"),
    ],
)
def test_layers_run_as_pytorchs_own_kernels(
    run: TorchRun, key: str, shape: str, kernel: str
) -> None:
    assert run.value(key) == shape
    assert kernel_count(run, kernel) >= 1


def test_nothing_unsupported_was_called(run: TorchRun) -> None:
    assert run.q("SELECT name, library FROM unsupported_calls") == []
