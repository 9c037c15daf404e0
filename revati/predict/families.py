"""Kernel families from kernel names: gemm, attention, collective, memcpy, memset, elementwise.

The one classifier of revati; the predictor, the calibration and the TUI's compare view all use
it, so a kernel lands in the same family everywhere.
"""

from __future__ import annotations

import re

import numpy as np

from revati.predict.batch import OpBatch

FAMILIES = ("gemm", "attention", "collective", "memcpy", "memset", "elementwise")

_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # NCCL's kernels, and the barriers of kernels that meet over IPC buffers (ipc_group_<op>)
    ("collective", re.compile(r"nccl|^ipc_group_", re.I)),
    # vLLM's KV-cache writes name flash attention's cache layout but copy memory
    ("elementwise", re.compile(r"reshape_and_cache", re.I)),
    ("attention", re.compile(r"flash|fmha|attention|paged_attention", re.I)),
    ("gemm", re.compile(r"gemm|gemv|xmma|cutlass|nvjet|sm90_|ampere_.*gemm|cublas", re.I)),
    ("memcpy", re.compile(r"memcpy", re.I)),
    ("memset", re.compile(r"memset", re.I)),
)
_KIND_FAMILY = {"copy": "memcpy", "memset": "memset", "collective": "collective"}


def kernel_family(name: str) -> str:
    """The family of a kernel named `name` (anything unmatched is "elementwise")."""
    for family, pattern in _RULES:
        if pattern.search(name):
            return family
    return "elementwise"


def batch_families(batch: OpBatch) -> np.ndarray:
    """The family of every record of `batch`; a non-kernel `kind` decides before the name."""
    uniq, codes = batch.name_index()
    fams = np.array([kernel_family(str(n)) for n in uniq], dtype=object)[codes]
    for kind, family in _KIND_FAMILY.items():
        fams[batch.kind == kind] = family
    return fams


def families_of(names: np.ndarray, kinds: np.ndarray | None = None) -> np.ndarray:
    """Vectorised `kernel_family` over an array of names (and optional kinds)."""
    kind = kinds if kinds is not None else "kernel"
    return batch_families(OpBatch.from_columns(len(names), name=names, kind=kind))


def in_families(families: np.ndarray, wanted: tuple[str, ...]) -> np.ndarray:
    """Mask of records whose family is one of `wanted` (faster than np.isin on strings)."""
    mask = np.zeros(len(families), dtype=bool)
    for family in wanted:
        mask |= families == family
    return mask
