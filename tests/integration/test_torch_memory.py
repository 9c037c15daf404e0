"""PyTorch's memory behaviour on a virtual device: mem_get_info, the caching allocator's
counters, expandable segments (the driver's virtual-memory path) and a real OutOfMemoryError."""

from __future__ import annotations

import pytest

from tests.integration.torch_helpers import TorchRun, record_python

GIB = 1 << 30
PROGRAM = """
import torch
free0, total = torch.cuda.mem_get_info()
big = torch.empty(8 << 30, dtype=torch.uint8, device="cuda")
free1, _ = torch.cuda.mem_get_info()
print("info", total, free0 - free1)
print("counters", torch.cuda.memory_allocated(), torch.cuda.memory_reserved())
try:
    torch.empty(100 << 30, dtype=torch.uint8, device="cuda")
    print("oom none")
except torch.OutOfMemoryError as e:
    print("oom", type(e).__name__)
print("small", torch.tensor([7, 8, 9], device="cuda").cpu().tolist())
"""
H100_BYTES = 85520809984  # the catalog's h100-sxm memory_bytes


def record(tmp: pytest.TempPathFactory, name: str, conf: str) -> TorchRun:
    env = {"PYTORCH_CUDA_ALLOC_CONF": conf} if conf else {"PYTORCH_CUDA_ALLOC_CONF": ""}
    return record_python(tmp.mktemp(name), PROGRAM, env=env)


@pytest.fixture(scope="module")
def cached(tmp_path_factory: pytest.TempPathFactory) -> TorchRun:
    return record(tmp_path_factory, "torch_mem", "")


@pytest.fixture(scope="module")
def expandable(tmp_path_factory: pytest.TempPathFactory) -> TorchRun:
    return record(tmp_path_factory, "torch_mem_expandable", "expandable_segments:True")


@pytest.mark.parametrize("which", ["cached", "expandable"])
def test_mem_get_info_and_counters_follow_allocations(which: str, request) -> None:
    run: TorchRun = request.getfixturevalue(which)
    total, taken = map(int, run.value("info").split())
    assert total == H100_BYTES
    assert 8 * GIB <= taken < 8 * GIB + 64 << 20  # the 8 GiB tensor, rounded to segments
    allocated, reserved = map(int, run.value("counters").split())
    assert allocated >= 8 * GIB and reserved >= allocated


@pytest.mark.parametrize("which", ["cached", "expandable"])
def test_an_allocation_past_the_device_raises_out_of_memory(which: str, request) -> None:
    run: TorchRun = request.getfixturevalue(which)
    assert run.value("oom") == "OutOfMemoryError"
    assert run.value("small") == "[7, 8, 9]"  # the device still works afterwards
    assert run.q("SELECT name FROM unsupported_calls") == []


def test_the_caching_allocator_fails_a_cuda_malloc(cached: TorchRun) -> None:
    failed = cached.q("SELECT count(*) FROM allocations WHERE result = 2 AND bytes >= 100 * 2^30")
    assert failed[0][0] >= 1  # cudaErrorMemoryAllocation, recorded


def test_expandable_segments_map_handles_into_a_reserved_range(expandable: TorchRun) -> None:
    calls = dict(expandable.q("SELECT name, count(*) FROM api_calls GROUP BY name"))
    assert calls.get("cudaMalloc", 0) == 0  # every device byte came through the driver
    mapped = expandable.q("SELECT count(*), sum(bytes) FROM allocations WHERE result = 0")[0]
    assert mapped[0] >= 400 and mapped[1] >= 8 * GIB  # 20 MiB pages of the 8 GiB tensor
    refused = expandable.q(
        "SELECT count(*) FROM api_calls WHERE name = 'cuMemCreate' AND result = 2"
    )
    assert refused[0][0] >= 1  # CUDA_ERROR_OUT_OF_MEMORY when the device is full
