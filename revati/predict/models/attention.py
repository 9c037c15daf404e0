"""Attention (prefill and decode) from FLOPs and bytes with fitted efficiencies.

For batch b, query length q, KV length L, h query heads, g KV heads and head size d (causal
when q > 1 unless the record says it is not, the query block at the end of the KV):

    F = 4·b·h·d·(q·L − q·(q−1)/2)        B = 2·b·d·(2·q·h + 2·L·g)   (fp16/bf16)

and F = 4·b·h·d·q·L without a causal mask (`attn_causal` = -1: encoders, vision models).
    t = t0 + max(F / (P·e_c), B / (BW·e_m))

with separate (t0, e_c, e_m) for prefill (q > 1) and decode (q == 1).
"""

from __future__ import annotations

import numpy as np

from revati.predict.batch import OpBatch
from revati.predict.catalog import DeviceSpec
from revati.predict.models.base import DurationModel, Params, peak_flops_of

PHASES = ("prefill", "decode")
Q_TILE = 128  # query rows per block of FlashAttention-style prefill kernels


def attention_flops_bytes(batch: OpBatch) -> tuple[np.ndarray, np.ndarray]:
    b = np.maximum(batch.attn_batch, 1).astype(np.float64)
    q = np.maximum(batch.attn_q_len, 1).astype(np.float64)
    kv = np.maximum(batch.attn_kv_len, q).astype(np.float64)
    h = np.maximum(batch.attn_heads, 1).astype(np.float64)
    g = np.where(batch.attn_kv_heads > 0, batch.attn_kv_heads, h).astype(np.float64)
    d = batch.attn_head_dim.astype(np.float64)
    masked = np.where(batch.attn_causal < 0, 0.0, q * (q - 1) / 2)
    flops = 4.0 * b * h * d * (q * kv - masked)
    nbytes = 2.0 * b * d * (2 * q * h + 2 * kv * g)
    return flops, nbytes


class AttentionModel(DurationModel):
    name = "attention"
    families = ("attention",)

    @classmethod
    def default_params(cls, device: DeviceSpec) -> Params:
        return {"prefill": [4000.0, 0.45, 0.6], "decode": [4000.0, 0.3, 0.7]}

    def claims(self, batch: OpBatch, families: np.ndarray) -> np.ndarray:
        has = (batch.attn_head_dim > 0) & (batch.attn_kv_len > 0)
        return has & (families == "attention")

    def predict(self, batch: OpBatch) -> np.ndarray:
        out = np.zeros(batch.n)
        for phase in PHASES:
            sel = (batch.attn_q_len > 1) if phase == "prefill" else (batch.attn_q_len <= 1)
            if sel.any():
                out[sel] = _ns(self.params[phase], batch.take(sel), self.device)
        return out

    @classmethod
    def fit(
        cls,
        device: DeviceSpec,
        batch: OpBatch,
        measured_ns: np.ndarray,
        groups: np.ndarray | None = None,
    ) -> Params | None:
        keep = (batch.attn_head_dim > 0) & (batch.attn_kv_len > 0) & (measured_ns > 0)
        if keep.sum() < 4:
            return None
        params = cls.default_params(device)
        for phase in PHASES:
            q = batch.attn_q_len
            sel = keep & ((q > 1) if phase == "prefill" else (q <= 1))
            if sel.sum() >= 4:
                params[phase] = _fit_phase(params[phase], batch.take(sel), measured_ns[sel], device)
        params["samples"] = int(keep.sum())
        return params


def wave_factor(batch: OpBatch, device: DeviceSpec) -> np.ndarray:
    """Whole waves of query tiles over the SMs / the tiles (≥ 1): a prefill kernel runs one
    `Q_TILE`-row tile of one head per block, so a partly filled last wave costs a full one."""
    q = np.maximum(batch.attn_q_len, 1)
    tiles = np.maximum(batch.attn_batch, 1) * np.maximum(batch.attn_heads, 1) * -(-q // Q_TILE)
    waves = -(-tiles // device.sm_count)
    return np.where(q > 1, waves * device.sm_count / tiles, 1.0)


def _ns(coef: list[float], batch: OpBatch, device: DeviceSpec) -> np.ndarray:
    flops, nbytes = attention_flops_bytes(batch)
    flops = flops * wave_factor(batch, device)
    t0, e_c, e_m = coef
    comp = flops / (peak_flops_of(device, batch.dtype) * e_c) * 1e9
    return t0 + np.maximum(comp, nbytes / (device.memory_bandwidth_gbs * e_m))


def _fit_phase(start: list[float], batch: OpBatch, y: np.ndarray, device) -> list[float]:
    from scipy.optimize import least_squares  # scipy only when fitting: keeps import fast

    y_log = np.log(y)

    def resid(th: np.ndarray) -> np.ndarray:
        coef = [np.exp(th[0]), 1 / (1 + np.exp(-th[1])), 1 / (1 + np.exp(-th[2]))]
        return np.log(_ns(coef, batch, device)) - y_log

    th0 = [np.log(start[0]), np.log(start[1] / (1 - start[1])), np.log(start[2] / (1 - start[2]))]
    th = least_squares(resid, th0, loss="soft_l1", f_scale=0.05).x
    coef = [np.exp(th[0]), 1 / (1 + np.exp(-th[1])), 1 / (1 + np.exp(-th[2]))]
    return [round(float(c), 6) for c in coef]
