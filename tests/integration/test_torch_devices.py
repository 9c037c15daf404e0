"""Several virtual devices in one process, CUDA_VISIBLE_DEVICES, and NVML through pynvml."""

from __future__ import annotations

import pytest

from tests.integration.torch_helpers import TorchRun, record_python

TWO_DEVICES = """
import torch
print("count", torch.cuda.device_count())
for d in range(torch.cuda.device_count()):
    x = torch.ones(1 << 20, device=f"cuda:{d}") * (d + 1)
    print("device", d, x.device.index, torch.cuda.mem_get_info(d)[1] - torch.cuda.mem_get_info(d)[0])
    torch.cuda.synchronize(d)
"""

NVML = """
import pynvml
pynvml.nvmlInit()
n = pynvml.nvmlDeviceGetCount()
print("count", n)
a, b = (pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(2))
print("name", pynvml.nvmlDeviceGetName(a))
print("cc", *pynvml.nvmlDeviceGetCudaComputeCapability(a))
uuid = pynvml.nvmlDeviceGetUUID(b)
same = pynvml.nvmlDeviceGetIndex(pynvml.nvmlDeviceGetHandleByUUID(uuid))
bus = pynvml.nvmlDeviceGetPciInfo(b).busId
print("lookup", same, pynvml.nvmlDeviceGetIndex(pynvml.nvmlDeviceGetHandleByPciBusId(bus)))
mem = pynvml.nvmlDeviceGetMemoryInfo(a)
print("memory", mem.total, mem.used + mem.free == mem.total)
print("clocks", pynvml.nvmlDeviceGetMaxClockInfo(a, pynvml.NVML_CLOCK_SM))
print("power", pynvml.nvmlDeviceGetPowerManagementLimit(a))
print("temperature", pynvml.nvmlDeviceGetTemperature(a, pynvml.NVML_TEMPERATURE_GPU) > 0)
try:
    print("nvlink", pynvml.nvmlDeviceGetNvLinkState(a, 0))
except pynvml.NVMLError as e:
    print("nvlink", type(e).__name__)
print("p2p", pynvml.nvmlDeviceGetP2PStatus(a, b, pynvml.NVML_P2P_CAPS_INDEX_NVLINK))
print("topology", pynvml.nvmlDeviceGetTopologyCommonAncestor(a, b))
print("versions", pynvml.nvmlSystemGetCudaDriverVersion(), bool(pynvml.nvmlSystemGetDriverVersion()))
cc = pynvml.nvmlSystemGetConfComputeState()
print("cc_state", cc.environment, cc.ccFeature, cc.devToolsMode)
pynvml.nvmlShutdown()
"""


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> TorchRun:
    return record_python(tmp_path_factory.mktemp("torch_two"), TWO_DEVICES, "--devices", "2")


@pytest.fixture(scope="module")
def visible(tmp_path_factory: pytest.TempPathFactory) -> TorchRun:
    tmp = tmp_path_factory.mktemp("torch_visible")
    return record_python(tmp, TWO_DEVICES, "--devices", "2", env={"CUDA_VISIBLE_DEVICES": "1"})


def test_two_devices_in_one_process(two: TorchRun) -> None:
    assert two.value("count") == "2"
    used = {int(d): int(u) for d, _, u in (line.split() for line in two.lines("device"))}
    assert set(used) == {0, 1} and all(u >= 4 << 20 for u in used.values())
    per_device = dict(two.q("SELECT device_id, count(*) FROM allocations GROUP BY device_id"))
    assert set(per_device) == {0, 1}
    # each device's default stream is its own: cuda:1's kernels do not queue behind cuda:0's
    defaults = two.q("SELECT s.device_id, count(*) FROM kernels k JOIN streams s USING (stream_id) "
                     "WHERE s.is_default GROUP BY ALL ORDER BY 1")  # fmt: skip
    assert [d for d, _ in defaults] == [0, 1]
    assert two.q("SELECT name FROM unsupported_calls") == []


def test_cuda_visible_devices_picks_the_nodes_device(visible: TorchRun) -> None:
    assert visible.value("count") == "1"
    assert visible.lines("device") and visible.lines("device")[0].split()[:2] == ["0", "0"]
    devices = visible.q("SELECT DISTINCT device_id FROM allocations")
    assert devices == [(1,)]  # the process's cuda:0 is the node's device 1
    assert visible.q("SELECT DISTINCT device_id FROM kernels") == [(1,)]


@pytest.fixture(scope="module")
def nvml(tmp_path_factory: pytest.TempPathFactory) -> TorchRun:
    pytest.importorskip("pynvml", reason="nvidia-ml-py is not installed: pip install -e '.[dev]'")
    return record_python(tmp_path_factory.mktemp("nvml"), NVML, "--devices", "2")


def test_pynvml_answers_as_the_virtual_devices(nvml: TorchRun) -> None:
    assert nvml.value("count") == "2"
    assert nvml.value("name") == "NVIDIA H100 80GB HBM3"
    assert nvml.value("cc") == "9 0"
    assert nvml.value("lookup") == "1 1"
    assert nvml.value("memory") == "85520809984 True"
    assert nvml.value("clocks") == "1980"
    assert nvml.value("power") == "700000"
    assert nvml.value("temperature") == "True"
    assert nvml.value("nvlink") == "1"
    assert nvml.value("p2p") == "0"  # NVML_P2P_STATUS_OK
    assert nvml.value("topology") == "40"  # NVML_TOPOLOGY_NODE
    assert nvml.value("versions") == "13000 True"
    assert nvml.value("cc_state") == "0 0 0"  # confidential computing unavailable and off
    assert nvml.q("SELECT name FROM unsupported_calls") == []


def test_nvml_follows_the_device_model(tmp_path_factory: pytest.TempPathFactory) -> None:
    pytest.importorskip("pynvml", reason="nvidia-ml-py is not installed: pip install -e '.[dev]'")
    run = record_python(
        tmp_path_factory.mktemp("nvml_l40s"), NVML, "--devices", "2", "--device", "l40s"
    )
    assert run.value("name") == "NVIDIA L40S"
    assert run.value("cc") == "8 9"
    assert run.value("power") == "350000"
    assert run.value("nvlink") == "NVMLError_InvalidArgument"  # no NVLink on an L40S
    assert run.value("p2p") == "5"  # NVML_P2P_STATUS_NOT_SUPPORTED over NVLink
