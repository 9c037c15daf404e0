"""Text of the side panels: the run's state at the cursor and the selected event's record."""

from __future__ import annotations

from typing import Any

from revati.recorder.reader import Event
from revati.replay.cursor import CursorState
from revati.tui.format import fmt_ns
from rich.text import Text

# Columns of a details row shown first, in this order; the rest follow alphabetically.
_FIRST = (
    "name",
    "kind",
    "args",
    "result",
    "launch_ns",
    "start_ns",
    "end_ns",
    "enter_ns",
    "exit_ns",
    "duration_source",
    "model",
)
_HIDDEN = ("launch_call", "woke_sync")


def state_text(state: CursorState) -> Text:
    ev = state.event
    t = Text()
    t.append(f"event {ev.seq}", style="bold")
    t.append(f"  t = {fmt_ns(state.time_ns)}  ({state.time_ns} ns)\n", style="bold gold1")
    t.append("threads\n", style="underline")
    labels = {th.track.ref_id: th.track.label for th in state.threads}
    for th in state.threads:
        t.append(f" {th.track.label}: ")
        if th.status == "blocked":
            t.append("blocked", style="bold indian_red")
            if th.call:
                t.append(" in ")
                t.append(th.call, style="bold dodger_blue2")
            t.append(f" on {th.waiting_on or '?'}")
            t.append(
                f" since {fmt_ns(th.since_ns)}, deadline "
                f"{fmt_ns(th.deadline_ns) if th.deadline_ns is not None else '∞'}"
            )
            late = _late(th.deadline_ns, th.resumed_ns)
            if late:
                t.append(
                    f", resumed {fmt_ns(th.resumed_ns)} ({late} late: the clock ran at real speed)",
                    style="dark_orange",
                )
            t.append("\n")
        elif th.status == "in call":
            t.append("in ", style="dodger_blue2")
            t.append(f"{th.call}", style="bold dodger_blue2")
            t.append(f" since {fmt_ns(th.since_ns)}\n")
        elif th.status in ("not started", "ended"):
            if th.status == "not started":
                t.append(f"not seen yet (first seen at {fmt_ns(th.since_ns)})\n", style="grey50")
            else:
                t.append(f"ended at {fmt_ns(th.since_ns)}", style="grey50")
                if th.ending:
                    bad = "exited with code 0" not in th.ending
                    t.append(f" ({th.ending})", style="bold indian_red" if bad else "grey50")
                t.append("\n")
        else:
            t.append("running\n", style="green3")
    if not state.threads:
        t.append(" none\n", style="grey50")
    t.append("streams\n", style="underline")
    for st in state.streams:
        t.append(f" {st.track.label}: ")
        if st.running:
            t.append(_short(st.running), style="bold green3")
            t.append(f" until {fmt_ns(st.running_end_ns)}")
        else:
            t.append("idle", style="grey50")
        t.append(f", {st.queued} queued\n" if st.queued else "\n")
    if not state.streams:
        t.append(" none\n", style="grey50")
    t.append("last jump: ", style="underline")
    jump = state.last_jump
    if jump is None:
        t.append("none yet\n")
    else:
        why = _what(jump.cause_kind, jump.cause_object)
        who = labels.get(jump.cause_thread_id) if jump.cause_thread_id is not None else None
        t.append(
            f"#{jump.jump_id} {fmt_ns(jump.from_ns)} → {fmt_ns(jump.to_ns)} "
            f"(+{fmt_ns(jump.to_ns - jump.from_ns)}): all threads blocked, the clock jumped to the "
            f"earliest deadline ({why or 'unknown'}" + (f" of {who}" if who else "") + ")\n"
        )
    for detail, arrived in state.barriers:
        t.append(f"barrier #{detail.barrier_id} {detail.collective}: ", style="bright_magenta")
        t.append(f"{arrived}/{len(detail.arrivals)} ranks arrived")
        waiting = [str(a.rank) for a in detail.arrivals if a.arrival_ns > state.time_ns]
        t.append(f", waiting for rank {', '.join(waiting)}\n" if waiting else ", released\n")
    return t


