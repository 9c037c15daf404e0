"""Elementwise, reduction, copy and memset kernels: bytes over a fitted bandwidth plus a floor.

    ideal = bytes / BW_link        t = floor + ideal / efficiency · (ideal / 10 µs)^slope

BW_link is the device's memory bandwidth (elementwise, memset, device-to-device copies, which
read and write each byte), PCIe (host copies) or NVLink (peer copies); the slope lets the
effective bandwidth drift with size (L2 residency, tail effects). Each family has default
parameters; kernels whose names were seen in calibration get their own fitted triple, fitted by
robust least squares on log time.
"""

from __future__ import annotations

import numpy as np

from revati.predict.batch import OpBatch
from revati.predict.catalog import DeviceSpec
from revati.predict.families import batch_families, in_families
from revati.predict.models.base import DurationModel, Params

FAMILIES = ("elementwise", "memcpy", "memset")


def link_bandwidth(batch: OpBatch, device: DeviceSpec, families: np.ndarray) -> np.ndarray:
    """Bytes per ns of the link each record's bytes cross (device memory, PCIe or NVLink)."""
    bw = np.full(batch.n, device.memory_bandwidth_gbs, dtype=np.float64)
    host = (families == "memcpy") & np.isin(batch.copy_kind, ("HtoD", "DtoH", "HtoH"))
    bw[host] = device.pcie_gbs
    bw[(families == "memcpy") & (batch.copy_kind == "DtoD")] = device.memory_bandwidth_gbs / 2
    peer = (families == "memcpy") & (batch.copy_kind == "PtoP")
    bw[peer] = device.nvlink_gbs or device.pcie_gbs
    return bw


class BandwidthModel(DurationModel):
    name = "bandwidth"
    families = FAMILIES

    @classmethod
    def default_params(cls, device: DeviceSpec) -> Params:
        fam = {
            "elementwise": [3000.0, 0.75, 0.0],
            "memcpy": [2000.0, 0.8, 0.0],
            "memset": [2000.0, 0.8, 0.0],
        }
        return {"family": fam, "by_name": {}}

    def claims(self, batch: OpBatch, families: np.ndarray) -> np.ndarray:
        return in_families(families, FAMILIES) & (batch.bytes > 0)

    def predict(self, batch: OpBatch) -> np.ndarray:
        fams = batch_families(batch)
        coef = self._coefficients(batch, fams)
        return bandwidth_ns(coef, batch.bytes / link_bandwidth(batch, self.device, fams))

    def _coefficients(self, batch: OpBatch, fams: np.ndarray) -> np.ndarray:
        """[3, n]: floor, efficiency and slope of each record (by name, else by family)."""
        coef = np.zeros((3, batch.n))
        coef[1] = 1.0
        for fam, values in self.params["family"].items():
            coef[:, fams == fam] = np.asarray(values, dtype=np.float64)[:, None]
        by_name = self.params["by_name"]
        if by_name:
            uniq, codes = batch.name_index()
            for code, name in enumerate(uniq):
                if name in by_name:
                    coef[:, codes == code] = np.asarray(by_name[name], dtype=np.float64)[:, None]
        return coef

    @classmethod
    def fit(
        cls,
        device: DeviceSpec,
        batch: OpBatch,
        measured_ns: np.ndarray,
        groups: np.ndarray | None = None,
    ) -> Params | None:
        keep = (batch.bytes > 0) & (measured_ns > 0)
        if keep.sum() < 4:
            return None
        sub, y = batch.take(keep), measured_ns[keep]
        fams = batch_families(sub)
        x = sub.bytes / link_bandwidth(sub, device, fams)  # ns at 100% efficiency
        params = cls.default_params(device)
        for fam in FAMILIES:
            sel = fams == fam
            if sel.sum() >= 4:
                params["family"][fam] = fit_floor_eff(x[sel], y[sel])
        uniq, codes = sub.name_index()
        for code, name in enumerate(uniq):
            sel = codes == code
            if sel.sum() >= 4:
                params["by_name"][str(name)] = fit_floor_eff(x[sel], y[sel])
        params["samples"] = int(keep.sum())
        return params


REFERENCE_NS = 1e4
# (log floor ns, log efficiency, slope): few or noisy points must not fit a vanishing
# efficiency with a huge slope, which predicts nothing sensible off the measured sizes
FIT_BOUNDS = ([0.0, np.log(0.01), -0.5], [np.log(1e6), np.log(4.0), 0.5])


def bandwidth_ns(coef: np.ndarray, ideal_ns: np.ndarray) -> np.ndarray:
    floor, eff, slope = coef
    return floor + ideal_ns / eff * (np.maximum(ideal_ns, 1e-3) / REFERENCE_NS) ** slope


def fit_floor_eff(ideal_ns: np.ndarray, measured_ns: np.ndarray) -> list[float]:
    """Floor, efficiency and slope minimising robust log error of `bandwidth_ns`."""
    from scipy.optimize import least_squares

    y = np.log(measured_ns)

    def resid(th: np.ndarray) -> np.ndarray:
        coef = np.array([np.exp(th[0]), np.exp(th[1]), th[2]])[:, None]
        return np.log(bandwidth_ns(coef, ideal_ns)) - y

    th = least_squares(
        resid, [np.log(2000.0), np.log(0.7), 0.0], bounds=FIT_BOUNDS, loss="soft_l1", f_scale=0.1
    ).x
    return [round(float(np.exp(th[0])), 3), round(float(np.exp(th[1])), 6), round(float(th[2]), 6)]
