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

The surface is smooth; cuBLAS's time steps with the kernel it picks per shape. A tile correction
(`gemm_tiles`: boosted trees over wave-quantisation and tile features, fitted on the surface's
log residual) multiplies it, and a per-kernel-name factor the product.
"""

from __future__ import annotations

import numpy as np

from revati.predict.batch import OpBatch
from revati.predict.catalog import DeviceSpec
from revati.predict.models.base import DurationModel, Params, peak_flops_of
from revati.predict.models.gemm_tiles import fit_tile_correction, tile_correction, tile_features

TILE = 128.0
M_TILE = 128  # rows per output tile along m in fitted profiles (older profiles: 1, no rounding)
MAX_FIT_SAMPLES = 8000
MAX_FIT_EVALUATIONS = 200  # the vidur tables converge in ~20; few distinct shapes may never
MIN_NAME_RECORDS = 3
NAME_SHRINK = 2.0
# Defaults: about what cuBLAS reaches on Hopper for mid-size fp16 GEMMs (fit replaces them).
DEFAULT_THETA = [-3.0, 0.6, 0.05, 0.05, -0.02, 0.0, 0.0, 1.5, 1.0, 1.6, 0.5, 0.0, 0.0]


# dtype -> (bytes per element, real FLOPs per multiply-add / 2, dtype whose peak applies);
# complex types do 4 real multiply-adds per complex one; unknown dtypes count as fp16
DTYPES = {
    "fp64": (8, 1, "fp32"),
    "fp32": (4, 1, "fp32"),
    "tf32": (4, 1, "tf32"),
    "fp16": (2, 1, "fp16"),
    "bf16": (2, 1, "bf16"),
    "fp8": (1, 1, "fp8"),
    "int8": (1, 1, "fp8"),
    "c32": (4, 4, "fp16"),
    "c64": (8, 4, "fp32"),
    "c128": (16, 4, "fp32"),
}


def dtype_traits(dtypes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bytes per element, FLOP multiplier, dtype of the peak that applies) per record."""
    uniq, inverse = np.unique(dtypes.astype(str), return_inverse=True)
    traits = [DTYPES.get(d, (2, 1, d)) for d in uniq]
    elem = np.array([t[0] for t in traits], dtype=np.float64)[inverse]
    mult = np.array([t[1] for t in traits], dtype=np.float64)[inverse]
    peak_dtype = np.array([t[2] for t in traits], dtype=object)[inverse]
    return elem, mult, peak_dtype


def gemm_flops_bytes(batch: OpBatch, m_tile: int = 1) -> tuple[np.ndarray, ...]:
    m = np.maximum(batch.gemm_m, 1).astype(np.float64)
    if m_tile > 1:
        m = np.where(m >= m_tile, np.ceil(m / m_tile) * m_tile, m)
    n = np.maximum(batch.gemm_n, 1).astype(np.float64)
    k = np.maximum(batch.gemm_k, 1).astype(np.float64)
    count = np.maximum(batch.batch, 1).astype(np.float64)
    elem, mult, _ = dtype_traits(batch.dtype)
    flops = 2.0 * m * n * k * count * mult
    return m, n, k, count, flops, (m * k + k * n + m * n) * elem * count


def gemm_seconds(
    theta: np.ndarray, m, n, k, count, flops, nbytes, peak, bw, sms, bounds=None
) -> np.ndarray:
    lm, ln, lk = np.log(m), np.log(n), np.log(k)
    if bounds is not None:  # the surface never extrapolates past the shapes it was fitted on
        lm, ln, lk = (np.clip(v, lo, hi) for v, (lo, hi) in zip((lm, ln, lk), bounds, strict=True))
    z = theta[0] + theta[1] * lm + theta[2] * ln + theta[3] * lk + theta[4] * lm**2
    z = z + theta[5] * lk**2 + theta[6] * ln**2 + theta[11] * lm * ln + theta[12] * lm * lk
    tiles = np.ceil(m / TILE) * np.ceil(n / TILE) * count
    quant = tiles / (np.ceil(tiles / sms) * sms)
    e_c = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))) * quant ** theta[10]
    e_m = 1.0 / (1.0 + np.exp(-theta[7]))
    p = np.exp(np.clip(theta[8], -2, 3))
    comp = flops / (peak * e_c) * 1e6  # microseconds keep the p-norm in range
    mem = nbytes / (bw * e_m) * 1e6
    # the p-norm of (comp, mem) as hi * (1 + (lo / hi)^p)^(1/p): no power of a large time
    hi, lo = np.maximum(comp, mem), np.minimum(comp, mem)
    ratio = np.divide(lo, hi, out=np.zeros_like(hi, dtype=np.float64), where=hi > 0)
    return (np.exp(theta[9]) + hi * (1.0 + ratio**p) ** (1.0 / p)) * 1e-6


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
        ns = surface_ns(self.params, batch, self.device)
        return ns * name_factors(batch, self.params.get("by_name", {}))

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
        problem = _problem(sub, device, M_TILE)  # once: the fit evaluates the surface often
        result = least_squares(
            lambda th: np.log(gemm_seconds(th, *problem)) - y,
            np.array(DEFAULT_THETA),
            loss="soft_l1",
            f_scale=0.05,
            max_nfev=MAX_FIT_EVALUATIONS,
        )
        theta = [round(float(v), 6) for v in result.x]
        params = {"theta": theta, "m_tile": M_TILE, "samples": int(keep.sum())}
        kept, kept_ns = batch.take(keep), measured_ns[keep]
        params["log_bounds"] = fitted_bounds(kept)
        first = fit_name_factors(params, device, kept, kept_ns)
        surface = surface_ns(params, kept, device) * name_factors(kept, first)
        resid = np.log(kept_ns / surface)
        features, inverse = _distinct_shape_features(kept, device)
        params["tiles"] = fit_tile_correction(features[inverse], resid)
        params["by_name"] = fit_name_factors(params, device, batch.take(keep), measured_ns[keep])
        return params

    @classmethod
    def fit_with_prior(
        cls,
        device: DeviceSpec,
        batch: OpBatch,
        measured_ns: np.ndarray,
        groups: np.ndarray | None,
        prior: Params | None,
    ) -> Params | None:
        """The prior's surface kept as it is; per-kernel-name factors fitted on this data."""
        if prior is None:
            return cls.fit(device, batch, measured_ns, groups)
        keep = (batch.gemm_m > 0) & (batch.gemm_n > 0) & (batch.gemm_k > 0) & (measured_ns > 0)
        params = {k: v for k, v in prior.items() if k != "by_name"}
        factors = fit_name_factors(params, device, batch.take(keep), measured_ns[keep])
        params["by_name"] = {**prior.get("by_name", {}), **factors}
        return params


