"""The coordinator: the run directory, the participants, deadlines and the two-phase jump.

It owns the clock page, accepts one registration connection per participant process and one
connection per thread that blocks, drains the rings, and decides when the clock jumps
(docs/time-model.md, "The jump protocol"): only while no participant thread runs (`running == 0`), nobody is stalled on a
full ring, every announced wait has arrived, and every waiter's deadline is known; then to the
earliest deadline, committed only if the clock page did not change meanwhile (its seqlock
sequence is the generation check). Threads are woken with their `running` share restored
first, so a woken thread resumes exactly at its deadline.
"""

from __future__ import annotations

import os
import select
import selectors
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from revati import shim
from revati.engine import kernel_layouts
from revati.engine.config import RecordConfig
from revati.engine.cpu_wait import CpuWait
from revati.engine.lifetimes import Lifetimes
from revati.engine.resolution import Resolution
from revati.predict.catalog import DeviceSpec

if TYPE_CHECKING:  # imported by `attach`, once the program is started
    from revati.engine.device_model import DeviceModel
    from revati.engine.durations import DurationModel
    from revati.engine.ingest import Ingest, ProcessState
    from revati.engine.trace_sink import TraceSink
    from revati.recorder.writer import TraceWriter

DROPPED = (1 << 64) - 1
FLUSH_EVERY_S = 0.25
# How often participant threads' CPU waits are sampled (and, with --cpu-wait discount, the
# clock's dilation set from them), and the largest share of host time discounted.
CPU_WAIT_EVERY_S = 0.05
MAX_DISCOUNT = 0.9
IDLE_TIMEOUT_S = 0.02
# While rings fill, look at them this often even without a message: a sync then finds most of
# what was launched before it already placed, and waits only for the rest. Only with cores to
# spare: on two cores that work would take CPU from the program's host phases, which count in
# virtual time, while done at the sync it costs none (the clock is frozen then).
BUSY_POLL_S = 0.002
SPARE_CORES = (os.cpu_count() or 1) > 2
# A wait shorter than this (a deadline the flowing clock reaches soon) is timed in µs, not in the
# whole ms epoll rounds up to: a thread woken late resumes late in virtual time.
PRECISE_WAIT_S = 0.005
PREPARE_TIMEOUT_S = 2.0
# A jump held this long (wall) while nobody runs is reported: something may never arrive.
HELD_WARN_S = 10.0


@dataclass
class Participant:
    """One process image taking part in the run (one ring, one names file)."""

    pid: int
    serial: int
    ring: shim.Ring
    state: ProcessState
    conn: socket.socket
    parent_pid: int
    argv: list[str]
    env: dict[str, str]
    started_ns: int
    closed: bool = False
    dead: bool = False
    waits_received: int = 0  # WAITs and QUERYs taken in (the ring header counts those announced)
    before_exec: bool = False  # a vfork child: its parent's copy until it execs


@dataclass
class Waiter:
    """A thread blocked in the shim, waiting for our answer."""

    conn: socket.socket
    proc: Participant
    msg: shim.Message
    resolution: Resolution | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def query(self) -> bool:
        return self.msg.type == shim.MSG_QUERY


