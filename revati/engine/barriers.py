"""NCCL operations as causality barriers (docs/design.md §3).

Every member of an operation records its arrival (REC_COLLECTIVE); its arrival time on the
device is `max(host time + launch latency, its stream's floor)`. Members of a collective are
matched by order: the k-th collective a rank issues on a communicator meets the k-th of every
other rank; a send and a receive meet as the k-th send from `src` to `dst` and the k-th
receive at `dst` from `src` (a two-member barrier). Once every member arrived the barrier is
released at the last arrival (the straggler's) and ends on every member's stream at
`release + duration`, the duration predicted by the collective model for its size and world
size. The thread that issued the operations waits (SYNC_BARRIER) with no deadline until then,
and resumes once its operations' members have all called, so no later work of that thread is
placed before the barrier is known. A member that dies fails every pending barrier of its
communicators: the waits end with ncclRemoteError and the trace names the dead rank. A
member that is a group barrier node of a graph launch arrives where the node's dependencies
end, and its end lands on the launch (`graph_barriers.BarrierNode`).

With several nodes (`--nodes M`, `--devices N` each), member rank r (RANK from its process's
environment when it sets one, else its rank in the communicator) is on node r // N, and a
barrier whose members span nodes is predicted on the network topology ("dgx/<k>pernode").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from revati import shim
from revati.engine.device_model import DeviceModel, StreamTimeline
from revati.engine.durations import DurationModel
from revati.engine.graph_barriers import BarrierNode
from revati.engine.trace_sink import TraceSink
from revati.predict import OpBatch, Predictor
from revati.predict.models.collective import topology_of

NCCL_REMOTE_ERROR = 6
NO_PEER = 0xFFFF
# communicator ids with this bit are groups of processes meeting in a kernel over IPC buffers
# (revati/native/ipc_barrier.c), not NCCL's
IPC_GROUP_BIT = 1 << 63
# The collective model's names (revati.predict.models.collective) of each operation.
_MODEL_NAMES = {"send": "sendrecv", "recv": "sendrecv"}
_UNTIMED = ("init", "split")


@dataclass
class Arrival:
    """One member's arrival at a barrier."""

    rank: int
    pid: int
    stream: StreamTimeline | None
    host_ns: int
    arrival_ns: int
    call_id: int
    node: BarrierNode | None = None  # a group barrier node of a graph launch


@dataclass
class BarrierWait:
    """One thread's SYNC_BARRIER: resolved once none of its barriers is pending."""

    resolution: Any  # ingest.Resolution, whose deadline this sets
    at_ns: int
    pending: int = 0
    failed: bool = False


@dataclass
class Barrier:
    comm: int
    collective: str
    nbytes: int
    world_size: int
    needed: int
    arrivals: dict[int, Arrival] = field(default_factory=dict)
    waits: list[BarrierWait] = field(default_factory=list)
    done: bool = False
    failed_rank: int | None = None


@dataclass
class Communicator:
    comm: int
    nranks: int
    members: dict[int, int] = field(default_factory=dict)  # rank -> pid
    seq: dict[tuple[Any, ...], int] = field(default_factory=dict)
    dead_rank: int | None = None


def unpack_members(packed: int) -> tuple[int, int, int, int, int]:
    """(rank, nranks, peer or -1, dtype, reduction op) of REC_COLLECTIVE's fourth word."""
    peer = (packed >> 32) & 0xFFFF
    return (
        packed & 0xFFFF,
        (packed >> 16) & 0xFFFF,
        -1 if peer == NO_PEER else peer,
        (packed >> 48) & 0xFF,
        (packed >> 56) & 0xFF,
    )


def collective_duration(
    predictor: Predictor, collective: str, nbytes: int, members: int, topology: str = ""
) -> tuple[int, str]:
    """(duration ns, model) of one operation: `collective` as barriers name it, its bytes, how
    many members meet (2 for a send/recv pair), and the topology it spans ("" within a node)."""
    name = _MODEL_NAMES.get(collective, collective)
    batch = OpBatch.from_columns(
        1,
        kind=np.array(["collective"], dtype=object),
        name=np.array([f"nccl:{name}"], dtype=object),
        collective=np.array([name], dtype=object),
        world_size=np.array([members], dtype=np.int64),
        bytes=np.array([nbytes], dtype=np.int64),
        topology=np.array([topology], dtype=object),
    )
    try:
        pred = predictor.predict(batch)
    except (ValueError, IndexError, KeyError):  # a predictor bug must not stop the run
        return 10_000, "revati-fallback:constant"
    model = str(pred.model[0]) + (f" {topology}" if topology else "")
    return max(int(pred.duration_ns[0]), 1), model