def details_text(event: Event, row: dict[str, Any], linked: list[Event]) -> Text:
    t = Text()
    t.append(f"{event.kind} #{event.ref_id}", style="bold")
    t.append(f"  {fmt_ns(event.duration_ns)}\n", style="gold1")
    _summary(t, event, row, linked)
    keys = [k for k in _FIRST if k in row] + sorted(k for k in row if k not in _FIRST)
    for key in keys:
        if key in _HIDDEN or row[key] is None:
            continue
        value = row[key]
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            value = "; ".join(str(v) for v in value)
        t.append(f" {key}: ", style="grey62")
        t.append(f"{value}\n")
    return t


def _summary(t: Text, event: Event, row: dict[str, Any], linked: list[Event]) -> None:
    """The lines a person looks for first: duration and model, launch ↔ kernel, errors, why."""
    if event.kind in ("kernel", "copy", "memset"):
        dur = (row.get("end_ns") or 0) - (row.get("start_ns") or 0)
        src = row.get("duration_source") or "?"
        t.append(
            f" {src} duration {fmt_ns(dur)} by model {row.get('model') or '?'}\n", style="bold"
        )
    launch = row.get("launch_call")
    if launch:
        t.append(" launched by ", style="grey62")
        t.append(
            f"{launch.get('name')} #{launch.get('call_id')} at {fmt_ns(launch.get('enter_ns'))}"
            + (f" ({launch['args']})" if launch.get("args") else "")
            + "\n",
            style="dodger_blue2",
        )
    for ev in linked:
        t.append(" → ", style="grey62")
        t.append(
            f"{ev.kind} #{ev.ref_id} {_short(ev.name)} at {fmt_ns(ev.start_ns)}\n", style="green3"
        )
    if event.kind == "api_call":
        result = row.get("result")
        if row.get("unsupported"):
            t.append(f" unsupported: {row['unsupported']}\n", style="bold dark_orange")
        if result not in (None, 0):
            name = CUDA_ERRORS.get(int(result), "error")
            t.append(f" returned {result} ({name})\n", style="bold indian_red")
    if event.kind == "sync":
        late = _late(row.get("deadline_ns"), row.get("resumed_ns"))
        t.append(
            f" {row.get('call') or 'blocked'} waits for "
            f"{_what(row.get('kind'), row.get('target')) or '?'} until "
            f"{fmt_ns(row.get('deadline_ns'))}"
            + (f"; resumed {late} late (the clock ran at real speed)" if late else "")
            + "\n",
            style="bold",
        )
    if event.kind == "jump":
        woke = row.get("woke_sync") or {}
        t.append(
            f" all threads blocked: the clock jumped {fmt_ns(row.get('from_ns'))} → "
            f"{fmt_ns(row.get('to_ns'))} to the deadline of "
            f"{_what(row.get('cause_kind'), row.get('cause_object')) or '?'}"
            + (
                f" (sync #{woke.get('sync_id')} in {woke.get('call')})"
                if woke.get("sync_id") is not None
                else ""
            )
            + "\n",
            style="bold",
        )


# cudaError_t values a recorded program commonly sees.
CUDA_ERRORS = {
    1: "cudaErrorInvalidValue",
    2: "cudaErrorMemoryAllocation",
    3: "cudaErrorInitializationError",
    98: "cudaErrorInvalidDeviceFunction",
    100: "cudaErrorNoDevice",
    101: "cudaErrorInvalidDevice",
    400: "cudaErrorInvalidResourceHandle",
    600: "cudaErrorNotReady",
    801: "cudaErrorNotSupported",
    900: "cudaErrorStreamCaptureUnsupported",
}


def _what(kind: str | None, obj: str | None) -> str:
    """'copy' + 'copy' -> 'copy'; 'stream' + 'stream 1' -> 'stream 1'; 'event' + '0x..' ->
    'event 0x..'."""
    if kind and obj:
        return obj if obj.startswith(kind) else f"{kind} {obj}"
    return obj or kind or ""


def _late(deadline_ns: int | None, resumed_ns: int | None) -> str | None:
    """How much later than its deadline a blocked thread resumed, if it did (else None)."""
    if deadline_ns is None or resumed_ns is None or resumed_ns <= deadline_ns:
        return None
    return fmt_ns(resumed_ns - deadline_ns)


def _short(name: str, limit: int = 60) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
