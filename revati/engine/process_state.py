"""What the engine keeps per participant image (one ring), and kernel names."""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from revati import shim

if TYPE_CHECKING:  # not imported here: a process registers before numpy is loaded
    from revati.engine.graph_barriers import SegmentedReplay, SegmentedTemplate
    from revati.engine.graph_replay import GraphRun, GraphTemplate


@lru_cache(maxsize=1)
def _cxa_demangle() -> Any:
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("stdc++") or "libstdc++.so.6")
    except OSError:
        return None
    fn = lib.__cxa_demangle
    fn.restype = ctypes.c_void_p
    fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    return fn


def demangle(name: str) -> str:
    """The C++ name of a mangled kernel name (itself if it is not mangled)."""
    fn = _cxa_demangle()
    if fn is None or not name.startswith("_Z"):
        return name
    status = ctypes.c_int(0)
    ptr = fn(name.encode(), None, None, ctypes.byref(status))
    if status.value != 0 or not ptr:
        return name
    out = ctypes.string_at(ptr).decode("utf-8", "replace")
    ctypes.CDLL(None).free(ctypes.c_void_p(ptr))
    return out


@dataclass
class ProcessState:
    """What the ingest keeps per participant image (one ring)."""

    pid: int
    key: tuple[int, int]
    names: shim.NamesFile
    thread_ids: dict[int, int] = field(default_factory=dict)
    thread_seq: dict[int, int] = field(default_factory=dict)
    last_op_end: dict[int, int] = field(default_factory=dict)
    graph_of_thread: dict[int, int] = field(default_factory=dict)
    graph_runs: dict[int, GraphRun] = field(default_factory=dict)
    graph_templates: dict[tuple[int, int], GraphTemplate | SegmentedTemplate] = field(
        default_factory=dict
    )
    segment_replays: dict[int, SegmentedReplay] = field(default_factory=dict)  # by thread
    kernel_names: dict[int, str] = field(default_factory=dict)
    allocs: dict[int, dict[str, Any]] = field(default_factory=dict)
    pending_call: dict[int, dict[str, Any]] = field(default_factory=dict)
    pending_shape: dict[int, bytes] = field(default_factory=dict)  # a shape record, by thread
