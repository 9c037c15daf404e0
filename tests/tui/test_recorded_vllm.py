"""The debugger on vLLM's offline generation under `revati record` (the runs of
tests/integration/test_vllm_offline.py, recorded once per session): the engine core's scheduler
steps, one forward each, run one after another on the device with the host's sync between them.

The structure is asserted on the recorded traces themselves. The snapshot reads a run with the
engine core in the program's process (VLLM_ENABLE_V1_MULTIPROCESSING=0), where every request is
added before the first step: with the engine core in its own process, the requests reach it
while it already steps, one or several at a time, and the KV lengths of the last decode steps
(so the attention kernels' predicted durations) change from run to run. The snapshot follows
tests/tui/test_recorded.py: it shows a view that keeps the recorded device tables (kernels with
their names, launch shapes, predicted durations and GEMM shapes, the copy of each step's sampled
tokens, the sync after it) with the pid fixed and no wall clock. What varies between recordings
is host time: the gaps between kernels (the host launching at real speed) and the time between
steps. So the view lays each step's device operations back to back, shows the host blocked in
the step's sync from the step's first kernel to the end of its token copy (a host that queued
its forward and waits), and puts a fixed HOST_NS of host time between steps. It holds the last
two decode steps of the whole batch.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from revati.recorder.reader import TraceReader, open_trace
from revati.tui.app import RevatiApp
from revati.tui.session import TraceSession

from tests.integration.torch_helpers import TorchRun
from tests.integration.vllm_helpers import (
    LAYERS,
    OUTPUT_TOKENS,
    PROMPTS,
    Step,
    sampling_steps,
)
from tests.tui.conftest import SIZE, settle
from tests.tui.device_views import (
    BASE_NS,
    KERNEL_COLUMNS,
    PID,
    Row,
    device_tables,
    rows,
    write_view,
)

HOST_NS = 200_000  # host time between two steps in the view


@pytest.fixture(scope="module")
def inproc(vllm_offline_run) -> TorchRun:
    return vllm_offline_run("eager-inproc")


@pytest.mark.parametrize("mode", ["eager", "graph", "eager-inproc"])
def test_one_forward_per_scheduler_step(vllm_offline_run, mode: str) -> None:
    run = vllm_offline_run(mode)
    steps = sampling_steps(run.trace)
    # Every request's every token is sampled once, in some step's lm_head GEMM.
    assert sum(s.sampled for s in steps) == PROMPTS * OUTPUT_TOKENS, steps
    # The first step prefills (at least one prompt) and samples its first token; each later step
    # samples one more token per running request: OUTPUT_TOKENS steps if every prompt came in
    # the first one, up to OUTPUT_TOKENS + PROMPTS - 1 if they came one per step.
    assert OUTPUT_TOKENS <= len(steps) <= OUTPUT_TOKENS + PROMPTS - 1, steps
    if mode == "eager-inproc":  # every request added before the first step
        assert len(steps) == OUTPUT_TOKENS and steps[0].sampled == PROMPTS, steps
    assert steps[0].tokens > steps[0].sampled
    for s in steps:  # one forward: every layer's qkv projection once, the lm_head once
        assert (s.qkv_gemms, s.head_gemms) == (LAYERS, 1), s
        assert s.sync_id is not None, s
    # Steps run one after another: the host returns from a step's sync before the next
    # step's first kernel starts.
    resumed = dict(run.q("SELECT sync_id, resumed_ns FROM syncs"))
    starts = dict(run.q("SELECT kernel_id, start_ns FROM kernels"))
    for s, following in zip(steps, steps[1:], strict=False):
        assert resumed[s.sync_id] <= min(starts[k] for k in following.kernel_ids), (s, following)


def _decode_steps(steps: list[Step]) -> list[Step]:
    full = [s for s in steps if s.tokens == s.sampled == PROMPTS]
    assert len(full) >= 2, f"fewer than two decode steps of all {PROMPTS} requests: {steps}"
    return full[-2:]


def _laid_out(reader: TraceReader, steps: list[Step]) -> dict[str, list[Row]]:
    """The steps' kernels, copies and syncs, renumbered and laid out anew (see the docstring)."""
    kcols = f"{KERNEL_COLUMNS}, start_ns, end_ns"
    tables: dict[str, list[Row]] = {t: [] for t in ("kernels", "kernel_features", "copies")}
    tables |= {"threads": [], "api_calls": [], "syncs": []}
    t = BASE_NS
    for s in steps:
        ids = ", ".join(map(str, s.kernel_ids))
        kernels = rows(reader, f"SELECT {kcols} FROM kernels WHERE kernel_id IN ({ids})", kcols)
        features = {
            f["kernel_id"]: f
            for f in rows(
                reader,
                f"SELECT kernel_id, gemm_m, gemm_n, gemm_k, dtype FROM kernel_features "
                f"WHERE kernel_id IN ({ids})",
                "kernel_id, gemm_m, gemm_n, gemm_k, dtype",
            )
        }
        copy_cols = "device_id, stream_id, duration_source, model, kind, bytes, start_ns, end_ns"
        (copy,) = rows(
            reader, f"SELECT {copy_cols} FROM copies WHERE copy_id = {s.copy_id}", copy_cols
        )
        step_start = t
        for k in sorted(kernels, key=lambda k: k["start_ns"]):
            old, k["kernel_id"] = k["kernel_id"], len(tables["kernels"])
            if old in features:
                tables["kernel_features"].append({**features[old], "kernel_id": k["kernel_id"]})
            t = _place(k, t)
            tables["kernels"].append(k)
        t = _place(copy, t)
        tables["copies"].append({**copy, "copy_id": len(tables["copies"])})
        _add_sync(reader, tables, s, step_start, t)
        t += HOST_NS
    return tables


