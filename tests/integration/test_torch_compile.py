"""torch.compile (Inductor) and a hand-written Triton kernel: compiled on the CPU (ptxas),
loaded through revati's driver layer, launched as named kernels."""

from __future__ import annotations

import pytest

from tests.integration.torch_helpers import (
    TorchRun,
    launch_costs,
    modelled_launch_cost,
    record_python,
)

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


@triton.autotune(
    configs=[triton.Config({"BLOCK": 64}, num_warps=1), triton.Config({"BLOCK": 1024}, num_warps=4)],
    key=["n"],
)
@triton.jit
def tuned_copy(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(out_ptr + offsets, tl.load(x_ptr + offsets, mask=mask), mask=mask)


big = torch.empty(1 << 24, device="cuda")
big_out = torch.empty_like(big)
tuned_copy[lambda meta: (triton.cdiv(big.numel(), meta["BLOCK"]),)](big, big_out, big.numel())
print("autotuned", tuned_copy.best_config.kwargs["BLOCK"])
torch.cuda.synchronize()
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> TorchRun:
    return record_python(tmp_path_factory.mktemp("torch_compile"), PROGRAM)


def test_a_hand_written_triton_kernel_launches_by_name(run: TorchRun) -> None:
    assert run.value("triton") == "(4096,)"
    rows = run.q("SELECT grid_x, block_x FROM kernels WHERE name = 'scale_kernel'")
    assert rows == [(16, 128)]  # 16 programs of 4 warps


def test_triton_autotuning_picks_the_config_revati_predicts_faster(run: TorchRun) -> None:
    """The autotuner times each config with CUDA events, which under revati read predicted
    durations: its pick is the config whose launches the trace shows as faster."""
    per_block = dict(
        run.q(
            """SELECT block_x, median(end_ns - start_ns) FROM kernels WHERE name = 'tuned_copy'
               GROUP BY block_x"""
        )
    )
    assert sorted(per_block) == [32, 128], per_block  # 1 and 4 warps: both configs were timed
    assert per_block[32] != per_block[128]
    faster_block = min(per_block, key=per_block.__getitem__)
    assert int(run.value("autotuned")) == {32: 64, 128: 1024}[faster_block]


def test_inductor_kernels_are_in_the_trace_by_name(run: TorchRun) -> None:
    assert run.value("compiled") == "(16,)"
    names = [n for (n,) in run.q("SELECT name FROM kernels WHERE name LIKE 'triton_%'")]
    assert names and all("fused" in n for n in names), names
    loads = run.q("SELECT count(*) FROM api_calls WHERE name = 'cuModuleLoadData'")[0][0]
    assert loads >= 2  # the hand-written kernel and Inductor's
    assert run.q("SELECT name FROM unsupported_calls") == []


def test_runtime_and_driver_launches_cost_the_modelled_host_time(run: TorchRun) -> None:
    """Triton launches through the driver (cuLaunchKernel[Ex]); PyTorch's own kernels through the
    runtime: each launch costs the program the modelled host time of a real launch."""
    cost = modelled_launch_cost(run.trace)
    found = launch_costs(run.trace, ("__cudaLaunchKernel", "cuLaunchKernel", "cuLaunchKernelEx"))
    assert "__cudaLaunchKernel" in found and ({"cuLaunchKernel", "cuLaunchKernelEx"} & set(found))
    assert all(costs == {cost} for costs in found.values()), found