class BarrierBook:
    """Pending and released barriers of every communicator of the run."""

    def __init__(self, sink: TraceSink, model: DeviceModel, durations: DurationModel) -> None:
        self.sink = sink
        self.model = model
        self.durations = durations
        self.comms: dict[int, Communicator] = {}
        self.pending: dict[tuple[Any, ...], Barrier] = {}
        self.open: dict[tuple[Any, ...], list[Barrier]] = {}  # (process key, thread) -> arrivals
        self.released = 0
        self.virtual_end_ns = 0
        self._durations: dict[tuple[str, int, int, str], tuple[int, str]] = {}
        # (process key, thread) -> the api_calls row of its last arrival, not yet written
        self.held_calls: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._failed_ids: dict[tuple[Any, ...], int] = {}  # failed barrier key -> barrier_id
        self.nodes = 1
        self.per_node = 1
        self._env_rank: Callable[[int], int | None] = lambda pid: None

    def place_nodes(self, nodes: int, per_node: int, env_rank: Callable[[int], int | None]) -> None:
        """`nodes` nodes of `per_node` GPUs; `env_rank(pid)`: the RANK a process was given."""
        self.nodes, self.per_node, self._env_rank = nodes, max(per_node, 1), env_rank

    def topology(self, b: Barrier) -> str:
        """ "" on one node (the profile's topology), else how b's members sit on the nodes."""
        if self.nodes <= 1:
            return ""
        ranks = (self._env_rank(a.pid) for a in b.arrivals.values())
        nodes = Counter(
            (r if r is not None else a.rank) // self.per_node
            for r, a in zip(ranks, b.arrivals.values(), strict=True)
        )
        return topology_of(list(nodes.values())) if len(nodes) > 1 else ""

    # ---- arrivals --------------------------------------------------------------------------

    def arrive(
        self,
        pkey: tuple[int, int],
        pid: int,
        r: dict[str, Any],
        call_id: int,
        node: BarrierNode | None = None,
    ) -> None:
        """A REC_COLLECTIVE record: one member arrives (`node`: as a node of a graph launch)."""
        rank, nranks, peer, _dtype, _op = unpack_members(int(r["d"]))
        kind = shim.COLL_KINDS.get(int(r["kind"]), "collective")
        comm = self.comms.get(int(r["a"]))
        if comm is None:
            comm = self.comms[int(r["a"])] = Communicator(int(r["a"]), nranks)
        if kind == "init":
            comm.members[rank] = pid
        key, needed = self._key(comm, kind, rank, peer)
        b = self.pending.get(key)
        if b is None:
            nbytes = 0 if kind == "init" else int(r["b"])
            name = "sendrecv" if kind in ("send", "recv") else kind
            b = self.pending[key] = Barrier(comm.comm, name, nbytes, nranks, needed)
        b.arrivals[rank] = self._arrival(comm, kind, rank, pid, r, call_id, node)
        self.open.setdefault((*pkey, int(r["thread"])), []).append(b)
        if comm.dead_rank is not None:
            self._fail(key, b, comm.dead_rank)
        elif len(b.arrivals) == b.needed:
            self._release(key, b)

    def _key(self, comm: Communicator, kind: str, rank: int, peer: int) -> tuple[tuple, int]:
        if kind in ("send", "recv"):
            src, dst = (rank, peer) if kind == "send" else (peer, rank)
            count_key: tuple[Any, ...] = (kind, src, dst)
            base: tuple[Any, ...] = ("p2p", src, dst)
            needed = 2
        else:
            count_key, base, needed = ("coll", rank), ("coll",), comm.nranks
        if kind == "init":
            return (comm.comm, "init"), needed
        seq = comm.seq.get(count_key, 0)
        comm.seq[count_key] = seq + 1
        return (comm.comm, *base, seq), needed

    def _arrival(
        self,
        comm: Communicator,
        kind: str,
        rank: int,
        pid: int,
        r: dict[str, Any],
        call_id: int,
        node: BarrierNode | None,
    ) -> Arrival:
        host = int(r["enter_ns"])
        if kind in _UNTIMED:
            return Arrival(rank, pid, None, host, host, call_id)
        if node is not None:  # where its dependencies end in the graph launch
            return Arrival(rank, pid, node.lane_stream, host, node.arrival_ns, call_id, node)
        # the stream as launches name it (launch records carry no device)
        s = self.model.stream(pid, int(r["c"]), int(r["thread"]))
        at = max(host + self.model.launch_latency_ns, self.model.stream_floor_ns(s))
        return Arrival(rank, pid, s, host, at, call_id)

    # ---- waits -----------------------------------------------------------------------------

    def wait(self, pkey: tuple[int, int], thread: int, at_ns: int, resolution: Any) -> str:
        """A SYNC_BARRIER record: `resolution` gets its deadline once the thread's barriers
        are released (now, if they already are). Returns what the wait is on."""
        mine = self.open.pop((*pkey, thread), [])
        w = BarrierWait(resolution, at_ns)
        for b in mine:
            if b.failed_rank is not None:
                w.failed = True
            elif not b.done:
                w.pending += 1
                b.waits.append(w)
        self._settle(w)
        names = sorted({b.collective for b in mine})
        return f"{'+'.join(names) or 'nothing'} ({len(mine)} op{'s' if len(mine) != 1 else ''})"

    @staticmethod
    def _settle(w: BarrierWait) -> None:
        if w.failed:
            w.resolution.result = NCCL_REMOTE_ERROR
        if w.pending == 0:
            w.resolution.deadline_ns = w.at_ns

    def _finish_waits(self, b: Barrier, failed: bool) -> None:
        for w in b.waits:
            w.pending -= 1
            w.failed |= failed
            self._settle(w)
        b.waits.clear()

    # ---- release and failure ---------------------------------------------------------------

    def _release(self, key: tuple[Any, ...], b: Barrier) -> None:
        del self.pending[key]
        b.done = True
        arrivals = sorted(b.arrivals.values(), key=lambda a: (a.arrival_ns, a.rank))
        release = arrivals[-1].arrival_ns
        duration, model = self._duration(b)
        end = release + duration
        straggler = arrivals[-1].rank if len(arrivals) > 1 else None
        bid = self._barrier_row(b, release, end, model, straggler)
        for a in arrivals:
            kernel_id = self._kernel(b, a, end, model) if a.stream is not None else None
            self._arrival_row(bid, a, kernel_id, release - a.arrival_ns)
        self.released += 1
        self.virtual_end_ns = max(self.virtual_end_ns, end)
        self._finish_waits(b, failed=False)

    def _barrier_row(
        self,
        b: Barrier,
        release: int | None,
        end: int | None,
        model: str | None,
        straggler: int | None,
    ) -> int:
        bid = self.sink.new_id("barrier")
        self.sink.add(
            "barriers",
            barrier_id=bid,
            collective=b.collective,
            communicator=f"{b.comm:#x}",
            bytes=b.nbytes,
            world_size=b.world_size,
            release_ns=release,
            end_ns=end,
            model=model,
            straggler_rank=straggler,
            failed_rank=b.failed_rank,
        )
        return bid

    def _duration(self, b: Barrier) -> tuple[int, str]:
        """Predicted once per (operation, size, members, topology): a predictor call costs ~1 ms."""
        if b.collective in _UNTIMED or b.nbytes <= 0:
            return 0, "revati:rendezvous"
        topology = self.topology(b)
        key = (b.collective, b.nbytes, b.needed, topology)
        known = self._durations.get(key)
        if known is None:
            known = self._durations[key] = self._predict(b, topology)
        return known

    def _predict(self, b: Barrier, topology: str) -> tuple[int, str]:
        return collective_duration(
            self.durations.predictor, b.collective, b.nbytes, b.needed, topology
        )

    def _kernel(self, b: Barrier, a: Arrival, end: int, model: str) -> int:
        s = a.stream
        assert s is not None
        if a.node is not None:
            a.node.land(self.model, end)
        else:
            self.model.advance(s, end)
        kernel_id = self.sink.new_id("kernel")
        self.sink.add(
            "kernels",
            kernel_id=kernel_id,
            call_id=a.call_id,
            device_id=s.device,
            stream_id=s.stream_id,
            launch_ns=a.host_ns,
            start_ns=a.arrival_ns,
            end_ns=end,
            duration_source="predicted",
            model=model,
            name=f"{'ipc_group' if b.comm & IPC_GROUP_BIT else 'ncclDevKernel'}_{b.collective}",
            bytes=b.nbytes,
            graph_id=a.node.graph_id if a.node is not None else None,
        )
        return kernel_id

    def _arrival_row(self, bid: int, a: Arrival, kernel_id: int | None, wait: int | None) -> None:
        self.sink.add(
            "barrier_arrivals",
            barrier_id=bid,
            rank=a.rank,
            pid=a.pid,
            stream_id=a.stream.stream_id if a.stream is not None else None,
            kernel_id=kernel_id,
            arrival_ns=a.arrival_ns,
            wait_ns=wait,
        )

    def rank_of(self, pid: int) -> int | None:
        """The rank of `pid` in the first communicator it joined, if it holds just one there."""
        for comm in self.comms.values():
            ranks = [rank for rank, p in comm.members.items() if p == pid]
            if ranks:
                return ranks[0] if len(ranks) == 1 else None
        return None

    def member_died(self, pid: int) -> None:
        """Process `pid` is gone: every communicator it was a member of fails."""
        for comm in self.comms.values():
            dead = next((rank for rank, p in comm.members.items() if p == pid), None)
            if dead is None or comm.dead_rank is not None:
                continue
            comm.dead_rank = dead
            for key, b in [(k, b) for k, b in self.pending.items() if b.comm == comm.comm]:
                self._fail(key, b, dead)

    def _fail(self, key: tuple[Any, ...], b: Barrier, dead_rank: int) -> None:
        self.pending.pop(key, None)
        if b.failed_rank is not None:
            return
        b.failed_rank = dead_rank
        # members that arrive after the failure join the same row
        bid = self._failed_ids.get(key)
        if bid is None:
            bid = self._failed_ids[key] = self._barrier_row(b, None, None, None, None)
        for a in sorted(b.arrivals.values(), key=lambda a: a.rank):
            self._arrival_row(bid, a, None, None)
        self._finish_waits(b, failed=True)
