"""The fallback: a roofline from whatever FLOPs and bytes are known, else a constant.

It claims every record no other model took and marks it unmodelled, so an unmodelled duration
is visible in the trace rather than silent.
"""

from __future__ import annotations

import numpy as np

from revati.predict.batch import OpBatch
from revati.predict.catalog import DeviceSpec
from revati.predict.models.base import DurationModel, Params, peak_flops_of

# A kernel we know nothing about takes this long (a short elementwise kernel on a modern GPU).
CONSTANT_NS = 5_000.0
ROOFLINE_EFFICIENCY = 0.5


class FallbackModel(DurationModel):
    name = "roofline"

    @classmethod
    def default_params(cls, device: DeviceSpec) -> Params:
        return {"constant_ns": CONSTANT_NS, "efficiency": ROOFLINE_EFFICIENCY}

    @property
    def label(self) -> str:
        return "roofline:unmodelled"

    def claims(self, batch: OpBatch, families: np.ndarray) -> np.ndarray:
        return np.ones(batch.n, dtype=bool)

    def roofline_mask(self, batch: OpBatch) -> np.ndarray:
        """Records with FLOPs or bytes to build a roofline from (the rest get the constant)."""
        return (batch.gemm_m * batch.gemm_n * batch.gemm_k > 0) | (batch.bytes > 0)

    def predict(self, batch: OpBatch) -> np.ndarray:
        eff = float(self.params["efficiency"])
        gemm_batch = np.maximum(batch.batch, 1).astype(np.float64)
        flops = 2.0 * batch.gemm_m * batch.gemm_n * batch.gemm_k * gemm_batch
        compute_ns = flops / (peak_flops_of(self.device, batch.dtype) * eff) * 1e9
        memory_ns = batch.bytes / (self.device.memory_bandwidth_gbs * eff)
        roof = np.maximum(compute_ns, memory_ns) + self.device.launch_latency_ns
        return np.where(self.roofline_mask(batch), roof, float(self.params["constant_ns"]))

    def labels(self, batch: OpBatch) -> np.ndarray:
        kinds = np.array(["constant:unmodelled", "roofline:unmodelled"], dtype=object)
        return kinds[self.roofline_mask(batch).astype(np.int64)]
