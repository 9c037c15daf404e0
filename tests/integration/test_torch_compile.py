"""torch.compile (Inductor) and a hand-written Triton kernel: compiled on the CPU (ptxas),
loaded through revati's driver layer, launched as named kernels."""

from __future__ import annotations

import pytest

from tests.integration.torch_helpers import TorchRun, record_python

PROGRAM = """
import torch
import triton
import triton.language as tl


@triton.jit
def scale_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(out_ptr + offsets, tl.load(x_ptr + offsets, mask=mask) * 2, mask=mask)


x = torch.randn(4096, device="cuda")
out = torch.empty_like(x)
scale_kernel[(4096 // 256,)](x, out, 4096, BLOCK=256)
print("triton", tuple(out.shape))


@torch.compile
def fused(a, b):
    return torch.relu(a * b + 1).sum(dim=-1)


print("compiled", tuple(fused(x.view(16, 256), x.view(16, 256)).shape))
torch.cuda.synchronize()
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> TorchRun:
    return record_python(tmp_path_factory.mktemp("torch_compile"), PROGRAM)


def test_a_hand_written_triton_kernel_launches_by_name(run: TorchRun) -> None:
    assert run.value("triton") == "(4096,)"
    rows = run.q("SELECT grid_x, block_x FROM kernels WHERE name = 'scale_kernel'")
    assert rows == [(16, 128)]  # 16 programs of 4 warps


def test_inductor_kernels_are_in_the_trace_by_name(run: TorchRun) -> None:
    assert run.value("compiled") == "(16,)"
    names = [n for (n,) in run.q("SELECT name FROM kernels WHERE name LIKE 'triton_%'")]
    assert names and all("fused" in n for n in names), names
    loads = run.q("SELECT count(*) FROM api_calls WHERE name = 'cuModuleLoadData'")[0][0]
    assert loads >= 2  # the hand-written kernel and Inductor's
    assert run.q("SELECT name FROM unsupported_calls") == []
