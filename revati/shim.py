"""The one module that talks to the native shim: layouts of shim.h, the clock page, the rings.

Everything else in revati sees plain records: numpy structured arrays of ring records, names
from the names files, and `PageSnapshot`s of the clock page. The layouts below mirror
`revati/native/shim.h`; `PROTOCOL_VERSION` is checked against the compiled helper library.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from revati.errors import RevatiRunError
from revati.native import build
from revati.native.entry_table import fn_names

if TYPE_CHECKING:
    import numpy as np

PROTOCOL_VERSION = 11
PAGE_MAGIC = 0x52565443
RING_MAGIC = 0x52565452
MAX_DEVICES = 16
# a default stream's ref in a record: (node device << this) | 0 legacy or 2 per-thread
DEFAULT_STREAM_DEVICE_SHIFT = 8
RECORD_SIZE = 64
RING_HEADER_SIZE = 128

# struct revati_record, two views of the same 64 bytes (numpy dtypes RECORD_DTYPE and
# LAUNCH_DTYPE, built on first use: numpy is loaded with the first ring, after a run's program
# has started, not before)
RECORD_FIELDS = [
    ("commit", "<u4"),
    ("type", "u1"),
    ("kind", "u1"),
    ("fn", "<u2"),
    ("thread", "<u4"),
    ("result", "<i4"),
    ("enter_ns", "<i8"),
    ("exit_ns", "<i8"),
    ("a", "<u8"),
    ("b", "<u8"),
    ("c", "<u8"),
    ("d", "<u8"),
]
LAUNCH_FIELDS = [
    ("head", "V32"),
    ("kernel", "<u4"),
    ("grid_x", "<u4"),
    ("grid_y", "<u2"),
    ("grid_z", "<u2"),
    ("block_x", "<u2"),
    ("block_y", "<u2"),
    ("block_z", "<u2"),
    ("graph_flag", "<u2"),
    ("shared_mem", "<u4"),
    ("stream", "<u8"),
]
# struct revati_gemm_record: the shape of a library GEMM, before its REC_LAUNCH record
GEMM_FIELDS = [
    ("head", "V12"),
    ("m", "<u4"),
    ("stride_a", "<i8"),
    ("stride_b", "<i8"),
    ("n", "<u4"),
    ("k", "<u4"),
    ("batch", "<u4"),
    ("lda", "<u4"),
    ("ldb", "<u4"),
    ("ldc", "<u4"),
    ("a_type", "u1"),
    ("b_type", "u1"),
    ("c_type", "u1"),
    ("compute", "u1"),
    ("scale_type", "u1"),
    ("flags", "u1"),
    ("epilogue", "<u2"),
]


@cache
def _dtypes() -> tuple[np.dtype, np.dtype, np.dtype]:
    import numpy

    record, launch = numpy.dtype(RECORD_FIELDS), numpy.dtype(LAUNCH_FIELDS)
    gemm = numpy.dtype(GEMM_FIELDS)
    assert record.itemsize == launch.itemsize == gemm.itemsize == RECORD_SIZE
    return record, launch, gemm


def __getattr__(name: str) -> Any:
    if name in _TABLE_MAKERS:
        if name not in _TABLES:
            _TABLES[name] = _TABLE_MAKERS[name]()
        return _TABLES[name]
    if name == "RECORD_DTYPE":
        return _dtypes()[0]
    if name == "LAUNCH_DTYPE":
        return _dtypes()[1]
    if name == "GEMM_DTYPE":
        return _dtypes()[2]
    raise AttributeError(f"module 'revati.shim' has no attribute {name!r}")


# enum revati_record_type
REC_API, REC_LAUNCH, REC_COPY, REC_MEMSET, REC_ALLOC, REC_FREE = 1, 2, 3, 4, 5, 6
REC_STREAM_CREATE, REC_STREAM_DESTROY, REC_EVENT_RECORD, REC_STREAM_WAIT = 7, 8, 9, 10
REC_SYNC, REC_UNSUPPORTED, REC_THREAD, REC_GRAPH_LAUNCH, REC_QUERY = 11, 12, 13, 14, 15
REC_DEVICE_RESET, REC_HOST_FN, REC_EVENT_CREATE, REC_GRAPH_NODE, REC_GEMM = 16, 17, 18, 19, 20
# REC_GEMM kind bits (transposes in the low 4) and flags
REC_GEMM_F_LT, REC_GEMM_F_PTR_ARRAY = 0x10, 0x20
REC_GEMM_X_BIAS, REC_GEMM_X_FP8_SCALES, REC_GEMM_X_DEVICE_SCALARS, REC_GEMM_X_BETA = 1, 2, 4, 8
REC_COLLECTIVE = 21
# struct revati_args_record: kept argument bytes of a launch, before its REC_LAUNCH record;
# kind = the layout's id (revati/engine/kernel_layouts.py)
REC_KERNEL_ARGS = 22
ARGS_BYTES = 52

# enum revati_coll_kind -> barriers.collective
COLL_KINDS = {
    1: "init",
    2: "allreduce",
    3: "allgather",
    4: "reducescatter",
    5: "broadcast",
    6: "reduce",
    7: "send",
    8: "recv",
    9: "alltoall",
    10: "gather",
    11: "split",
}
COLL_INIT, COLL_SEND, COLL_RECV = 1, 7, 8

COPY_KIND_MASK, F_ASYNC, F_BACKED, F_GRAPH = 0x7, 0x10, 0x20, 0x40
F_HOST_START = 0x80  # REC_HOST_FN: the worker starts running it
# REC_GRAPH_LAUNCH.kind: a graph of kernels, copies and memsets sent before, no node records
REC_GRAPH_REPLAY = 0x1
ALLOC_DEVICE, ALLOC_HOST, ALLOC_MANAGED, ALLOC_FAILED = 0, 1, 2, 0x80
COPY_KINDS = ("HtoH", "HtoD", "DtoH", "DtoD", "DtoD")
ALLOC_KINDS = {ALLOC_DEVICE: "device", ALLOC_HOST: "host", ALLOC_MANAGED: "managed"}

# enum revati_sync_kind -> syncs.kind
SYNC_KINDS = {
    1: "stream",
    2: "event",
    3: "device",
    4: "copy",
    5: "sleep",
    6: "poll",
    7: "wait",
    8: "query",
    9: "barrier",
}
SYNC_STREAM, SYNC_EVENT, SYNC_DEVICE, SYNC_COPY, SYNC_SLEEP, SYNC_POLL, SYNC_WAIT, SYNC_QUERY = (
    range(1, 9)
)
SYNC_BARRIER = 9
QUERY_EVENT_ELAPSED, QUERY_EVENT, QUERY_STREAM = 1, 2, 3

# enum revati_msg_type and struct revati_msg
MSG_REGISTER, MSG_WAIT, MSG_WAKE, MSG_QUERY, MSG_ANSWER = 1, 2, 3, 4, 5
MSG_PREPARE, MSG_VETO, MSG_ACCEPT, MSG_LEFT = 6, 7, 8, 9
REG_INHERITED = 1
REG_BEFORE_EXEC = 2  # a vfork child, a copy of its parent until it execs
MSG = struct.Struct("<IiIIQqqqqiI")
assert MSG.size == 64


@dataclass(frozen=True)
class Message:
    """One socket message (struct revati_msg)."""

    type: int
    pid: int = 0
    serial: int = 0
    thread: int = 0
    ring: int = 0
    v: int = 0
    value: int = 0
    a: int = 0
    b: int = 0
    result: int = 0
    pad: int = 0

    def pack(self) -> bytes:
        return MSG.pack(
            self.type,
            self.pid,
            self.serial,
            self.thread,
            self.ring,
            self.v,
            self.value,
            self.a,
            self.b,
            self.result,
            self.pad,
        )

    @classmethod
    def unpack(cls, data: bytes) -> Message:
        return cls(*MSG.unpack(data))


def _value_names(macro: str) -> dict[int, str]:
    """The `X(value, name)` pairs of a list macro of shim.h."""
    text = (build.NATIVE / "shim.h").read_text()
    block = text.split(f"#define {macro}(X)", 1)[1].split("\n#", 1)[0]
    return {int(v): name for v, name in re.findall(r"X\((\d+), (\w+)\)", block)}


# Tables read from the native sources on first use (`__getattr__`): a run's start needs none.
_TABLES: dict[str, Any] = {}
_TABLE_MAKERS: dict[str, Callable[[], Any]] = {
    # record.fn -> function name: the fn column of entry_points.tsv, as the C enum is built from it
    "FN_NAMES": fn_names,
    "DATA_TYPES": lambda: _value_names("REVATI_DATA_TYPES"),  # cudaDataType_t -> "bf16", ...
    "EPILOGUES": lambda: _value_names("REVATI_EPILOGUES"),  # cublasLtEpilogue_t -> "gelu", ...
}


def shim_paths() -> tuple[Path, Path]:
    """(shim, helper library), built from the current sources if needed."""
    try:
        return build.ensure_built()
    except build.BuildError as e:
        raise RevatiRunError(f"cannot build the native shim: {str(e).splitlines()[-1]}") from e


PYTHON_HOOKS = build.NATIVE / "pyhooks"


def traced_env(
    shim_path: Path, env: dict[str, str], defaults: dict[str, str] | None = None
) -> dict[str, str]:
    """What a traced program's environment gets on top of `env`.

    The shim and the libraries that stand in for NVIDIA's driver and NVML by name are preloaded;
    Triton finds that driver (`TRITON_LIBCUDA_PATH`, the folder it links its launcher against);
    Python processes run revati's `sitecustomize`, which turns PyTorch's cuDNN off (see there);
    each of `defaults` is set unless `env` sets it.
    """
    preload = [str(shim_path), *map(str, build.facade_paths(shim_path))]
    if env.get("LD_PRELOAD"):
        preload.append(env["LD_PRELOAD"])
    python_path = [str(PYTHON_HOOKS)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    return {
        "LD_PRELOAD": ":".join(preload),
        "TRITON_LIBCUDA_PATH": str(shim_path.parent),
        "PYTHONPATH": ":".join(python_path),
        **{k: v for k, v in (defaults or {}).items() if k not in env},
    }


class PageSnapshotC(ctypes.Structure):
    """struct revati_page_snapshot (clock_page.h), filled by revati_page_snapshot."""

    _fields_ = [
        ("seq", ctypes.c_uint32),
        ("running", ctypes.c_int32),
        ("frozen", ctypes.c_uint32),
        ("stalled", ctypes.c_int32),
        ("generation", ctypes.c_uint64),
        ("waits_announced", ctypes.c_uint64),
        ("now_ns", ctypes.c_int64),
        ("flowed_ns", ctypes.c_int64),
        ("flowed_real_ns", ctypes.c_int64),
        ("dilation", ctypes.c_double),
        ("wake_wait_ns", ctypes.c_int64),
    ]


@dataclass(frozen=True)
class PageSnapshot:
    """A consistent read of the clock page."""

    seq: int
    running: int
    frozen: bool
    generation: int
    waits_announced: int
    now_ns: int
    stalled: int


def _helper() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(shim_paths()[1]))
    if lib.revati_protocol_version() != PROTOCOL_VERSION:
        raise RevatiRunError("the native helper speaks another protocol version; reinstall revati")
    vp = ctypes.c_void_p
    lib.revati_page_init.argtypes = [vp, ctypes.c_double, ctypes.c_int64]
    lib.revati_page_now.argtypes = [vp]
    lib.revati_page_now.restype = ctypes.c_int64
    lib.revati_page_snapshot.argtypes = [vp, ctypes.POINTER(PageSnapshotC)]
    lib.revati_page_adjust.argtypes = [vp, vp, ctypes.c_int32]
    lib.revati_page_unstall_dead.argtypes = [vp, vp]
    lib.revati_page_wake.argtypes = [
        vp,
        vp,
        ctypes.c_int64,
        ctypes.POINTER(ctypes.c_int64),
        ctypes.c_int,
    ]
    lib.revati_page_spinning.argtypes = [vp, vp, ctypes.c_int32]
    lib.revati_page_spinning.restype = None
    lib.revati_page_set_dilation.argtypes = [vp, ctypes.c_double]
    lib.revati_page_set_dilation.restype = None
    lib.revati_page_wake.restype = ctypes.c_int64
    lib.revati_page_try_jump.argtypes = [vp, ctypes.c_uint32, ctypes.c_int64]
    lib.revati_page_try_jump.restype = ctypes.c_int
    lib.revati_real_monotonic_ns.restype = ctypes.c_int64
    lib.revati_ring_running_real.argtypes = [vp]
    lib.revati_ring_running_real.restype = ctypes.c_int64
    lib.revati_relay_signal.argtypes = [ctypes.c_int, ctypes.c_int]
    return lib


def relay_signal(fd: int, signum: int) -> None:
    """Route `signum` to the pipe `fd` (write end, non-blocking) as {signo, si_code, si_pid}
    (three int32): the sender of a signal, which Python's handlers do not see."""
    if _helper().revati_relay_signal(fd, signum) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


