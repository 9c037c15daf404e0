"""The device model (docs/time-model.md): per-stream timelines, events, and the deadlines of syncs.

A kernel, copy or memset launched at host time `t` on stream `s` starts at
`max(t + launch_latency, tail(s), floor(s))` and ends `duration` later; `floor(s)` is raised by
`cudaStreamWaitEvent`. The legacy default stream (handle 0) waits for every blocking stream of
its process and device, and blocking streams wait for it; the per-thread default stream
(handle 2) is a blocking stream of its own per host thread. An event takes
`max(t, tail(s))` when recorded. Everything here is pure and deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

from revati.shim import DEFAULT_STREAM_DEVICE_SHIFT

LEGACY = 0
PER_THREAD = 2
# A default stream's ref carries its device: (device << DEFAULT_STREAM_DEVICE_SHIFT) | LEGACY or
# PER_THREAD. Created streams are addresses, far above these.
DEFAULT_STREAM_REFS = 1 << 12


def default_stream_device(ref: int) -> int | None:
    """The device of a default stream's ref; None for a created stream's handle."""
    return ref >> DEFAULT_STREAM_DEVICE_SHIFT if 0 <= ref < DEFAULT_STREAM_REFS else None


NON_BLOCKING = 0x1
DISABLE_TIMING = 0x2


@dataclass
class StreamTimeline:
    """One stream's tail: the end of the last work submitted to it."""

    stream_id: int
    pid: int
    device: int
    handle: int
    flags: int = 0
    priority: int = 0
    tail_ns: int = 0
    name: str | None = None

    @property
    def blocking(self) -> bool:
        return self.handle != LEGACY and not self.flags & NON_BLOCKING


@dataclass
class EventState:
    """An event: its completion time once recorded (None before)."""

    flags: int = 0
    time_ns: int | None = None
    stream_id: int | None = None


@dataclass(frozen=True)
class Placement:
    """Where an operation landed on the device timeline."""

    stream_id: int
    start_ns: int
    end_ns: int


