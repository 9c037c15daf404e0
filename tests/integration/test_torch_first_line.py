"""The line that did not run: `x @ x` on a 4096×4096 tensor under `revati record`, and a full
convolution (im2col and a cuBLAS GEMM, cuDNN being off)."""

from __future__ import annotations

import pytest

from tests.integration.torch_helpers import TorchRun, record_python

PROGRAM = """
import torch
x = torch.randn(4096, 4096, device='cuda'); print((x @ x).sum().item())
conv = torch.nn.Conv2d(3, 8, 3).cuda()
print("conv", tuple(conv(torch.randn(1, 3, 16, 16, device="cuda")).shape))
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> TorchRun:
    return record_python(tmp_path_factory.mktemp("torch_first_line"), PROGRAM)


def test_the_issues_first_line_prints_and_records_its_gemm(run: TorchRun) -> None:
    assert run.proc.stdout.splitlines()[0] == "0.0"  # kernels write nothing: stale, not garbage
    gemms = run.q("SELECT name, end_ns - start_ns FROM kernels WHERE name LIKE 'cublas%gemm%'")
    assert gemms and gemms[0][1] > 100_000  # a 4096³ fp32 GEMM takes a predicted ~ms, not ~µs
    assert run.q("SELECT name FROM unsupported_calls") == []


def test_a_convolution_without_cudnn_runs_through_a_gemm(run: TorchRun) -> None:
    assert run.value("conv") == "(1, 8, 14, 14)"
    assert run.q("SELECT count(*) FROM kernels WHERE name LIKE '%im2col%'")[0][0] >= 1
    assert run.q("SELECT count(*) FROM kernels WHERE name LIKE 'cublas%gemm%'")[0][0] >= 2
