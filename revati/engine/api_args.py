"""What `api_calls.args` says for the plain API records (REC_API) of the emulated families.

A plain record carries four 64-bit words (`a`..`d`); what they mean depends on the function
(revati/native/stream_attr.c, mempool.c, mempool_ipc.c write them). Functions not listed here
get no summary.
"""

from __future__ import annotations

from collections.abc import Callable

Words = tuple[int, int, int, int]

STREAM_ATTRIBUTES = {
    1: "access_policy_window",
    3: "synchronization_policy",
    8: "priority",
    9: "mem_sync_domain_map",
    10: "mem_sync_domain",
    16: "nvlink_util_centric_scheduling",
}
ACCESS_PROPERTIES = ("normal", "streaming", "persisting")
SYNC_POLICIES = {1: "auto", 2: "spin", 3: "yield", 4: "blocking_sync"}
POOL_ATTRIBUTES = {
    1: "reuse_follow_event_dependencies",
    2: "reuse_allow_opportunistic",
    3: "reuse_allow_internal_dependencies",
    4: "release_threshold",
    5: "reserved_mem_current",
    6: "reserved_mem_high",
    7: "used_mem_current",
    8: "used_mem_high",
}
ACCESS_FLAGS = {0: "none", 1: "read", 3: "read_write"}


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _stream(ref: int) -> str:
    return {0: "legacy", 2: "per_thread"}.get(ref, hex(ref))


def _name(table: dict[int, str], key: int) -> str:
    return table.get(key, str(key))


def _stream_attribute(w: Words) -> str:
    ref, attr, c, d = w
    head = f"stream={_stream(ref)} attr={_name(STREAM_ATTRIBUTES, attr)}"
    if attr == 1:
        hit, miss = (d >> 56) & 0xF, (d >> 60) & 0xF
        return (
            f"{head} base={c:#x} bytes={d & ((1 << 40) - 1)}"
            f" hit_ratio={((d >> 40) & 0xFFFF) / 1000:g}"
            f" hit={_name(dict(enumerate(ACCESS_PROPERTIES)), hit)}"
            f" miss={_name(dict(enumerate(ACCESS_PROPERTIES)), miss)}"
        )
    if attr == 3:
        return f"{head} value={_name(SYNC_POLICIES, c)}"
    if attr == 9:
        return f"{head} default={c} remote={d}"
    return f"{head} value={_signed(c)}"


def _pool_attribute(w: Words) -> str:
    return f"pool={w[0]} attr={_name(POOL_ATTRIBUTES, w[1])} value={w[2]}"


NODE_TYPES = (
    "kernel",
    "memcpy",
    "memset",
    "host",
    "graph",
    "empty",
    "wait_event",
    "event_record",
    "ext_semaphore_signal",
    "ext_semaphore_wait",
    "mem_alloc",
    "mem_free",
    "batch_mem_op",
    "conditional",
)
CONDITIONAL_TYPES = ("if", "while", "switch")


def _add_node(w: Words) -> str:
    head = f"type={_name(dict(enumerate(NODE_TYPES)), w[0])}"
    if w[0] in (10, 11) and w[1]:  # memory nodes: the address (and size) of the allocation
        return f"{head} ptr={w[1]:#x}" + (f" bytes={w[2]}" if w[0] == 10 else "")
    if w[0] != 13 or not w[1] >> 8:  # a conditional node that was not made has no decision
        return head
    kind, bodies, chosen = w[1] & 0xFF, w[1] >> 8, _signed(w[3])
    runs = "none" if chosen < 0 else f"body {chosen}" + (" once" if kind == 1 else "")
    return (
        f"{head} cond={_name(dict(enumerate(CONDITIONAL_TYPES)), kind)} bodies={bodies}"
        f" handle={w[2] & 0xFFFFFFFF} value={w[2] >> 32} runs={runs}"
        " (device code does not run: the handle keeps its default value)"
    )


_FORMATS: dict[str, Callable[[Words], str]] = {
    "cudaGraphAddNode": _add_node,
    "cudaGraphConditionalHandleCreate": lambda w: f"handle={w[0]} default={w[1]} flags={w[2]}",
    "cudaGraphAddMemAllocNode": lambda w: f"ptr={w[0]:#x} bytes={w[1]} device={w[2]}",
    "cudaGraphAddMemFreeNode": lambda w: f"ptr={w[0]:#x}",
    "cudaDeviceGraphMemTrim": lambda w: f"device={w[0]} released={w[1]} reserved={w[2]}",
    "cudaIpcGetMemHandle": lambda w: f"ptr={w[0]:#x} bytes={w[1]}",
    "cudaIpcOpenMemHandle": lambda w: f"ptr={w[0]:#x} bytes={w[1]} exporter_pid={w[2]}",
    "cudaIpcCloseMemHandle": lambda w: f"ptr={w[0]:#x}",
    "cudaMallocAsync": lambda w: f"captured ptr={w[0]:#x} bytes={w[1]} device={w[2]}",
    "cudaFreeAsync": lambda w: f"captured ptr={w[0]:#x}",
    "cudaStreamSetAttribute": _stream_attribute,
    "cudaMemPoolCreate": lambda w: f"pool={w[0]} device={w[1]} max_size={w[2]} handle_types={w[3]}",
    "cudaMemPoolDestroy": lambda w: f"pool={w[0]}",
    "cudaMemPoolSetAttribute": _pool_attribute,
    "cudaMemPoolTrimTo": lambda w: f"pool={w[0]} keep={w[1]} released={w[2]} reserved={w[3]}",
    "cudaMemPoolSetAccess": lambda w: (
        f"pool={w[0]} count={w[1]} device={w[2]} flags={_name(ACCESS_FLAGS, w[3])}"
    ),
    "cudaDeviceSetMemPool": lambda w: f"device={w[0]} pool={w[1]}",
    "cudaMemPoolExportToShareableHandle": lambda w: f"pool={w[0]} fd={_signed(w[1])}",
    "cudaMemPoolImportFromShareableHandle": lambda w: (
        f"pool={w[0]} exporter_pool={w[1]} exporter_pid={w[2]}"
    ),
    "cudaMemPoolExportPointer": lambda w: f"pool={w[0]} ptr={w[1]:#x} bytes={w[2]}",
    "cudaMemPoolImportPointer": lambda w: (
        f"pool={w[0]} ptr={w[1]:#x} bytes={w[2]} exporter_ptr={w[3]:#x}"
    ),
}


def api_args(name: str, a: int, b: int, c: int, d: int) -> str | None:
    """The summary of a plain record of `name`, or None when the function has none."""
    fmt = _FORMATS.get(name)
    return fmt((int(a), int(b), int(c), int(d))) if fmt else None
