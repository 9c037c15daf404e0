"""Measured operator tables of the Vidur simulator (`vidur-profiles/`, see its README).

Each compute row (one LLM, one token count, one TP degree) becomes one record per operator: GEMMs
get m/n/k (fp16), elementwise operators the bytes they move; each network row becomes one
collective record. Names are "<family>:<op>" so the family classifier files them correctly.
"""

from __future__ import annotations

import csv
import lzma
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from revati.errors import RevatiConfigError
from revati.predict.batch import OpBatch
from revati.predict.calibration.measurements import Measurements

GPU_DEVICES = {"h100": "h100-sxm", "a100": "a100-sxm-80gb"}
GEMM_OPS = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")
ELEMENTWISE_OPS = (
    "mlp_act",
    "input_layernorm",
    "post_attention_layernorm",
    "attn_rope",
    "add",
    "emb",
)
FP16 = 2
# NCCL collective names as revati records them.
COLLECTIVES = {"all_reduce": "allreduce", "send_recv": "sendrecv"}


def is_vidur_root(path: Path) -> bool:
    return path.is_dir() and ((path / "compute").is_dir() or (path / "network").is_dir())


def load_vidur(root: Path, gpu: str = "h100") -> Measurements:
    """Every operator and collective measurement for `gpu` ("h100" or "a100") under `root`."""
    if gpu not in GPU_DEVICES:
        raise RevatiConfigError(
            f"vidur tables: unknown gpu {gpu!r}; use one of {sorted(GPU_DEVICES)}"
        )
    parts = [
        _compute_file(p, root, gpu) for p in _tables((root / "compute" / gpu).glob("*/*/mlp.csv*"))
    ]
    parts += [_network_file(p, gpu) for p in _tables((root / "network").glob(f"{gpu}_*/*.csv*"))]
    if not parts:
        raise RevatiConfigError(
            f"no vidur tables for {gpu} under {root}; expected compute/{gpu}/..."
        )
    return Measurements.concat(parts)


def _tables(paths: Iterable[Path]) -> list[Path]:
    """The .csv tables (or .csv.xz, xz-compressed) among `paths`, in name order."""
    return sorted(p for p in paths if p.name.endswith((".csv", ".csv.xz")))


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        if path.suffix == ".xz":
            with lzma.open(path, "rt", newline="") as f:
                return list(csv.DictReader(f))
        with path.open(newline="") as f:
            return list(csv.DictReader(f))
    except (OSError, lzma.LZMAError) as e:
        raise RevatiConfigError(f"cannot read vidur table {path} ({e})") from e


def gemm_shape(op: str, row: dict[str, int], m: int) -> tuple[int, int, int]:
    e, i, tp = row["n_embd"], row["n_expanded_embd"], row["num_tensor_parallel_workers"]
    hd = e // row["n_head"]
    if op == "attn_pre_proj":
        return m, (row["n_head"] + 2 * row["n_kv_head"]) * hd // tp, e
    if op == "attn_post_proj":
        return m, e, e // tp
    if op == "mlp_up_proj":
        return m, (2 if row["use_gated_mlp"] else 1) * i // tp, e
    return m, e, i // tp  # mlp_down_proj


def _short(op: str) -> str:
    """Operator names that do not trip the family classifier ("attention" means attention)."""
    return op.replace("attention", "attn")


def _gemm_bytes(m: int, n: int, k: int) -> int:
    return (m * k + k * n + m * n) * FP16


def _elementwise_bytes(op: str, row: dict[str, int], m: int) -> int:
    e, i, tp = row["n_embd"], row["n_expanded_embd"], row["num_tensor_parallel_workers"]
    hd = e // row["n_head"]
    if op == "mlp_act":
        return (3 if row["use_gated_mlp"] else 2) * m * i // tp * FP16
    if op in ("input_layernorm", "post_attention_layernorm"):
        return (2 * m * e + e) * FP16
    if op == "attn_rope":
        return 2 * m * (row["n_head"] + row["n_kv_head"]) * hd // tp * FP16
    if op == "add":
        return 3 * m * e * FP16
    return 2 * m * e * FP16  # emb: gather m rows, write them


def _compute_file(path: Path, root: Path, gpu: str) -> Measurements:
    group = str(path.parent.relative_to(root / "compute" / gpu))  # "org/model"
    cols: dict[str, list] = {k: [] for k in ("name", "gemm_m", "gemm_n", "gemm_k", "bytes", "ms")}
    for raw in _rows(path):
        row = {
            k: (1 if raw[k] == "True" else 0 if raw[k] == "False" else int(float(raw[k])))
            for k in (
                "n_head",
                "n_kv_head",
                "n_embd",
                "n_expanded_embd",
                "use_gated_mlp",
                "num_tokens",
                "num_tensor_parallel_workers",
            )
        }
        m = row["num_tokens"]
        for op in (*GEMM_OPS, *ELEMENTWISE_OPS):
            value = raw.get(f"time_stats.{op}.median", "")
            if not value:
                continue
            shape = gemm_shape(op, row, m) if op in GEMM_OPS else (0, 0, 0)
            cols["name"].append(f"gemm:{op}" if op in GEMM_OPS else f"elementwise:{_short(op)}")
            cols["gemm_m"].append(shape[0])
            cols["gemm_n"].append(shape[1])
            cols["gemm_k"].append(shape[2])
            cols["bytes"].append(
                _gemm_bytes(*shape) if op in GEMM_OPS else _elementwise_bytes(op, row, m)
            )
            cols["ms"].append(float(value))
    n = len(cols["name"])
    batch = OpBatch.from_columns(
        n,
        kind="kernel",
        name=np.array(cols["name"], dtype=object),
        gemm_m=np.array(cols["gemm_m"]),
        gemm_n=np.array(cols["gemm_n"]),
        gemm_k=np.array(cols["gemm_k"]),
        bytes=np.array(cols["bytes"]),
        dtype="fp16",
    )
    return Measurements(
        batch, np.array(cols["ms"]) * 1e6, np.full(n, group, dtype=object), GPU_DEVICES[gpu]
    )


def _network_file(path: Path, gpu: str) -> Measurements:
    topology = path.parent.name.removeprefix(f"{gpu}_")  # "dgx" | "pairwise_nvlink"
    cols: dict[str, list] = {k: [] for k in ("collective", "world", "bytes", "ms", "group")}
    for raw in _rows(path):
        op = raw["collective"]
        value = raw.get(f"time_stats.{op}.median", "")
        if not value:
            continue
        per_node = int(raw["devices_per_node"])
        world = int(raw["num_workers"])
        cols["collective"].append(COLLECTIVES.get(op, op))
        cols["world"].append(world)
        cols["bytes"].append(int(raw["size"]))
        cols["ms"].append(float(value))
        nodes = "1node" if per_node >= world else f"{per_node}pernode"
        cols["group"].append(f"{topology}/{nodes}")
    n = len(cols["ms"])
    batch = OpBatch.from_columns(
        n,
        kind="collective",
        name=np.array([f"nccl:{c}" for c in cols["collective"]], dtype=object),
        collective=np.array(cols["collective"], dtype=object),
        world_size=np.array(cols["world"]),
        bytes=np.array(cols["bytes"]),
    )
    groups = np.array(cols["group"], dtype=object)
    return Measurements(batch, np.array(cols["ms"]) * 1e6, groups, GPU_DEVICES[gpu], groups.copy())
