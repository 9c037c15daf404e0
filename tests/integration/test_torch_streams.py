"""Streams, wait_stream, events and a CUDA graph replayed 100 times, from stock PyTorch."""

from __future__ import annotations

import pytest

from tests.integration.torch_helpers import TorchRun, record_python

PROGRAM = """
import torch
a = torch.randn(1 << 20, device="cuda")
side = torch.cuda.Stream()
start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
side.wait_stream(torch.cuda.current_stream())
with torch.cuda.stream(side):
    start.record()
    b = a * 3
    end.record()
torch.cuda.current_stream().wait_stream(side)
torch.cuda.synchronize()
print("elapsed_ms", start.elapsed_time(end))
static = torch.zeros(1024, device="cuda")
graph = torch.cuda.CUDAGraph()
warm = torch.cuda.Stream()
warm.wait_stream(torch.cuda.current_stream())
with torch.cuda.stream(warm):
    static.add_(1)
torch.cuda.current_stream().wait_stream(warm)
with torch.cuda.graph(graph):
    out = static * 2 + 1
for _ in range(100):
    graph.replay()
torch.cuda.synchronize()
print("replayed", 100)
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> TorchRun:
    return record_python(tmp_path_factory.mktemp("torch_streams"), PROGRAM)


def test_work_on_a_side_stream_lands_on_that_stream(run: TorchRun) -> None:
    streams = run.q("SELECT count(DISTINCT k.stream_id) FROM kernels k WHERE k.graph_id IS NULL")[
        0
    ][0]
    assert streams >= 2  # the default stream and the side stream
    waits = run.q("SELECT count(*) FROM api_calls WHERE name = 'cudaStreamWaitEvent'")[0][0]
    assert waits >= 3  # wait_stream is an event record plus a stream wait, three times


def test_event_elapsed_time_covers_the_kernel_between_them(run: TorchRun) -> None:
    elapsed_ns = float(run.value("elapsed_ms")) * 1e6
    mul = run.q(
        "SELECT end_ns - start_ns FROM kernels WHERE name LIKE '%MulFunctor%' AND graph_id IS NULL"
    )
    assert len(mul) == 1
    assert elapsed_ns >= mul[0][0] * 0.999 and elapsed_ns > 0


def test_a_graph_captured_once_replays_100_times(run: TorchRun) -> None:
    assert run.value("replayed") == "100"
    per_graph = run.q(
        "SELECT graph_id, count(*) FROM kernels WHERE graph_id IS NOT NULL GROUP BY graph_id"
    )
    replayed = sum(n for _, n in per_graph)
    assert replayed == 200  # two kernels (mul, add) per replay
    launches = run.q("SELECT count(*) FROM api_calls WHERE name = 'cudaGraphLaunch'")[0][0]
    assert launches == 100
    assert run.q("SELECT name FROM unsupported_calls") == []
