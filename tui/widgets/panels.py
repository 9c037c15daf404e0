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
_HIDDEN = ("launch_call",)


def state_text(state: CursorState) -> Text:
    ev = state.event
    t = Text()
    t.append(f"event {ev.seq}", style="bold")
    t.append(f"  t = {fmt_ns(state.time_ns)}  ({state.time_ns} ns)\n", style="bold gold1")
    t.append("threads\n", style="underline")
    for th in state.threads:
        t.append(f" {th.track.label}: ")
        if th.status == "blocked":
            t.append("blocked", style="bold indian_red")
            t.append(f" on {th.waiting_on or '?'}")
            t.append(
                f" since {fmt_ns(th.since_ns)}, deadline "
                f"{fmt_ns(th.deadline_ns) if th.deadline_ns is not None else '∞'}\n"
            )
        elif th.status == "in call":
            t.append("in ", style="dodger_blue2")
            t.append(f"{th.call}", style="bold dodger_blue2")
            t.append(f" since {fmt_ns(th.since_ns)}\n")
        else:
            t.append("running\n", style="green3")
    t.append("streams\n", style="underline")
    for st in state.streams:
        t.append(f" {st.track.label}: ")
        if st.running:
            t.append(_short(st.running), style="bold green3")
            t.append(f" until {fmt_ns(st.running_end_ns)}")
        else:
            t.append("idle", style="grey50")
        t.append(f", {st.queued} queued\n" if st.queued else "\n")
    t.append("last jump: ", style="underline")
    t.append(f"{state.last_jump.describe()}\n" if state.last_jump else "none yet\n")
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
            f" ({launch.get('args') or ''})\n",
            style="dodger_blue2",
        )
    for ev in linked:
        t.append(" → ", style="grey62")
        t.append(
            f"{ev.kind} #{ev.ref_id} {_short(ev.name)} at {fmt_ns(ev.start_ns)}\n", style="green3"
        )
    return t


def _short(name: str, limit: int = 60) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
