"""Per-kernel launch models: a small regression per kernel name over its launch configuration.

For kernels that no shape-based model claims (no GEMM shape, no attention dims, no bytes the
bandwidth model could use), each kernel name seen in calibration gets

    log t = c0 + c1 · log blocks + c2 · log threads per block (+ c3 · log bytes)

fitted by ridge-regularised least squares on its measured launches (the bytes term only where
every measured launch of that name had bytes). Names are normalised by dropping the parameter
list after the template arguments. A name never measured falls back to its stem (the name up to
its first template argument, e.g. `void at::native::vectorized_elementwise_kernel`), fitted the
same way on every kernel of that stem: labels `launch` and `launch:stem`. Anything else goes on
to the fallback.
"""

from __future__ import annotations

import numpy as np

from revati.predict.batch import OpBatch
from revati.predict.catalog import DeviceSpec
from revati.predict.families import in_families
from revati.predict.models.base import DurationModel, Params

MIN_RECORDS = 3
RIDGE = 0.1
FAMILIES = ("gemm", "attention", "elementwise")


def normalise_name(name: str) -> str:
    """The kernel name without its parameter list (`f<T>(int, T*)` -> `f<T>`)."""
    depth = 0
    for i, ch in enumerate(name):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "(" and depth == 0 and i > 0:
            return name[:i].strip()
    return name.strip()


def name_stem(name: str) -> str:
    """The normalised name up to its first template argument."""
    return normalise_name(name).split("<", 1)[0].strip()


def launch_features(batch: OpBatch) -> np.ndarray:
    """[n, 4]: 1, log blocks, log threads per block, log bytes (0 where unknown)."""
    blocks = np.maximum(batch.grid_x, 1) * np.maximum(batch.grid_y, 1) * np.maximum(batch.grid_z, 1)
    threads = np.maximum(batch.block_x, 1) * np.maximum(batch.block_y, 1)
    threads = threads * np.maximum(batch.block_z, 1)
    nbytes = np.log(np.maximum(batch.bytes, 1).astype(np.float64))
    return np.column_stack([np.ones(batch.n), np.log(blocks), np.log(threads), nbytes])


class LaunchModel(DurationModel):
    name = "launch"
    families = FAMILIES

    @classmethod
    def default_params(cls, device: DeviceSpec) -> Params:
        return {"by_name": {}, "by_stem": {}}

    def claims(self, batch: OpBatch, families: np.ndarray) -> np.ndarray:
        if not self.params["by_name"] and not self.params["by_stem"]:
            return np.zeros(batch.n, dtype=bool)
        known = np.array([fit is not None for fit, _ in self._keys(batch)] or [False])
        return known[batch.name_index()[1]] & in_families(families, FAMILIES)

    def _keys(self, batch: OpBatch) -> list[tuple[dict | None, str]]:
        """Per distinct name of `batch`: (its fit, label), or (None, "") when unknown."""
        out: list[tuple[dict | None, str]] = []
        for name in batch.name_index()[0]:
            exact = self.params["by_name"].get(normalise_name(str(name)))
            if exact is not None:
                out.append((exact, self.label))
                continue
            stem = self.params["by_stem"].get(name_stem(str(name)))
            out.append((stem, f"{self.label}:stem") if stem else (None, ""))
        return out

    def predict(self, batch: OpBatch) -> np.ndarray:
        keys = self._keys(batch)
        grid = np.array([_padded(fit, "grid") for fit, _ in keys])
        with_bytes = np.array([_padded(fit, "bytes") for fit, _ in keys])
        codes = batch.name_index()[1]
        use_bytes = (batch.bytes > 0) & with_bytes[codes].any(axis=1)
        coef = np.where(use_bytes[:, None], with_bytes[codes], grid[codes])
        return np.exp(np.sum(launch_features(batch) * coef, axis=1))

    def labels(self, batch: OpBatch) -> np.ndarray | str:
        names = np.array([label for _, label in self._keys(batch)] or [""], dtype=object)
        return names[batch.name_index()[1]]

    @classmethod
    def fit(
        cls,
        device: DeviceSpec,
        batch: OpBatch,
        measured_ns: np.ndarray,
        groups: np.ndarray | None = None,
    ) -> Params | None:
        keep = (measured_ns > 0) & (batch.kind == "kernel") & (batch.grid_x > 0)
        if keep.sum() < MIN_RECORDS:
            return None
        sub, y = batch.take(keep), np.log(measured_ns[keep])
        x = launch_features(sub)
        has_bytes = sub.bytes > 0
        names = np.array([normalise_name(str(n)) for n in sub.name], dtype=object)
        stems = np.array([name_stem(str(n)) for n in names], dtype=object)
        by_name = _fit_groups(names, x, y, has_bytes)
        by_stem = _fit_groups(stems, x, y, has_bytes)
        if not by_name and not by_stem:
            return None
        return {"by_name": by_name, "by_stem": by_stem, "samples": int(keep.sum())}


def _padded(fit: dict | None, which: str) -> list[float]:
    values = list((fit or {}).get(which, []))
    return values + [0.0] * (4 - len(values))


def _fit_groups(
    keys: np.ndarray, x: np.ndarray, y: np.ndarray, has_bytes: np.ndarray
) -> dict[str, dict[str, list[float]]]:
    """Per key with enough records: the fit over grid and block, and over bytes too where every
    record had bytes."""
    out = {}
    uniq, inverse = np.unique(keys.astype(str), return_inverse=True)
    for i, key in enumerate(uniq):
        sel = inverse == i
        if sel.sum() >= MIN_RECORDS:
            fits = {"grid": fit_log_linear(x[sel][:, :3], y[sel])}
            if has_bytes[sel].all():
                fits["bytes"] = fit_log_linear(x[sel], y[sel])
            out[str(key)] = fits
    return out


def fit_log_linear(x: np.ndarray, y: np.ndarray) -> list[float]:
    """Ridge least squares of y on x (first column the unpenalised intercept), centred."""
    z = x[:, 1:]
    mean_z, mean_y = z.mean(axis=0), y.mean()
    zc = z - mean_z
    slope = np.linalg.solve(zc.T @ zc + RIDGE * np.eye(z.shape[1]), zc.T @ (y - mean_y))
    return [round(float(c), 5) for c in (mean_y - mean_z @ slope, *slope)]
