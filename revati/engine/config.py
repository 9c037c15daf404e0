"""The resolved configuration of one `revati record` run (stored in the trace's run.config)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class HostCosts:
    """Modelled host CPU cost of intercepted CUDA calls, in ns of virtual time per call.

    A real driver spends microseconds of host time per call; an intercepted call costs tens of
    nanoseconds. Charging these keeps launch-bound host loops as long as on a real GPU machine.
    """

    launch_ns: int = field(default=2500, metadata={"help": "kernel launch / graph launch"})
    copy_ns: int = field(default=3000, metadata={"help": "copy or memset submission"})
    event_ns: int = field(default=800, metadata={"help": "event record, stream wait-event"})
    sync_ns: int = field(default=1000, metadata={"help": "leaving a synchronisation call"})
    alloc_ns: int = field(default=5000, metadata={"help": "device/pinned allocation or free"})
    other_ns: int = field(default=500, metadata={"help": "any other call"})


# Settings of traced programs that a run on a GPU does not need, each set unless the program's
# environment sets it (README, "vLLM under revati": the gaps). vLLM's V2 model runner keeps
# request state on the device: a kernel counts each request's sampled tokens, and with kernels
# writing nothing the count reads 0, no request advances and the engine idles forever; the V1
# runner counts them on the host.
PROGRAM_DEFAULTS = {"VLLM_USE_V2_MODEL_RUNNER": "0"}


@dataclass(frozen=True)
class RecordConfig:
    """How a program is recorded; every field has help text and lands in the trace."""

    argv: tuple[str, ...] = field(metadata={"help": "the traced command line"})
    output: str = field(default="trace.duckdb", metadata={"help": "trace file to write"})
    device: str = field(default="h100-sxm", metadata={"help": "virtual GPU model (catalog id)"})
    profile: str | None = field(
        default=None, metadata={"help": "calibration profile for the predictor"}
    )
    device_count: int = field(default=1, metadata={"help": "virtual GPUs each process sees"})
    nodes: int = field(
        default=1,
        metadata={
            "help": "nodes of device_count GPUs each; NCCL rank r is on node r // device_count"
        },
    )
    dilation: float = field(
        default=1.0, metadata={"help": "host time dilation: host work counts 1/K"}
    )
    cpu_wait: str = field(
        default="discount",
        metadata={
            "help": "participant threads waiting for a CPU: 'discount' slows the clock by the "
            "share of their CPU demand that waited (docs/time-model.md); 'count' keeps it at "
            "wall speed"
        },
    )
    backed_max: int = field(
        default=4 << 20, metadata={"help": "allocations up to this many bytes hold real data"}
    )
    graph_replay: bool = field(
        default=True,
        metadata={
            "help": "a CUDA graph of kernels, copies and memsets sends its nodes at its first "
            "launch and is replayed from there; off: every launch sends its nodes (slower, same "
            "trace)"
        },
    )
    overwrite: bool = field(default=False, metadata={"help": "replace an existing trace file"})
    status: bool = field(default=True, metadata={"help": "show the live status line on a terminal"})
    host_costs: HostCosts = field(
        default_factory=HostCosts, metadata={"help": "host cost of calls"}
    )
    cudnn: str = field(
        default="off",
        metadata={
            "help": "cuDNN in traced programs: 'off' = PyTorch's cuDNN switch is turned off "
            "when torch is imported (cuDNN's own static runtime cannot run under emulation)"
        },
    )

    program_defaults: dict[str, str] = field(
        default_factory=lambda: dict(PROGRAM_DEFAULTS),
        metadata={
            "help": "environment variables a traced program gets unless its environment sets "
            "them: vLLM's V1 model runner (the V2 runner keeps request state on the device)"
        },
    )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["argv"] = list(self.argv)
        return data