def _place(op: Row, t: int) -> int:
    """Start `op` at t, keeping its recorded duration; returns its end."""
    op["end_ns"] = t + op["end_ns"] - op["start_ns"]
    op["start_ns"] = op["launch_ns"] = t
    return op["end_ns"]


def _add_sync(reader: TraceReader, tables: dict[str, list[Row]], s: Step, t0: int, t1: int) -> None:
    """The step's sync on the view's one host thread, blocked from t0 to t1."""
    ((kind, name, thread),) = reader.sql(
        f"""SELECT s.kind, a.name, t.name FROM syncs s JOIN api_calls a USING (call_id)
            JOIN threads t ON t.thread_id = a.thread_id WHERE s.sync_id = {s.sync_id}"""
    )
    if not tables["threads"]:
        tables["threads"].append({"thread_id": 0, "pid": PID, "tid": PID, "name": thread})
    call_id = len(tables["api_calls"])
    tables["api_calls"].append(
        {"call_id": call_id, "thread_id": 0, "seq": call_id, "name": name, "enter_ns": t0,
         "exit_ns": t1, "result": 0}
    )  # fmt: skip
    tables["syncs"].append(
        {"sync_id": call_id, "call_id": call_id, "thread_id": 0, "kind": kind,
         "target": kind, "blocked_ns": t0, "resumed_ns": t1}
    )  # fmt: skip


@pytest.fixture(scope="module")
def steps_view(inproc: TorchRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    steps = _decode_steps(sampling_steps(inproc.trace))
    out = tmp_path_factory.mktemp("vllm-view") / "vllm-steps.duckdb"
    with open_trace(inproc.trace) as r:
        tables = _laid_out(r, steps)
        streams = {op["stream_id"] for op in tables["kernels"] + tables["copies"]}
        tables = {**device_tables(r, streams), **tables}
    return write_view(out, ["python", "generate.py"], tables)


def test_decode_steps_one_after_another(snap_compare, steps_view: Path) -> None:
    """Two steps' forwards on the device, the host blocked in its sync over each and running
    between them; the cursor on the first step's sampler, found with `/`."""

    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("slash", *"ArgMax", "enter")
        await settle(pilot, rounds=2)

    app = RevatiApp(TraceSession(steps_view))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