def name_factors(batch: OpBatch, by_name: dict[str, float]) -> np.ndarray:
    """exp(log factor) of each record's kernel name (1 for names without one)."""
    out = np.ones(batch.n)
    if by_name:
        uniq, codes = batch.name_index()
        logs = np.array([by_name.get(str(name), 0.0) for name in uniq])
        out = np.exp(logs[codes])
    return out


def fit_name_factors(
    params: Params, device: DeviceSpec, batch: OpBatch, measured_ns: np.ndarray
) -> dict[str, float]:
    """Per kernel name, the mean log ratio of measured to surface time, shrunk towards 0
    (`NAME_SHRINK` pseudo-records at ratio 1), for names with `MIN_NAME_RECORDS` records."""
    if batch.n == 0:
        return {}
    surface = surface_ns(params, batch, device)
    resid = np.clip(np.log(measured_ns / surface), -3, 3)
    uniq, codes = batch.name_index()
    out = {}
    for code, name in enumerate(uniq):
        r = resid[codes == code]
        if len(r) >= MIN_NAME_RECORDS:
            out[str(name)] = round(float(r.sum() / (len(r) + NAME_SHRINK)), 4)
    return out


def fitted_bounds(batch: OpBatch) -> list[list[float]]:
    """[low, high] of log m, log n, log k over the records a surface is fitted on."""
    m, n, k = (np.log(np.maximum(c, 1)) for c in (batch.gemm_m, batch.gemm_n, batch.gemm_k))
    return [[round(float(v.min()), 4), round(float(v.max()), 4)] for v in (m, n, k)]


def surface_ns(params: Params, batch: OpBatch, device: DeviceSpec) -> np.ndarray:
    """The fitted surface's ns for `batch` times its tile correction (no per-name factor)."""
    theta = np.asarray(params["theta"])
    m_tile = int(params.get("m_tile", 1))
    ns = _seconds(theta, batch, device, m_tile, params.get("log_bounds")) * 1e9
    if not params.get("tiles"):
        return ns
    features, inverse = _distinct_shape_features(batch, device)
    return ns * tile_correction(params["tiles"], features)[inverse]


def _distinct_shape_features(batch: OpBatch, device: DeviceSpec) -> tuple[np.ndarray, np.ndarray]:
    """`tile_features` of each distinct (m, n, k, count), and each record's row among them."""
    cols = (batch.gemm_m, batch.gemm_n, batch.gemm_k, batch.batch)
    shapes = np.stack([np.maximum(c, 1) for c in cols], axis=1)
    uniq, inverse = np.unique(shapes, axis=0, return_inverse=True)
    m, n, k, count = uniq.T
    return tile_features(m, n, k, count, device.sm_count), inverse.ravel()


def _seconds(
    theta: np.ndarray, batch: OpBatch, device: DeviceSpec, m_tile: int, bounds=None
) -> np.ndarray:
    return gemm_seconds(theta, *_problem(batch, device, m_tile), bounds=bounds)


GemmProblem = tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, int
]


def _problem(batch: OpBatch, device: DeviceSpec, m_tile: int) -> GemmProblem:
    """(m, n, k, count, flops, bytes, peak, bandwidth, SMs): what the surface is evaluated on."""
    m, n, k, count, flops, nbytes = gemm_flops_bytes(batch, m_tile)
    peak = peak_flops_of(device, dtype_traits(batch.dtype)[2])
    return m, n, k, count, flops, nbytes, peak, device.memory_bandwidth_gbs * 1e9, device.sm_count