def _proc_environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {
        k.decode(): v.decode("utf-8", "replace")
        for k, v in pairs
        if k in (b"RANK", b"LOCAL_RANK", b"WORLD_SIZE", b"CUDA_VISIBLE_DEVICES")
    }


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class Coordinator:
    """The single consumer of every ring and the single writer of the trace."""

    sink: TraceSink  # these three: set by `attach`
    model: DeviceModel
    ingest: Ingest

    def __init__(self, config: RecordConfig, run_dir: Path, spec: DeviceSpec) -> None:
        """What a participant needs to register: the clock page, config.txt and the socket.
        The engine itself (`attach`) is built while the program starts."""
        self.config = config
        self.run_dir = run_dir
        self.spec = spec
        self.wall_start = time.monotonic_ns()
        self.epoch_monotonic_ns = time.monotonic_ns()  # a participant's monotonic clock - V
        self.page = shim.ClockPage(
            run_dir / "clock.page",
            dilation=config.dilation,
            epoch_realtime_ns=time.time_ns(),
            epoch_monotonic_ns=self.epoch_monotonic_ns,
            capacities=[spec.memory_bytes] * config.device_count,
        )
        self._write_config()
        self.selector = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(str(run_dir / "coordinator.sock"))
        self.listener.listen(256)
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ, ("listener", None))
        self.procs: dict[tuple[int, int], Participant] = {}
        self.waiters: dict[socket.socket, Waiter] = {}
        self.jumps = 0
        self._held_since: float | None = None  # since when nobody runs but a jump is held
        self._held_warned = False
        self.syncs = 0
        self.lifetimes = Lifetimes()
        self.cpu_wait = CpuWait()  # sampled every CPU_WAIT_EVERY_S
        self._last_cpu_wait = time.monotonic()
        self._clock_samples: list[tuple[int, int, float, bool]] = []  # before attach
        # the page's sequence number right after the last wake that unfroze the clock: while
        # it is unchanged, the woken thread has yet to re-base (a dilation change would undo it)
        self._unfreezing_wake_seq = -1
        self._retry = False
        self._busy = False  # the last drain found records
        self._last_flush = time.monotonic()
        self._retired_before_attach: list[Participant] = []  # images that exec'd early

    def attach(self, durations: DurationModel, writer: TraceWriter) -> None:
        """The engine: device model, ingest and the trace sink (before the first `step`)."""
        from revati.engine.device_model import DeviceModel
        from revati.engine.ingest import Ingest
        from revati.engine.trace_sink import TraceSink

        self.sink = TraceSink(writer)
        self.model = DeviceModel(self.spec.launch_latency_ns)
        self.ingest = Ingest(self.sink, self.model, durations, self.spec.name)
        self.ingest.barriers.place_nodes(self.config.nodes, self.config.device_count, self._rank)
        self._write_devices()
        for p in self._retired_before_attach:  # their records wait in their rings
            self._drain_one(p)
            self.ingest.flush_allocations(p.state)
        self._retired_before_attach.clear()

    def _rank(self, pid: int) -> int | None:
        """The RANK the environment gave process `pid` (torchrun sets it), if any."""
        for p in self.procs.values():
            if p.pid == pid:
                return _int_or_none(p.env.get("RANK"))
        return None

    # ---- setup -----------------------------------------------------------------------------

    def _write_config(self) -> None:
        s, c = self.spec, self.config.host_costs
        lines = {
            "name": s.name,
            "device_count": self.config.device_count,
            "backed_max": self.config.backed_max,
            "graph_replay": int(self.config.graph_replay),
            "memory_bytes": s.memory_bytes,
            "sm_count": s.sm_count,
            "sm_clock_mhz": s.sm_clock_mhz,
            "mem_clock_mhz": s.mem_clock_mhz,
            "memory_bus_width_bits": s.memory_bus_width_bits,
            "cc_major": s.compute_capability[0],
            "cc_minor": s.compute_capability[1],
            "l2_bytes": s.l2_bytes,
            "shared_mem_per_block": s.shared_mem_per_block,
            "shared_mem_per_block_optin": s.shared_mem_per_block_optin,
            "shared_mem_per_sm": s.shared_mem_per_sm,
            "regs_per_block": s.regs_per_block,
            "regs_per_sm": s.regs_per_sm,
            "max_threads_per_block": s.max_threads_per_block,
            "max_threads_per_sm": s.max_threads_per_sm,
            "warp_size": s.warp_size,
            "max_blocks_per_sm": s.max_blocks_per_sm,
            "power_watts": s.power_watts,
            "nvlink_links": s.nvlink_links,
            "cost_launch_ns": c.launch_ns,
            "cost_copy_ns": c.copy_ns,
            "cost_event_ns": c.event_ns,
            "cost_sync_ns": c.sync_ns,
            "cost_alloc_ns": c.alloc_ns,
            "cost_other_ns": c.other_ns,
        }
        text = "".join(f"{k}={v}\n" for k, v in lines.items()) + kernel_layouts.config_lines()
        (self.run_dir / "config.txt").write_text(text)

    def _write_devices(self) -> None:
        for ordinal in range(self.config.device_count):
            self.sink.add(
                "devices",
                device_id=ordinal,
                pid=None,
                ordinal=ordinal,
                name=self.spec.name,
                model=self.spec.id,
                memory_bytes=self.spec.memory_bytes,
            )

    def child_env(self, shim_path: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.update(shim.traced_env(shim_path, env, self.config.program_defaults))
        env["REVATI_RUN_DIR"] = str(self.run_dir)
        env.pop("REVATI_COUNTED_PID", None)
        return env

    def watch_process(self, pid: int) -> None:
        """Follow `pid` until it ends (the loop wakes at once when it does): when, and how."""
        life = self.lifetimes.track(pid)
        if life is None:
            return
        if life.pidfd is not None:
            self.selector.register(life.pidfd, selectors.EVENT_READ, ("exit", pid))
        elif not _alive(pid):
            self._process_ended(pid)

    # ---- the loop --------------------------------------------------------------------------

    def step(self) -> None:
        """One iteration: messages, draining, deadlines, wakes and jumps; the rows of what was
        drained are built after the wakes, while the woken threads run."""
        self.receive(self._timeout())
        self.drain()
        self._resolve()
        self._schedule()
        self.ingest.write_later()
        self._reap()
        self.sample_cpu_wait()
        if time.monotonic() - self._last_flush > FLUSH_EVERY_S:
            self.flush()

    def receive(self, timeout: float) -> None:
        """Accept connections and take in messages (registrations, waits), waiting up to
        `timeout` s for the first. Alone (before `attach`), it lets processes register while
        the engine loads: their records wait in the rings, their waits in `waiters`."""
        if 0 < timeout < PRECISE_WAIT_S:  # epoll counts whole ms: wait with select's µs timer
            select.select([self.selector.fileno()], [], [], timeout)
            timeout = 0
        for key, _ in self.selector.select(timeout):
            kind, obj = key.data
            if kind == "listener":
                self._accept()
            elif kind == "conn":
                self._receive(key.fileobj, obj)  # type: ignore[arg-type]
            elif kind == "exit":
                self._process_ended(obj)

    def _timeout(self) -> float:
        idle = BUSY_POLL_S if self._busy else IDLE_TIMEOUT_S
        if self._retry or any(w.resolution is None for w in self.waiters.values()):
            self._retry = False
            return 0.0005
        deadlines = [
            w.resolution.deadline_ns
            for w in self.waiters.values()
            if w.resolution and w.resolution.deadline_ns is not None
        ]
        if deadlines:
            left = (min(deadlines) - self.page.now()) * self.page.dilation / 1e9
            return max(0.0, min(idle, left))
        return idle

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return
            self.selector.register(conn, selectors.EVENT_READ, ("conn", None))

    def _receive(self, conn: socket.socket, proc: Participant | None) -> None:
        try:
            data = conn.recv(shim.MSG.size)
        except OSError:
            data = b""
        if len(data) != shim.MSG.size:
            self._closed(conn, proc)
            return
        msg = shim.Message.unpack(data)
        if msg.type == shim.MSG_REGISTER:
            self._register(conn, msg)
        elif msg.type in (shim.MSG_WAIT, shim.MSG_QUERY):
            p = self.procs.get((msg.pid, msg.serial))
            if p is None:  # unknown process: answer at once rather than hang it
                conn.send(shim.Message(shim.MSG_WAKE, v=self.page.now()).pack())
                return
            p.waits_received += 1
            self.waiters[conn] = Waiter(conn, p, msg)
        elif msg.type in (shim.MSG_VETO, shim.MSG_ACCEPT):
            pass  # a late answer to a PREPARE that was already settled
        elif msg.type == shim.MSG_LEFT:
            w = self.waiters.get(conn)
            if w is not None:  # interrupted by a signal: resume now
                self._wake(w, result=4)

    def _closed(self, conn: socket.socket, proc: Participant | None) -> None:
        self.selector.unregister(conn)
        conn.close()
        w = self.waiters.pop(conn, None)
        if w is not None:  # the thread vanished while blocked: it no longer counts as waiting
            pass
        if proc is not None:
            proc.closed = True

    def _register(self, conn: socket.socket, msg: shim.Message) -> None:
        pid, serial = msg.pid, msg.serial
        ring = shim.Ring(self.run_dir / f"ring-{pid}-{serial}.bin")
        names = shim.NamesFile(self.run_dir / f"names-{pid}-{serial}.txt")
        names.refresh()
        parent, argv = names.process or (0, [])
        now = self.page.now()
        from revati.engine.process_state import ProcessState

        state = ProcessState(pid, (pid, serial), names)
        p = Participant(pid, serial, ring, state, conn, parent, argv, _proc_environ(pid), now,
                        before_exec=bool(msg.a & shim.REG_BEFORE_EXEC))  # fmt: skip
        for old in self.procs.values():
            if old.pid == pid and not old.dead:  # an exec: the old image's threads are gone
                self._retire(old)
                if msg.a & shim.REG_INHERITED:
                    self.page.adjust(None, +1)
        self.procs[(pid, serial)] = p
        self.watch_process(pid)
        self.selector.modify(conn, selectors.EVENT_READ, ("conn", p))
        conn.send(shim.Message(shim.MSG_ANSWER, pid=pid, serial=serial, v=now).pack())

    # ---- draining and resolving ------------------------------------------------------------

    def drain(self) -> None:
        drained = 0
        for p in list(self.procs.values()):
            if not p.dead:
                drained += self._drain_one(p)
        self._busy = drained > 0 and SPARE_CORES

    def _drain_one(self, p: Participant) -> int:
        """Ingest what `p`'s ring holds; returns how many records."""
        total = 0
        while True:
            first, records = p.ring.drain()
            total += len(records)
            if not len(records):
                return total
            self.ingest.ingest(p.state, first, records)
            if len(records) < (1 << 16):
                return total

    def _resolve(self) -> None:
        for w in list(self.waiters.values()):
            if w.resolution is not None:
                continue
            if w.msg.ring == DROPPED:
                w.resolution = Resolution(self.page.now(), kind="wait")
            else:
                w.resolution = self.ingest.resolutions.pop(
                    (w.proc.pid, w.proc.serial, w.msg.ring), None
                )

    # ---- waking and jumping ----------------------------------------------------------------

    @cached_property
    def _spin_wait_fn(self) -> int:
        """The fn of a spin waiter's WAIT (revati/native/spin_wait.c)."""
        return int(shim.FN_NAMES.index("sched_yield"))

    def _wake(self, w: Waiter, not_before_ns: int = 0, result: int = 0) -> bool:
        """Resume a blocked thread at the clock's present time, once that is `not_before_ns` or
        later. The page reads the time and counts the thread as running under one lock: a time
        read earlier could be taken back by a just-woken thread's re-base, leaving this thread
        ahead of the clock and a later jump past its deadline. False: not yet (ask again)."""
        waking = self.page.wake(w.proc.ring, not_before_ns, w.msg.pad == self._spin_wait_fn)
        if waking is None:
            return False
        v, seq = waking
        if seq:
            self._unfreezing_wake_seq = seq
        self.waiters.pop(w.conn, None)
        res = w.resolution or Resolution(v)
        reply = shim.MSG_ANSWER if w.query else shim.MSG_WAKE
        try:
            w.conn.send(
                shim.Message(reply, v=v, result=result or res.result, value=res.value, a=seq).pack()
            )
        except OSError:
            self.page.adjust(w.proc.ring, -1)
        if w.query or res.call is None:
            return True
        self.syncs += 1
        call = dict(res.call, exit_ns=v)
        self.sink.add("api_calls", **call)
        self.sink.add(
            "syncs",
            sync_id=self.sink.new_id("sync"),
            call_id=call["call_id"],
            thread_id=call["thread_id"],
            kind=res.kind,
            target=res.target,
            blocked_ns=call["enter_ns"],
            deadline_ns=res.deadline_ns,
            resumed_ns=v,
        )
        return True

    def _schedule(self) -> None:
        snap = self.page.snapshot()
        due = [
            (w, r.deadline_ns)
            for w in self.waiters.values()
            if (r := w.resolution) is not None
            and r.deadline_ns is not None
            and r.deadline_ns <= snap.now_ns
        ]
        for w, deadline in due:
            if not self._wake(w, deadline):
                self._retry = True  # the clock was re-based under us: look again
        if due or snap.running > 0:
            self._held_since = None
            return
        if held := self._jump_held(snap):
            self._warn_if_held_long(held)
            return
        self._held_since = None
        if not self.waiters or any(w.resolution is None for w in self.waiters.values()):
            return
        timed = [
            (w.resolution.deadline_ns, w)
            for w in self.waiters.values()
            if w.resolution is not None and w.resolution.deadline_ns is not None
        ]
        if not timed:
            return
        target, cause = min(timed, key=lambda pair: pair[0])
        if not self._prepare(target) or not self.page.try_jump(snap.seq, target):
            self._retry = True
            return
        self.jumps += 1
        res = cause.resolution
        self.sink.add(
            "jumps",
            jump_id=self.sink.new_id("jump"),
            generation=snap.generation + 1,
            from_ns=snap.now_ns,
            to_ns=target,
            cause_thread_id=res.call["thread_id"] if res and res.call else None,
            cause_kind=res.kind if res else None,
            cause_object=res.target if res else None,
            wall_ns=time.monotonic_ns() - self.wall_start,
        )
        for w in list(self.waiters.values()):
            r = w.resolution
            if r is None or r.deadline_ns is None or r.deadline_ns > target:
                continue
            if not self._wake(w, r.deadline_ns):
                self._retry = True  # not expected: the clock stands at `target`

    def _jump_held(self, snap: shim.PageSnapshot) -> str:
        """Why the clock may not jump although nobody runs ('' if it may): a thread is stalled,
        or a live process announced a wait that has not reached us yet. Announced waits are
        counted per process: one killed between announcing a wait and sending it never sends it
        (its stalls are taken back when it dies)."""
        if snap.stalled > 0:
            return f"{snap.stalled} stalled thread(s) (a full ring, or emulated bytes being moved)"
        late = [
            p.pid
            for p in self.procs.values()
            if not p.dead and p.ring.proc_waits_announced != p.waits_received
        ]
        return f"a wait announced by pid {', '.join(map(str, late))} to arrive" if late else ""

    def _warn_if_held_long(self, held: str) -> None:
        """Say so once if the clock has been held this way for HELD_WARN_S of wall time."""
        now = time.monotonic()
        if self._held_since is None:
            self._held_since, self._held_warned = now, False
        elif now - self._held_since > HELD_WARN_S and not self._held_warned:
            self._held_warned = True
            print(
                f"revati: warning: the clock has waited {now - self._held_since:.0f} s for {held};"
                " if the run never ends, Ctrl-C stops it and keeps the trace",
                file=sys.stderr,
            )

    def _prepare(self, target: int) -> bool:
        """Phase 1 of a jump: every thread waiting on fds checks them and may veto."""
        polls = [w for w in self.waiters.values() if w.resolution and w.resolution.kind == "poll"]
        proposal = shim.Message(shim.MSG_PREPARE, v=target).pack()
        agreed = True
        for w in polls:
            try:
                w.conn.send(proposal)
                w.conn.settimeout(PREPARE_TIMEOUT_S)
                reply = shim.Message.unpack(w.conn.recv(shim.MSG.size))
            except (OSError, ValueError, struct.error):
                reply = shim.Message(shim.MSG_VETO)
            finally:
                w.conn.settimeout(None)
            if reply.type != shim.MSG_ACCEPT:  # VETO, or LEFT sent before it saw the proposal
                agreed = False
                self._wake(w)
        return agreed

    # ---- processes leaving -----------------------------------------------------------------

    def _reap(self) -> None:
        for p in list(self.procs.values()):
            if p.closed and not p.dead and not _alive(p.pid):
                self._process_ended(p.pid)

    def _process_ended(self, pid: int) -> None:
        """`pid` has ended: note when and how, and retire what is left of it."""
        life = self.lifetimes.by_pid.get(pid)
        if life is not None and life.pidfd is not None and life.ended_ns is None:
            self.selector.unregister(life.pidfd)
        self.lifetimes.ended(pid, self.page.now(), time.monotonic_ns() - self.wall_start)
        for p in list(self.procs.values()):
            if p.pid == pid and not p.dead:
                self._retire(p)

    def _notice_ended(self) -> None:
        """At the end: processes whose end the loop has not handled yet."""
        for pid, life in list(self.lifetimes.by_pid.items()):
            gone = _readable(life.pidfd) if life.pidfd is not None else not _alive(pid)
            if life.ended_ns is None and gone:
                self._process_ended(pid)

    def _retire(self, p: Participant) -> None:
        """The image is gone (exit, kill or exec): take back its share of `running`. Before the
        engine is attached, its records stay in its ring until `attach` drains them."""
        attached = hasattr(self, "ingest")
        if attached:
            self._drain_one(p)
        else:
            self._retired_before_attach.append(p)
        p.dead = True
        share = p.ring.proc_running
        if share:
            self.page.adjust(p.ring, -share)
        if spinning := p.ring.proc_spinning:
            self.page.take_back_spinning(p.ring, spinning)
        if p.ring.proc_stalled:
            self.page.take_back_stalled(p.ring)
        for w in [w for w in self.waiters.values() if w.proc is p]:
            self.waiters.pop(w.conn, None)
        if attached:
            self.ingest.flush_allocations(p.state)
            self.ingest.barriers.member_died(p.pid)

    # ---- the end ---------------------------------------------------------------------------

    def sample_cpu_wait(self) -> None:
        """Every CPU_WAIT_EVERY_S (from the first registration on, the engine loaded or not): sum
        what participant threads waited for a CPU since the last sample; with `--cpu-wait
        discount`, host time counts the share of their demand that did not wait from now on:
        the clock's dilation is the run's (--dilation) over that share."""
        now = time.monotonic()
        if now - self._last_cpu_wait < CPU_WAIT_EVERY_S:
            return
        self._last_cpu_wait = now
        self._sample_clock()
        share = self.cpu_wait.sample(
            (p.pid for p in self.procs.values() if not p.dead), self.page.wake_wait_ns()
        )
        if share is None or self.config.cpu_wait != "discount":
            return
        if self.page.snapshot().seq == self._unfreezing_wake_seq:
            return  # a woken thread's re-base is pending: it would fail after a change (next time)
        self.page.set_dilation(self.config.dilation / (1.0 - min(share, MAX_DISCOUNT)))

    def _sample_clock(self) -> None:
        """One `clock_samples` row (kept until the engine is attached and writes them)."""
        snap = self.page.snapshot()
        wall = time.monotonic_ns() - self.wall_start
        self._clock_samples.append((wall, snap.now_ns, self.page.dilation, snap.frozen))
        if hasattr(self, "sink"):
            for wall_ns, virtual_ns, dilation, frozen in self._clock_samples:
                self.sink.add(
                    "clock_samples",
                    wall_ns=wall_ns,
                    virtual_ns=virtual_ns,
                    dilation=dilation,
                    frozen=frozen,
                )
            self._clock_samples.clear()

    def flush(self) -> None:
        self.ingest.write_later()
        for s in self.model.new_streams:
            self.sink.add(
                "streams",
                stream_id=s.stream_id,
                pid=s.pid,
                device_id=s.device,
                handle=s.handle,
                flags=s.flags,
                priority=s.priority,
                is_default=s.handle in (0, 2) and not s.name,
                name=s.name
                if s.name
                else "default"
                if s.handle == 0
                else "per-thread"
                if s.handle == 2
                else f"stream {s.stream_id}",
            )
        self.model.new_streams.clear()
        self.sink.flush()
        self._last_flush = time.monotonic()

    def running_wall_by_pid(self) -> dict[int, int]:
        """Wall ns each process held a share of `running` (kept the clock flowing), summed over
        its images (rings)."""
        out: dict[int, int] = {}
        for p in self.procs.values():
            out[p.pid] = out.get(p.pid, 0) + max(0, self.page.running_real_ns(p.ring))
        return out

    def finish(self) -> int:
        """Drain what is left, write the processes and return the virtual end time."""
        self._notice_ended()
        self.drain()
        self._sample_clock()
        self.lifetimes.settle()
        end = max(self.ingest.virtual_end_ns, self.ingest.barriers.virtual_end_ns, self.page.now())
        barriers = self.ingest.barriers
        running_wall = self.running_wall_by_pid()
        # a pid's row describes its last image, started when its first image did; a vfork
        # child's copy of its parent has none (its exec'd image has its own, if a participant)
        newest: dict[int, Participant] = {}
        started: dict[int, int] = {}
        for p in self.procs.values():
            self.ingest.flush_allocations(p.state)
            started.setdefault(p.pid, p.started_ns)
            if not p.before_exec:
                newest[p.pid] = p
        for p in newest.values():
            life = self.lifetimes.by_pid.get(p.pid)
            cause = life.cause if life else None
            self.sink.add(
                "processes",
                pid=p.pid,
                parent_pid=p.parent_pid,
                argv=p.argv,
                rank=_int_or_none(p.env.get("RANK"))
                if "RANK" in p.env
                else barriers.rank_of(p.pid),
                local_rank=_int_or_none(p.env.get("LOCAL_RANK")),
                world_size=_int_or_none(p.env.get("WORLD_SIZE")),
                host=os.uname().nodename,
                started_ns=started[p.pid],
                ended_ns=life.ended_ns if life else None,
                exit_status=cause.status if cause else None,
                exit_code=cause.code if cause else None,
                exit_signal=cause.signal if cause else None,
                core_dumped=cause.core_dumped if cause else None,
                ended_wall_ns=life.ended_wall_ns if life else None,
                running_wall_ns=running_wall.get(p.pid),
            )
        from revati.serving.request_log import request_tables  # numpy: not before the start

        for table, columns in request_tables(self.run_dir, self.epoch_monotonic_ns).items():
            self.sink.add_columns(table, columns)
        self.flush()
        self.sink.close()
        return end

    def close(self) -> None:
        self.cpu_wait.close()
        sink = getattr(self, "sink", None)  # None: closed before `attach`
        if sink is not None:
            self.ingest.write_later()  # the rows of the last batch, if `finish` did not run
            sink.close()
        for key in list(self.selector.get_map().values()):
            if isinstance(key.fileobj, socket.socket):
                key.fileobj.close()
        self.selector.close()
