"""Runs of plain launches: where they are in a drained batch, and the ids a placed run took.

A run is >= MIN_RUN launches by one thread on one stream with nothing else between them but
library GEMM shape records; `DeviceOps._launch_run` places a run in one vectorised step and
builds its rows after the waiting threads are answered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from revati import shim

MIN_RUN = 4  # a run's placement is a few array passes; its rows are built after the wakes


@dataclass(frozen=True)
class RunIds:
    """The ids a run of launches took when it was placed: its thread, first sequence number,
    call ids and kernel ids."""

    thread: int
    seq: int
    calls: np.ndarray
    kernels: np.ndarray


def launch_runs(records: np.ndarray, launches: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of runs of >= MIN_RUN plain launches by one thread on one stream. A library
    GEMM's shape record (REC_GEMM) is passed over: it writes no row of its own, and its launch,
    which carries the shape (`pair_gemms`), is as plain as any other."""
    types = records["type"]
    shape = types == shim.REC_GEMM
    keep = None
    if shape.any():
        keep = np.flatnonzero(~shape)
        records, launches, types = records[keep], launches[keep], types[keep]
    plain = (types == shim.REC_LAUNCH) & (launches["graph_flag"] == 0)
    if plain.sum() < MIN_RUN:
        return []
    same = (
        plain[1:]
        & plain[:-1]
        & (launches["stream"][1:] == launches["stream"][:-1])
        & (records["thread"][1:] == records["thread"][:-1])
    )
    breaks = np.flatnonzero(~same) + 1
    bounds = np.concatenate([[0], breaks, [len(records)]]).tolist()
    runs = [
        (a, b)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        if b - a >= MIN_RUN and plain[a]
    ]
    if keep is None:
        return runs
    at = keep.tolist()  # back to positions among all records, the shapes between included
    return [(at[a], at[b - 1] + 1) for a, b in runs]
