"""GEMM: a roofline whose compute efficiency is a fitted surface over log m, n, k.

    t = t0 + ((F / (P_dtype * e_c))^p + (B / (BW * e_m))^p)^(1/p)
    e_c = sigmoid(z) · quant^w,  z = quadratic in (log m, log n, log k) with m·n and m·k terms

F = 2·m·n·k·batch FLOPs, B = the bytes of A, B and C, with m rounded up to whole tiles of
`M_TILE` rows once it reaches a tile (cuBLAS computes padded tiles: the measured time is flat
within each 128-row step and jumps at the next; held out by LLM on the vidur tables this cuts
GEMM MAPE from 7.84 % to 7.44 %); e_c = sigmoid(quadratic in log m, n, k)
times a wave-quantisation factor (128×128 tiles over the SMs) raised to a fitted power; e_m a
fitted memory efficiency; p a fitted smoothness. Efficiencies are relative to the device's
peaks, so a profile fitted on one GPU transfers to another of the same family.
"""

from __future__ import annotations

import numpy as np

from revati.predict.batch import OpBatch
from revati.predict.catalog import DeviceSpec
from revati.predict.models.base import DurationModel, Params, peak_flops_of

TILE = 128.0
M_TILE = 128  # rows per output tile along m in fitted profiles (older profiles: 1, no rounding)
MAX_FIT_SAMPLES = 8000
# Defaults: about what cuBLAS reaches on Hopper for mid-size fp16 GEMMs (fit replaces them).
DEFAULT_THETA = [-3.0, 0.6, 0.05, 0.05, -0.02, 0.0, 0.0, 1.5, 1.0, 1.6, 0.5, 0.0, 0.0]


def gemm_flops_bytes(batch: OpBatch, m_tile: int = 1) -> tuple[np.ndarray, ...]:
    m = np.maximum(batch.gemm_m, 1).astype(np.float64)
    if m_tile > 1:
        m = np.where(m >= m_tile, np.ceil(m / m_tile) * m_tile, m)
    n = np.maximum(batch.gemm_n, 1).astype(np.float64)
    k = np.maximum(batch.gemm_k, 1).astype(np.float64)
    count = np.maximum(batch.batch, 1).astype(np.float64)
    elem = np.where(batch.dtype == "fp32", 4.0, np.where(batch.dtype == "fp8", 1.0, 2.0))
    return m, n, k, count, 2.0 * m * n * k * count, (m * k + k * n + m * n) * elem * count


def gemm_seconds(theta: np.ndarray, m, n, k, count, flops, nbytes, peak, bw, sms) -> np.ndarray:
    lm, ln, lk = np.log(m), np.log(n), np.log(k)
    z = theta[0] + theta[1] * lm + theta[2] * ln + theta[3] * lk + theta[4] * lm**2
    z = z + theta[5] * lk**2 + theta[6] * ln**2 + theta[11] * lm * ln + theta[12] * lm * lk
    tiles = np.ceil(m / TILE) * np.ceil(n / TILE) * count
    quant = tiles / (np.ceil(tiles / sms) * sms)
    e_c = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))) * quant ** theta[10]
    e_m = 1.0 / (1.0 + np.exp(-theta[7]))
    p = np.exp(np.clip(theta[8], -2, 3))
    comp = flops / (peak * e_c) * 1e6  # microseconds keep the p-norm in range
    mem = nbytes / (bw * e_m) * 1e6
    return (np.exp(theta[9]) + (comp**p + mem**p) ** (1.0 / p)) * 1e-6


class GemmModel(DurationModel):
    name = "gemm"
    families = ("gemm",)

    @classmethod
    def default_params(cls, device: DeviceSpec) -> Params:
        return {"theta": DEFAULT_THETA, "m_tile": M_TILE}

    def claims(self, batch: OpBatch, families: np.ndarray) -> np.ndarray:
        has_shape = (batch.gemm_m > 0) & (batch.gemm_n > 0) & (batch.gemm_k > 0)
        return has_shape & (families == "gemm")

    def predict(self, batch: OpBatch) -> np.ndarray:
        theta = np.asarray(self.params["theta"])
        return _seconds(theta, batch, self.device, int(self.params.get("m_tile", 1))) * 1e9

    @classmethod
    def fit(
        cls,
        device: DeviceSpec,
        batch: OpBatch,
        measured_ns: np.ndarray,
        groups: np.ndarray | None = None,
    ) -> Params | None:
        keep = (batch.gemm_m > 0) & (batch.gemm_n > 0) & (batch.gemm_k > 0) & (measured_ns > 0)
        if keep.sum() < 12:
            return None
        from scipy.optimize import least_squares  # scipy only when fitting: keeps import fast

        idx = np.flatnonzero(keep)
        idx = idx[:: max(1, len(idx) // MAX_FIT_SAMPLES)]  # an even sample keeps fits fast
        sub, y = batch.take(idx), np.log(measured_ns[idx] * 1e-9)
        result = least_squares(
            lambda th: np.log(_seconds(th, sub, device, M_TILE)) - y,
            np.array(DEFAULT_THETA),
            loss="soft_l1",
            f_scale=0.05,
        )
        theta = [round(float(v), 6) for v in result.x]
        return {"theta": theta, "m_tile": M_TILE, "samples": int(keep.sum())}


def _seconds(theta: np.ndarray, batch: OpBatch, device: DeviceSpec, m_tile: int) -> np.ndarray:
    m, n, k, count, flops, nbytes = gemm_flops_bytes(batch, m_tile)
    peak = peak_flops_of(device, batch.dtype)
    bw = device.memory_bandwidth_gbs * 1e9
    return gemm_seconds(theta, m, n, k, count, flops, nbytes, peak, bw, device.sm_count)