SIGNAL_RELAY = struct.Struct("<iii")


# struct revati_clock_page (see shim.h), its fields up to device_count in order
PAGE_STRUCT = struct.Struct("<IIIIqqqiIQQdqqQII")
PAGE_FIELDS = (
    "magic", "version", "lock", "seq", "base_real", "base_virtual", "charge_ns", "running",
    "frozen", "generation", "waits_announced", "dilation", "epoch_realtime_ns",
    "proposal_target", "proposal_generation", "coordinator_pid", "device_count",
)  # fmt: skip
PAGE_OFF_COORDINATOR_PID = PAGE_STRUCT.size - 8  # then device_count
PAGE_OFF_EPOCH_MONO = PAGE_STRUCT.size
PAGE_OFF_STALLED = PAGE_OFF_EPOCH_MONO + 8
PAGE_OFF_MEM_CAPACITY = PAGE_OFF_STALLED + 8
PAGE_OFF_FLOWED = PAGE_OFF_MEM_CAPACITY + 2 * 8 * MAX_DEVICES  # after mem_capacity, mem_used
PAGE_SIZE = 4096  # the page file; struct revati_clock_page fits in it

# struct revati_ring_header: the coordinator reads these fields of a ring
RING_HEADER_START = struct.Struct("<IIII")  # magic, version, capacity, record_size at 0
RING_OFF_HEAD, RING_OFF_TAIL, RING_OFF_DROPPED, RING_OFF_PROC_RUNNING = 16, 24, 32, 40
RING_OFF_PROC_SPINNING, RING_OFF_RUNNING_REAL, RING_OFF_PROC_WAITS_ANNOUNCED = 52, 56, 64
RING_OFF_PROC_STALLED = 72


