"""`replay_trace`: re-simulate a trace with its own or another device's durations (docs/design.md §8).

The replay mirror of a recording session: read the parent's schedule (`replay/reader.py`), get
the durations (`replay/durations.py`), re-run the device model over the recorded host intervals
(`replay/resim.py`), write the result as a normal trace (`replay/writer.py`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from revati.recorder.reader import open_trace
from revati.replay.durations import (
    OpDurations,
    predicted_durations,
    recorded_durations,
    scale_families,
)
from revati.replay.reader import read_schedule
from revati.replay.resim import resimulate
from revati.replay.writer import ReplayRun, copy_parent, write_replay

from revati.errors import RevatiConfigError
from revati.predict import get_device


@dataclass(frozen=True)
class ReplaySummary:
    """What a replay did, for the CLI and tests."""

    out: str
    ops: int
    syncs: int
    barriers: int
    device: str
    durations: str  # 'recorded' or the predictor identity
    parent_end_ns: int
    end_ns: int
    simulate_s: float
    total_s: float

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.simulate_s if self.simulate_s > 0 else float("inf")


def _latency(device: str | None) -> int:
    if not device:
        return 0
    try:
        return int(get_device(device).launch_latency_ns)
    except RevatiConfigError:
        return 0


def replay_trace(
    parent: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    device: str | None = None,
    profile: str | None = None,
    overwrite: bool = False,
    scale: dict[str, float] | None = None,
) -> ReplaySummary:
    """Replay `parent` into `out`. With neither device nor profile the recorded durations are
    kept (the identity: every timestamp comes out as recorded); with either, every kernel, copy
    and memset is predicted for `device` (default: the parent's) with `profile`. `scale`
    multiplies the durations of kernel families (what-if: {'attention': 0.5})."""
    t0 = time.perf_counter()
    parent, out = Path(parent), Path(out)
    with open_trace(parent) as reader:
        run = reader.run()
        own_device = run.get("device")
        target = device or own_device
        if (device or profile) and not target:
            raise RevatiConfigError(f"{parent}: names no device; pass --device")
        inp = read_schedule(reader)
        durations: OpDurations = (
            predicted_durations(reader, target, profile)
            if device or profile
            else recorded_durations(inp.ops.start, inp.ops.end)
        )
        durations = scale_families(durations, inp.op_name, scale or {})
    copy_parent(parent, out, overwrite)
    t1 = time.perf_counter()
    res = resimulate(
        inp.ops,
        inp.syncs,
        inp.barriers,
        durations.duration_ns,
        latency_orig=_latency(own_device),
        latency_new=_latency(target),
    )
    t2 = time.perf_counter()
    write_replay(
        out,
        inp,
        res,
        ReplayRun(str(parent), run.get("source"), target or "", profile, durations.predictor),
        durations.model,
    )
    ends = [int(a.max()) for a in (inp.ops.end, inp.syncs.resumed) if len(a)]
    new_ends = [int(a.max()) for a in (res.end, res.resumed) if len(a)]
    return ReplaySummary(
        str(out),
        len(inp.ops.start),
        len(inp.syncs.resumed),
        len(inp.barrier_id),
        target or "",
        durations.predictor or "recorded",
        max(ends, default=0),
        max(new_ends, default=0),
        t2 - t1,
        time.perf_counter() - t0,
    )
