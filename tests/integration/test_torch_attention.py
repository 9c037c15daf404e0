"""SDPA (the flash path, causal and not) and convolution with PyTorch's cuDNN switched off."""

from __future__ import annotations

import json

import pytest

from tests.integration.torch_helpers import TorchRun, record_python

PROGRAM = """
import torch
import torch.nn.functional as F
print("cudnn", torch.backends.cudnn.enabled, torch.backends.cuda.cudnn_sdp_enabled())
q = torch.randn(2, 8, 128, 64, device="cuda", dtype=torch.float16)
for causal in (False, True):
    print("sdpa", causal, tuple(F.scaled_dot_product_attention(q, q, q, is_causal=causal).shape))
depthwise = torch.nn.Conv2d(3, 3, 3, groups=3).cuda()
print("conv", tuple(depthwise(torch.randn(1, 3, 16, 16, device="cuda")).shape))
torch.cuda.synchronize()
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> TorchRun:
    return record_python(tmp_path_factory.mktemp("torch_attention"), PROGRAM)


def test_cudnn_is_off_in_the_program_and_the_run_table_says_so(run: TorchRun) -> None:
    assert run.value("cudnn") == "False False"
    config = json.loads(run.q("SELECT config FROM run")[0][0])
    assert config["cudnn"] == "off"


def test_sdpa_takes_the_flash_path_causal_and_not(run: TorchRun) -> None:
    assert run.lines("sdpa") == ["False (2, 8, 128, 64)", "True (2, 8, 128, 64)"]
    flash = run.q(
        "SELECT count(*) FROM kernels WHERE name LIKE '%pytorch_flash::flash_fwd_kernel%'"
    )
    assert flash == [(2,)]


def test_a_convolution_runs_without_cudnn(run: TorchRun) -> None:
    assert run.value("conv") == "(1, 3, 14, 14)"
    assert run.q("SELECT count(*) FROM kernels WHERE name LIKE '%conv_depthwise2d_forward%'") == [
        (1,)
    ]
    assert run.q("SELECT name FROM unsupported_calls") == []