def coordinator_pid(page: Path) -> int | None:
    """The pid of the coordinator that created the clock page file `page` (None if unreadable)."""
    try:
        with open(page, "rb") as f:
            head = f.read(PAGE_STRUCT.size)
    except OSError:
        return None
    if len(head) < PAGE_STRUCT.size or struct.unpack_from("<I", head)[0] != PAGE_MAGIC:
        return None
    return int(struct.unpack_from("<I", head, PAGE_OFF_COORDINATOR_PID)[0])


class ClockPage:
    """The run's clock page, created by the coordinator (the owner of the file)."""

    def __init__(
        self,
        path: Path,
        *,
        dilation: float,
        epoch_realtime_ns: int,
        epoch_monotonic_ns: int,
        capacities: list[int],
    ) -> None:
        self._lib = _helper()
        with open(path, "w+b") as f:
            f.truncate(PAGE_SIZE)
            self._mm = mmap.mmap(f.fileno(), PAGE_SIZE)
        self._buf = (ctypes.c_char * PAGE_SIZE).from_buffer(self._mm)
        self.address = ctypes.addressof(self._buf)
        self._lib.revati_page_init(self.address, dilation, epoch_realtime_ns)
        struct.pack_into("<q", self._mm, PAGE_OFF_EPOCH_MONO, epoch_monotonic_ns)
        for i, cap in enumerate(capacities[:MAX_DEVICES]):
            struct.pack_into("<q", self._mm, PAGE_OFF_MEM_CAPACITY + 8 * i, cap)
        struct.pack_into("<II", self._mm, PAGE_OFF_COORDINATOR_PID, os.getpid(), len(capacities))

    def _read(self) -> PageSnapshotC:
        """All of the page's snapshot fields, read consistently (revati_page_snapshot)."""
        s = PageSnapshotC()
        self._lib.revati_page_snapshot(self.address, ctypes.byref(s))
        return s

    def snapshot(self) -> PageSnapshot:
        s = self._read()
        return PageSnapshot(
            s.seq, s.running, bool(s.frozen), s.generation, s.waits_announced, s.now_ns, s.stalled
        )

    def now(self) -> int:
        return int(self._lib.revati_page_now(self.address))

    def flowed(self) -> tuple[int, int]:
        """(virtual, real) ns the clock has flowed (unfrozen: some thread ran); the virtual is
        the real divided by the dilation of the time."""
        s = self._read()
        return int(s.flowed_ns), int(s.flowed_real_ns)

    def wake_wait_ns(self) -> int:
        """What woken threads waited for a CPU before they ran, summed (the shim's count)."""
        return int(self._read().wake_wait_ns)

    @property
    def dilation(self) -> float:
        return float(self._read().dilation)

    def set_dilation(self, dilation: float) -> None:
        """Host time counts 1/dilation from now on (what flowed so far stays)."""
        self._lib.revati_page_set_dilation(self.address, dilation)

    def running_real_ns(self, ring: Ring) -> int:
        """Real ns `ring`'s process has held a share of `running` (kept the clock flowing)."""
        return int(self._lib.revati_ring_running_real(ring.header_address))

    def adjust(self, ring: Ring | None, delta: int) -> None:
        """Change `running` by delta on behalf of a thread of `ring`'s process."""
        self._lib.revati_page_adjust(self.address, ring.header_address if ring else None, delta)

    def take_back_spinning(self, ring: Ring, share: int) -> None:
        """A dead process's share of `spinning` (its threads spun when it died)."""
        self._lib.revati_page_spinning(self.address, ring.header_address, -share)

    def take_back_stalled(self, ring: Ring) -> None:
        """A dead process's share of `stalled` (it died moving bytes or waiting for ring room)."""
        self._lib.revati_page_unstall_dead(self.address, ring.header_address)

    def wake(
        self, ring: Ring | None, not_before_ns: int, spinner: bool = False
    ) -> tuple[int, int] | None:
        """Count a woken thread of `ring`'s process as running again (and a spin waiter as
        spinning) if virtual time has reached `not_before_ns`: (the time it resumes at, the page
        sequence number to send it, or 0: it re-bases the clock if nothing changed since). None
        if the time has not come: a woken thread re-based the clock since the caller looked."""
        resume = ctypes.c_int64(0)
        header = ring.header_address if ring else None
        seq = int(
            self._lib.revati_page_wake(
                self.address, header, not_before_ns, ctypes.byref(resume), int(spinner)
            )
        )
        return None if seq < 0 else (resume.value, seq)

    def try_jump(self, expected_seq: int, target_ns: int) -> bool:
        return bool(self._lib.revati_page_try_jump(self.address, expected_seq, target_ns))

    def real_monotonic_ns(self) -> int:
        return int(self._lib.revati_real_monotonic_ns())


