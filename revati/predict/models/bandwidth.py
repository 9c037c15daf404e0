"""Elementwise, reduction, copy and memset kernels: bytes over a fitted bandwidth plus a floor.

    t = floor + bytes / (BW_link · efficiency)

BW_link is the device's memory bandwidth (elementwise, memset, device-to-device copies, which
read and write each byte), PCIe (host copies) or NVLink (peer copies). Each family has default
parameters; kernels whose names were seen in calibration get their own fitted pair.
"""

from __future__ import annotations

import numpy as np

from revati.predict.batch import OpBatch
from revati.predict.catalog import DeviceSpec
from revati.predict.families import batch_families
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
        fam = {"elementwise": [3000.0, 0.75], "memcpy": [2000.0, 0.8], "memset": [2000.0, 0.8]}
        return {"family": fam, "by_name": {}}

    def claims(self, batch: OpBatch, families: np.ndarray) -> np.ndarray:
        return np.isin(families, FAMILIES) & (batch.bytes > 0)

    def predict(self, batch: OpBatch) -> np.ndarray:
        fams = batch_families(batch)
        floor, eff = self._floor_eff(batch, fams)
        return floor + batch.bytes / (link_bandwidth(batch, self.device, fams) * eff)

    def _floor_eff(self, batch: OpBatch, fams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        floor = np.zeros(batch.n)
        eff = np.ones(batch.n)
        for fam, (f, e) in self.params["family"].items():
            floor[fams == fam], eff[fams == fam] = f, e
        by_name = self.params["by_name"]
        if by_name:
            uniq, codes = batch.name_index()
            for code, name in enumerate(uniq):
                if name in by_name:
                    sel = codes == code
                    floor[sel], eff[sel] = by_name[name]
        return floor, eff

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


def fit_floor_eff(ideal_ns: np.ndarray, measured_ns: np.ndarray) -> list[float]:
    """Floor and efficiency minimising relative error of t = floor + ideal / eff (weighted NNLS)."""
    from scipy.optimize import nnls

    w = 1.0 / measured_ns
    a = np.column_stack([w, ideal_ns * w])
    coef, _ = nnls(a, np.ones_like(measured_ns))
    floor, inv_eff = float(coef[0]), float(coef[1])
    eff = 1.0 / inv_eff if inv_eff > 1e-9 else 1.0
    return [round(floor, 3), round(min(eff, 10.0), 6)]