class DeviceModel:
    """Stream timelines, events and sync deadlines of every participant process."""

    def __init__(self, launch_latency_ns: int = 0) -> None:
        self.launch_latency_ns = launch_latency_ns
        self.streams: dict[tuple[int, int, int], StreamTimeline] = {}
        self.events: dict[tuple[int, int], EventState] = {}
        self._legacy: dict[tuple[int, int], StreamTimeline] = {}
        self._blocking_tail: dict[tuple[int, int], int] = {}
        self._all_tail: dict[tuple[int, int], int] = {}
        self._next_stream_id = 0
        self.new_streams: list[StreamTimeline] = []

    # ---- streams ---------------------------------------------------------------------------

    def _new_stream(
        self, pid: int, device: int, handle: int, flags: int, priority: int
    ) -> StreamTimeline:
        s = StreamTimeline(self._next_stream_id, pid, device, handle, flags, priority)
        self._next_stream_id += 1
        self.new_streams.append(s)
        return s

    def create_stream(
        self, pid: int, handle: int, flags: int, priority: int, device: int
    ) -> StreamTimeline:
        s = self._new_stream(pid, device, handle, flags, priority)
        self.streams[(pid, handle, 0)] = s
        return s

    def destroy_stream(self, pid: int, handle: int) -> None:
        self.streams.pop((pid, handle, 0), None)

    def stream(self, pid: int, ref: int, thread: int, device: int = 0) -> StreamTimeline:
        """The stream a program means by `ref` (a device's legacy or per-thread default stream,
        else a created stream's handle)."""
        handle = ref
        on_device = default_stream_device(ref)
        if on_device is not None:
            device, handle = on_device, ref & ((1 << DEFAULT_STREAM_DEVICE_SHIFT) - 1)
        if handle == LEGACY:
            key = (pid, device)
            s = self._legacy.get(key)
            if s is None:
                s = self._legacy[key] = self._new_stream(pid, device, LEGACY, 0, 0)
            return s
        k = (pid, ref, thread if handle == PER_THREAD else 0)
        s = self.streams.get(k)
        if s is None:  # per-thread default stream, or a handle we never saw created
            s = self.streams[k] = self._new_stream(pid, device, handle, 0, 0)
        return s

    def stream_floor_ns(self, s: StreamTimeline) -> int:
        """Earliest start of the next operation on s (its tail and default-stream rules)."""
        return self._floor(s)

    def advance(self, s: StreamTimeline, end: int) -> None:
        """Work on s ends at `end` (used by vectorised placement of a run of launches)."""
        self._advance(s, end)

    def _floor(self, s: StreamTimeline) -> int:
        key = (s.pid, s.device)
        if s.handle == LEGACY:
            return max(s.tail_ns, self._blocking_tail.get(key, 0))
        if s.blocking:
            legacy = self._legacy.get(key)
            return max(s.tail_ns, legacy.tail_ns if legacy else 0)
        return s.tail_ns

    def _advance(self, s: StreamTimeline, end: int) -> None:
        s.tail_ns = max(s.tail_ns, end)
        key = (s.pid, s.device)
        if s.blocking:
            self._blocking_tail[key] = max(self._blocking_tail.get(key, 0), end)
        self._all_tail[key] = max(self._all_tail.get(key, 0), end)

    def graph_lane(self, s: StreamTimeline, lane: int) -> StreamTimeline:
        """The stream that runs branch `lane` (>= 1) of graphs launched on s (lane 0 is s)."""
        key = (s.pid, -s.stream_id - 1, lane)
        lane_s = self.streams.get(key)
        if lane_s is None:
            lane_s = self.streams[key] = self._new_stream(
                s.pid, s.device, s.handle, NON_BLOCKING, 0
            )
            lane_s.name = f"graph branch {lane} of stream {s.stream_id}"
        return lane_s

    # ---- work ------------------------------------------------------------------------------

    def submit(self, s: StreamTimeline, host_ns: int, duration_ns: int) -> Placement:
        """Place a kernel, copy or memset submitted at host time host_ns."""
        start = max(host_ns + self.launch_latency_ns, self._floor(s))
        end = start + max(int(duration_ns), 0)
        self._advance(s, end)
        return Placement(s.stream_id, start, end)

    def place_at(
        self, s: StreamTimeline, lane: StreamTimeline, start_ns: int, duration_ns: int
    ) -> Placement:
        """Place a graph node on `lane` at start_ns; its end also ends s's work (the launch
        stream waits for the whole graph)."""
        start = max(start_ns, lane.tail_ns) if lane is not s else start_ns
        end = start + max(int(duration_ns), 0)
        if lane is not s:
            lane.tail_ns = max(lane.tail_ns, end)
        self._advance(s, end)
        return Placement(lane.stream_id, start, end)

    def create_event(self, pid: int, event: int, flags: int) -> None:
        self.events[(pid, event)] = EventState(flags)

    def record_event(self, pid: int, event: int, s: StreamTimeline, host_ns: int) -> int:
        t = max(host_ns, self._floor(s))
        self._advance(s, t)
        ev = self.events.setdefault((pid, event), EventState())
        ev.time_ns, ev.stream_id = t, s.stream_id
        return t

    def record_event_at(self, pid: int, event: int, at_ns: int, stream_id: int) -> None:
        """The event fires at at_ns (an event record node of a graph launch)."""
        ev = self.events.setdefault((pid, event), EventState())
        ev.time_ns, ev.stream_id = at_ns, stream_id

    def wait_event(self, pid: int, s: StreamTimeline, event: int) -> None:
        ev = self.events.get((pid, event))
        if ev is not None and ev.time_ns is not None:
            self._advance(s, ev.time_ns)

    # ---- deadlines and queries -------------------------------------------------------------

    def stream_done_ns(self, s: StreamTimeline) -> int:
        return self._floor(s)

    def device_done_ns(self, pid: int, device: int) -> int:
        return self._all_tail.get((pid, device), 0)

    def event_time_ns(self, pid: int, event: int) -> int | None:
        ev = self.events.get((pid, event))
        return ev.time_ns if ev is not None else None

    def elapsed_ns(self, pid: int, start: int, end: int, now_ns: int) -> tuple[int, int]:
        """(cudaError, ns) of cudaEventElapsedTime at virtual time now_ns."""
        a, b = self.events.get((pid, start)), self.events.get((pid, end))
        if a is None or b is None or (a.flags | b.flags) & DISABLE_TIMING:
            return 400, 0
        if a.time_ns is None or b.time_ns is None:
            return 400, 0
        if max(a.time_ns, b.time_ns) > now_ns:
            return 600, 0
        return 0, b.time_ns - a.time_ns

    def reset_process(self, pid: int) -> None:
        """cudaDeviceReset: forget the process's streams and events."""
        self.streams = {k: v for k, v in self.streams.items() if k[0] != pid}
        self.events = {k: v for k, v in self.events.items() if k[0] != pid}