class Ring:
    """A participant process's ring, read by the coordinator (single consumer)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, "r+b") as f:
            self._mm = mmap.mmap(f.fileno(), 0)
        self._hdr_buf = (ctypes.c_char * RING_HEADER_SIZE).from_buffer(self._mm)
        self.header_address = ctypes.addressof(self._hdr_buf)
        magic, _version, self.capacity, record_size = RING_HEADER_START.unpack_from(self._mm, 0)
        if magic != RING_MAGIC or record_size != RECORD_SIZE:
            raise RevatiRunError(f"{path}: not a revati ring of this protocol version")

    @cached_property
    def _u64(self) -> np.ndarray:  # numpy views on first use: registering needs none
        import numpy as np

        return np.frombuffer(self._mm, dtype="<u8", count=RING_HEADER_SIZE // 8)

    @cached_property
    def _i32(self) -> np.ndarray:
        import numpy as np

        return np.frombuffer(self._mm, dtype="<i4", count=RING_HEADER_SIZE // 4)

    @cached_property
    def _records(self) -> np.ndarray:
        import numpy as np

        return np.frombuffer(
            self._mm, dtype=_dtypes()[0], offset=RING_HEADER_SIZE, count=self.capacity
        )

    @property
    def head(self) -> int:
        return int(self._u64[RING_OFF_HEAD // 8])

    @property
    def tail(self) -> int:
        return int(self._u64[RING_OFF_TAIL // 8])

    @property
    def dropped(self) -> int:
        return int(self._u64[RING_OFF_DROPPED // 8])

    @property
    def proc_running(self) -> int:
        return int(self._i32[RING_OFF_PROC_RUNNING // 4])

    @property
    def proc_spinning(self) -> int:
        return int(self._i32[RING_OFF_PROC_SPINNING // 4])

    @property
    def proc_stalled(self) -> int:
        return int(self._i32[RING_OFF_PROC_STALLED // 4])

    @property
    def proc_waits_announced(self) -> int:
        """Blocking entries this process announced (each sends the coordinator a WAIT)."""
        return int(self._u64[RING_OFF_PROC_WAITS_ANNOUNCED // 8])

    def drain(self, limit: int = 1 << 16) -> tuple[int, np.ndarray]:
        """Committed records from the tail on (a copy); returns (index of the first, records)."""
        import numpy as np

        tail, head = self.tail, self.head
        n = min(head - tail, limit)
        if n <= 0:
            return tail, self._records[:0].copy()
        start = tail % self.capacity
        first = min(n, self.capacity - start)
        if first == n:
            out = self._records[start : start + n].copy()
        else:
            out = np.concatenate([self._records[start : start + first], self._records[: n - first]])
        expected = ((np.arange(tail, tail + n, dtype=np.uint64) + 1) & 0xFFFFFFFF).astype(np.uint32)
        bad = np.flatnonzero(out["commit"] != expected)
        if len(bad):
            out = out[: bad[0]]
        self._u64[RING_OFF_TAIL // 8] = tail + len(out)
        return tail, out


def launch_view(records: np.ndarray) -> np.ndarray:
    """The launch fields of REC_LAUNCH records."""
    return records.view(_dtypes()[1])


def gemm_view(records: np.ndarray) -> np.ndarray:
    """The shape fields of REC_GEMM records."""
    return records.view(_dtypes()[2])


class NamesFile:
    """Incremental reader of a process's names file (kernel, thread, unsupported-call names).

    A forked child's file starts with an `I` line: names with ids below its limits were
    registered before the fork (a library loaded by the parent) and are in the parent's file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self.kernels: dict[int, str] = {}
        self.threads: dict[int, tuple[int, str]] = {}
        self.unsupported: dict[int, tuple[str, str]] = {}
        self.process: tuple[int, list[str]] | None = None
        self.parent: NamesFile | None = None
        self._inherited = (0, 0)  # (kernel ids, unsupported ids) below which the parent names

    def kernel(self, kernel_id: int) -> str | None:
        """A kernel's registered name, this process's or, from before a fork, its parent's."""
        name = self.kernels.get(kernel_id)
        if name is None:
            self.refresh()
            name = self.kernels.get(kernel_id)
        if name is None and self.parent is not None and kernel_id < self._inherited[0]:
            name = self.parent.kernel(kernel_id)
        return name

    def unsupported_call(self, call_id: int) -> tuple[str, str] | None:
        """(function, library) of an unsupported-call id, looked up like `kernel`."""
        found = self.unsupported.get(call_id)
        if found is None and self.parent is not None and call_id < self._inherited[1]:
            self.parent.refresh()
            found = self.parent.unsupported_call(call_id)
        return found

    def refresh(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for raw in lines:
            self._parse(raw.decode("utf-8", "replace").split("\t"))

    def _parse(self, cols: list[str]) -> None:
        tag = cols[0]
        if tag == "K" and len(cols) >= 3:
            self.kernels[int(cols[1])] = cols[2]
        elif tag == "T" and len(cols) >= 4:
            self.threads[int(cols[1])] = (int(cols[2]), cols[3])
        elif tag == "U" and len(cols) >= 4:
            self.unsupported[int(cols[1])] = (cols[2], cols[3])
        elif tag == "P" and len(cols) >= 3:
            argv = [a for a in cols[2].split("\x1f") if a]
            self.process = (int(cols[1]), argv)
        elif tag == "I" and len(cols) >= 5:
            self.parent = NamesFile(self.path.with_name(f"names-{cols[1]}-{cols[2]}.txt"))
            self._inherited = (int(cols[3]), int(cols[4]))
