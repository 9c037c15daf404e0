"""PyTorch's GEMMs under `revati record`: stock torch (CUDA 13 build) reaches cuBLAS and cuBLASLt
through revati's interception; each matmul is one kernel with its shape in the trace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from revati.native.entry_table import read_table
from tests.integration.record_helpers import q
from tests.integration.test_record import assert_time_invariants, record, values

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")
if not any(row.library == "libcuda.so.1" for row in read_table()):
    pytest.skip(
        "PyTorch's lazy CUDA init needs revati's driver layer (libcuda.so.1), which this build "
        "does not have yet",
        allow_module_level=True,
    )

PROGRAM = """
import torch
x = torch.randn(512, 1024, device="cuda")
y = torch.randn(1024, 256, device="cuda")
for dt in (torch.float32, torch.float16, torch.bfloat16):
    z = x.to(dt) @ y.to(dt)
    print(f"mm_{str(dt).split('.')[1]}={tuple(z.shape)}")
torch.backends.cuda.matmul.allow_tf32 = True
print("mm_tf32=", tuple((x @ y).shape))
torch.backends.cuda.matmul.allow_tf32 = False
w = torch.randn(384, 1024, device="cuda", dtype=torch.bfloat16)
b = torch.randn(384, device="cuda", dtype=torch.bfloat16)
print("linear=", tuple(torch.nn.functional.linear(x.to(torch.bfloat16), w, b).shape))
a = torch.randn(8, 64, 128, device="cuda", dtype=torch.float16)
c = torch.randn(8, 128, 32, device="cuda", dtype=torch.float16)
print("bmm=", tuple(torch.bmm(a, c).shape))
torch.cuda.synchronize()

# a CUDA graph of two GEMMs (Lt with bias, then cuBLAS), captured once and replayed 10 times
xs = torch.randn(16, 1024, device="cuda", dtype=torch.bfloat16)
lin = torch.nn.Linear(1024, 2048, device="cuda", dtype=torch.bfloat16)
w2 = torch.randn(2048, 512, device="cuda", dtype=torch.bfloat16)
side = torch.cuda.Stream()
side.wait_stream(torch.cuda.current_stream())
with torch.cuda.stream(side):
    ys = torch.relu(lin(xs)) @ w2
torch.cuda.current_stream().wait_stream(side)
graph = torch.cuda.CUDAGraph()
with torch.cuda.graph(graph):
    ys = torch.relu(lin(xs)) @ w2
for _ in range(10):
    graph.replay()

# events around a GEMM queued behind another: they measure its predicted duration
big = torch.randn(4096, 4096, device="cuda", dtype=torch.float16)
start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
big @ big
start.record()
big @ big
end.record()
end.synchronize()
print(f"elapsed_ns={start.elapsed_time(end) * 1e6:.1f}")
"""

GEMMS = """SELECT k.name, f.gemm_m, f.gemm_n, f.gemm_k, f.batch, f.dtype, k.model, f.features
           FROM kernels k JOIN kernel_features f USING (kernel_id)
           WHERE f.gemm_m IS NOT NULL AND k.graph_id IS NULL ORDER BY k.kernel_id"""


@pytest.fixture(scope="module")
def torch_trace(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    tmp = tmp_path_factory.mktemp("torch_gemms")
    script = tmp / "gemms.py"
    script.write_text(PROGRAM)
    proc, out = record(tmp, "python", str(script))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return values(proc.stdout), out


def test_pytorch_matmuls_run_and_each_is_one_gemm_kernel_with_its_shape(torch_trace) -> None:
    v, out = torch_trace
    assert v["mm_float32"] == v["mm_float16"] == v["mm_bfloat16"] == "(512, 256)"
    assert v["linear"].strip() == "(512, 384)" and v["bmm"].strip() == "(8, 64, 32)"
    rows = q(out, GEMMS)[:6]
    # cuBLAS is column major: torch computes (x @ y)^T = y^T x^T, so m = 256, n = 512
    assert [r[:6] for r in rows] == [
        ("cublas_gemm_fp32_nn", 256, 512, 1024, 1, "fp32"),
        ("cublas_gemm_fp16_nn", 256, 512, 1024, 1, "fp16"),
        ("cublas_gemm_bf16_nn", 256, 512, 1024, 1, "bf16"),
        ("cublas_gemm_tf32_nn", 256, 512, 1024, 1, "tf32"),
        ("cublasLt_gemm_bf16_tn_bias", 384, 512, 1024, 1, "bf16"),
        ("cublas_gemm_fp16_nn", 32, 64, 128, 8, "fp16"),
    ]
    assert {r[6] for r in rows} == {"gemm"}
    linear, bmm = json.loads(rows[4][7]), json.loads(rows[5][7])
    assert (linear["api"], linear["epilogue"], linear["bias"]) == ("cublasLt", "bias", True)
    assert (bmm["stride_a"], bmm["stride_b"]) == (32 * 128, 128 * 64)


def test_gemms_captured_in_a_cuda_graph_replay_with_their_shapes(torch_trace) -> None:
    _, out = torch_trace
    replays = q(
        out,
        """SELECT k.name, f.gemm_m, f.gemm_n, f.gemm_k, count(*), count(DISTINCT k.graph_id)
           FROM kernels k JOIN kernel_features f USING (kernel_id)
           WHERE k.graph_id IS NOT NULL AND f.gemm_m IS NOT NULL GROUP BY ALL ORDER BY 1""",
    )
    assert replays == [
        ("cublasLt_gemm_bf16_tn_bias", 2048, 16, 1024, 10, 10),
        ("cublas_gemm_bf16_nn", 512, 16, 2048, 10, 10),
    ]


def test_events_around_a_gemm_measure_its_predicted_duration(torch_trace) -> None:
    v, out = torch_trace
    (last,) = q(
        out,
        """SELECT k.end_ns - k.start_ns FROM kernels k JOIN kernel_features f USING (kernel_id)
           WHERE f.gemm_m = 4096 ORDER BY k.kernel_id DESC LIMIT 1""",
    )
    assert float(v["elapsed_ns"]) == pytest.approx(last[0], abs=1)


def test_pytorch_needs_no_unemulated_cublas_call(torch_trace) -> None:
    _, out = torch_trace
    assert q(out, "SELECT name FROM unsupported_calls WHERE library LIKE 'libcublas%'") == []
    assert_time_invariants(out)
