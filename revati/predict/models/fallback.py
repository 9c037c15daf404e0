"""The fallback: a roofline from whatever FLOPs and bytes are known, else from the grid, else a
constant.

With neither a library-call shape nor bytes, an elementwise kernel's launch grid still says how
much work it does: each thread is assumed to move `BYTES_PER_THREAD` bytes (two 4-byte loads and a
store), so a 1M-thread kernel takes longer than a 1k-thread one. GEMM, attention and collective
kernels do far more per thread than that, so without a shape they get the constant.

It claims every record no other model took and marks it unmodelled, so an unmodelled duration
is visible in the trace rather than silent.
"""

from __future__ import annotations

import numpy as np

from revati.predict.batch import OpBatch
from revati.predict.catalog import DeviceSpec
from revati.predict.families import batch_families
from revati.predict.models.base import DurationModel, Params, peak_flops_of

# A kernel we know nothing about takes this long (a short elementwise kernel on a modern GPU).
CONSTANT_NS = 5_000.0
ROOFLINE_EFFICIENCY = 0.5
BYTES_PER_THREAD = 12.0
LABELS = np.array(["constant:unmodelled", "grid:unmodelled", "roofline:unmodelled"], dtype=object)


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
        """Records with FLOPs or bytes to build a roofline from."""
        return (batch.gemm_m * batch.gemm_n * batch.gemm_k > 0) | (batch.bytes > 0)

    def grid_threads(self, batch: OpBatch) -> np.ndarray:
        grid = (
            np.maximum(batch.grid_x, 0) * np.maximum(batch.grid_y, 1) * np.maximum(batch.grid_z, 1)
        )
        block = (
            np.maximum(batch.block_x, 0)
            * np.maximum(batch.block_y, 1)
            * np.maximum(batch.block_z, 1)
        )
        return (grid * block).astype(np.float64)

    def predict(self, batch: OpBatch) -> np.ndarray:
        return self._predict(batch, self._kind(batch))

    def predict_claimed(self, batch: OpBatch, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sub = batch.take(mask)
        kind = self._kind(sub)
        return self._predict(sub, kind), LABELS[kind]

    def _predict(self, batch: OpBatch, kind: np.ndarray) -> np.ndarray:
        eff = float(self.params["efficiency"])
        gemm_batch = np.maximum(batch.batch, 1).astype(np.float64)
        flops = 2.0 * batch.gemm_m * batch.gemm_n * batch.gemm_k * gemm_batch
        compute_ns = flops / (peak_flops_of(self.device, batch.dtype) * eff) * 1e9
        nbytes = np.where(kind == 1, self.grid_threads(batch) * BYTES_PER_THREAD, batch.bytes)
        memory_ns = nbytes / (self.device.memory_bandwidth_gbs * eff)
        roof = np.maximum(compute_ns, memory_ns) + self.device.launch_latency_ns
        return np.where(kind > 0, roof, float(self.params["constant_ns"]))

    def _kind(self, batch: OpBatch) -> np.ndarray:
        """0 constant, 1 grid, 2 roofline: the index of each record's label in `LABELS`."""
        by_grid = (self.grid_threads(batch) > 0) & (batch_families(batch) == "elementwise")
        return np.where(self.roofline_mask(batch), 2, np.where(by_grid, 1, 0))

    def labels(self, batch: OpBatch) -> np.ndarray:
        return LABELS[self._kind(batch)]
