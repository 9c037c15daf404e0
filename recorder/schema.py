"""The revati trace format: every table, its columns and the schema version, defined once.

A trace is one DuckDB file. Times are integer nanoseconds of *virtual* time since the start of
the run (`*_ns`), except `run.started_at` (wall-clock). Ids are assigned by the single writer
and are unique within a trace; `call_id` joins a kernel, copy, memset, allocation or sync to the
API call that caused it. `docs/trace-format.md` documents every column and shows example queries.

SCHEMA_VERSION bump rules:
- bump it for any change a reader of the previous version would misread: a renamed, removed or
  retyped column or table, or a changed unit or meaning;
- adding a nullable column at the end of a table or adding a table is backward compatible and
  does not bump the version, but is recorded in docs/trace-format.md's changelog;
- readers refuse a trace whose version differs from theirs with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 4
# Versions a reader of this build still opens: a v2 trace stores every kernel as a row of the
# table `kernels` (v3 stores graph replays as one row each, `kernels` is a view; v4 stores a
# replay's copies and memsets in it too, `copies` and `memsets` are views); see
# docs/trace-format.md, "Versioning".
READABLE_VERSIONS = (2, 3, 4)
TRACE_FORMAT = "revati-trace"
META_TABLE = "revati_meta"

# Values of run.source
SOURCE_EMULATED = "emulated"
SOURCE_REAL = "real"
SOURCE_IMPORTED = "imported"
SOURCE_REPLAYED = "replayed"  # re-simulated from another trace (`revati replay`)
SOURCES = (SOURCE_EMULATED, SOURCE_REAL, SOURCE_IMPORTED, SOURCE_REPLAYED)

# Values of kernels/copies/memsets.duration_source
DURATION_PREDICTED = "predicted"
DURATION_MEASURED = "measured"


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    doc: str

    def ddl(self) -> str:
        return f"{self.name} {self.sql_type}"


@dataclass(frozen=True)
class Table:
    name: str
    doc: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def ddl(self) -> str:
        cols = ",\n    ".join(c.ddl() for c in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n    {cols}\n)"


def _c(name: str, sql_type: str, doc: str) -> Column:
    return Column(name, sql_type, doc)


# Columns shared by every device-side operation (kernels, copies, memsets).
_DEVICE_OP = (
    _c("call_id", "BIGINT", "api_calls.call_id of the launching call (NULL if unknown)"),
    _c("device_id", "INTEGER", "devices.device_id"),
    _c("stream_id", "BIGINT", "streams.stream_id"),
    _c("launch_ns", "BIGINT", "virtual time the host submitted it"),
    _c("start_ns", "BIGINT", "virtual time it started on the device"),
    _c("end_ns", "BIGINT", "virtual time it ended on the device"),
    _c("duration_source", "VARCHAR", "'predicted' or 'measured'"),
    _c("model", "VARCHAR", "predictor model that produced the duration, or 'measured'"),
)

# A kernel's name and launch geometry (kernels, and the kernel nodes of graph templates).
_KERNEL_LAUNCH = (
    _c("name", "VARCHAR", "kernel name (demangled where possible)"),
    _c("grid_x", "INTEGER", "grid dimension x"),
    _c("grid_y", "INTEGER", "grid dimension y"),
    _c("grid_z", "INTEGER", "grid dimension z"),
    _c("block_x", "INTEGER", "block dimension x"),
    _c("block_y", "INTEGER", "block dimension y"),
    _c("block_z", "INTEGER", "block dimension z"),
    _c("shared_mem", "INTEGER", "dynamic shared memory bytes"),
)

# A copy's and a memset's own columns (copies and memsets, and the nodes of graph templates).
_COPY = (
    _c("kind", "VARCHAR", "'HtoD', 'DtoH', 'DtoD', 'HtoH' or 'PtoP'"),
    _c("bytes", "BIGINT", "bytes copied"),
    _c("src", "UBIGINT", "source address"),
    _c("dst", "UBIGINT", "destination address"),
)
_MEMSET = (
    _c("bytes", "BIGINT", "bytes set"),
    _c("value", "INTEGER", "byte value"),
    _c("dst", "UBIGINT", "destination address"),
)

# Columns every node of a graph template has (graph_kernels, graph_copies, graph_memsets).
_TEMPLATE_NODE = (
    _c("template_id", "BIGINT", "graph_kernels.template_id"),
    _c("node", "INTEGER", "index among the template's nodes of this table (topological order)"),
    _c("lane", "INTEGER", "branch: 0 the launch stream, k >= 1 graph_lanes.lane"),
    _c("start_ns", "BIGINT", "start relative to the replay's root_ns"),
    _c("end_ns", "BIGINT", "end relative to the replay's root_ns"),
    *_DEVICE_OP[-2:],  # duration_source, model
)

# Columns of `kernel_features`. They live apart from `kernels` because a recorded trace leaves
# them empty for almost every kernel, and DuckDB spends as long writing an all-NULL column as a
# full one: 8 such columns cut the kernel ingest rate by a fifth (tests/bench, writer).
KERNEL_FEATURES = (
    _c("registers", "INTEGER", "registers per thread if known"),
    _c("gemm_m", "BIGINT", "GEMM M (library call shape), NULL if not a GEMM"),
    _c("gemm_n", "BIGINT", "GEMM N"),
    _c("gemm_k", "BIGINT", "GEMM K"),
    _c("batch", "BIGINT", "batch count of a batched GEMM / attention batch"),
    _c("dtype", "VARCHAR", "element type, e.g. 'bf16'"),
    _c("bytes", "BIGINT", "bytes moved, where known"),
    _c("features", "JSON", "other shape features (attention lengths, heads, ...)"),
    _c("correlation", "BIGINT", "correlation id from an imported trace, NULL if none"),
)
KERNEL_FEATURE_NAMES = tuple(c.name for c in KERNEL_FEATURES)

# Kernels with their features, for queries that want both (one row per kernel).
KERNELS_WITH_FEATURES = "kernels LEFT JOIN kernel_features USING (kernel_id)"

TABLES: tuple[Table, ...] = (
    Table(
        META_TABLE,
        "Key/value identity of the file: format = 'revati-trace', schema_version.",
        (_c("key", "VARCHAR PRIMARY KEY", "key"), _c("value", "VARCHAR", "value")),
    ),
    Table(
        "run",
        "One row: how the trace was made.",
        (
            _c("source", "VARCHAR", "'emulated', 'real', 'imported' or 'replayed'"),
            _c("argv", "VARCHAR[]", "command line of the traced program"),
            _c("cwd", "VARCHAR", "working directory of the traced program"),
            _c("started_at", "TIMESTAMPTZ", "wall-clock start of the run"),
            _c("device", "VARCHAR", "device model id from the catalog (e.g. 'h100-sxm')"),
            _c("predictor", "VARCHAR", "predictor used for durations (NULL for measured)"),
            _c("profile", "VARCHAR", "calibration profile identity (NULL if none)"),
            _c("dilation", "DOUBLE", "host time dilation factor"),
            _c("revati_version", "VARCHAR", "revati version that wrote the trace"),
            _c("host", "VARCHAR", "host name where it was recorded"),
            _c("config", "JSON", "the resolved run configuration"),
            _c(
                "virtual_end_ns",
                "BIGINT",
                "virtual time at the end of the run (NULL while running)",
            ),
            _c("wall_ns", "BIGINT", "wall-clock duration of the run (NULL while running)"),
            _c(
                "exit_status", "INTEGER", "exit status of the traced program (128+signal if killed)"
            ),
            _c("exit_code", "INTEGER", "the program's exit code (NULL if a signal killed it)"),
            _c("exit_signal", "INTEGER", "signal that killed the program (NULL if it exited)"),
            _c("core_dumped", "BOOLEAN", "the killing signal dumped core"),
            _c(
                "interrupted_by",
                "VARCHAR",
                "signal that interrupted the recording, e.g. 'SIGINT' (NULL if not interrupted)",
            ),
        ),
    ),
    Table(
        "processes",
        "Every participant process.",
        (
            _c("pid", "BIGINT", "process id (key within the trace)"),
            _c("parent_pid", "BIGINT", "parent's pid"),
            _c("argv", "VARCHAR[]", "command line"),
            _c("rank", "INTEGER", "global rank (RANK), NULL if none"),
            _c("local_rank", "INTEGER", "LOCAL_RANK, NULL if none"),
            _c("world_size", "INTEGER", "WORLD_SIZE, NULL if none"),
            _c("host", "VARCHAR", "host name"),
            _c("started_ns", "BIGINT", "virtual time it joined the run"),
            _c("ended_ns", "BIGINT", "virtual time it ended (NULL if still running at the end)"),
            _c(
                "exit_status",
                "INTEGER",
                "exit code, or 128+signal if a signal killed it (NULL if unknown)",
            ),
            _c("exit_code", "INTEGER", "exit code (NULL if killed by a signal or unknown)"),
            _c("exit_signal", "INTEGER", "signal that killed it (NULL if it exited or unknown)"),
            _c("core_dumped", "BOOLEAN", "the killing signal dumped core (NULL if unknown)"),
            _c("ended_wall_ns", "BIGINT", "wall-clock ns from the start of the run to its end"),
            _c(
                "running_wall_ns",
                "BIGINT",
                "wall-clock ns it had a thread counted running, keeping the clock flowing "
                "(NULL: not recorded)",
            ),
        ),
    ),
    Table(
        "threads",
        "Every participant host thread.",
        (
            _c("thread_id", "BIGINT", "id of the thread within the trace"),
            _c("pid", "BIGINT", "processes.pid"),
            _c("tid", "BIGINT", "OS thread id"),
            _c("name", "VARCHAR", "thread name"),
            _c("started_ns", "BIGINT", "virtual time first seen"),
            _c("ended_ns", "BIGINT", "virtual time it ended (NULL if unknown)"),
        ),
    ),
    Table(
        "devices",
        "Every (virtual or real) GPU seen by a process.",
        (
            _c("device_id", "INTEGER", "id within the trace"),
            _c("pid", "BIGINT", "process that uses it (NULL if shared)"),
            _c("ordinal", "INTEGER", "CUDA device ordinal as the process sees it"),
            _c("name", "VARCHAR", "marketing name, e.g. 'NVIDIA H100 80GB HBM3'"),
            _c("model", "VARCHAR", "catalog id, e.g. 'h100-sxm'"),
            _c("memory_bytes", "BIGINT", "device memory capacity"),
        ),
    ),
    Table(
        "streams",
        "Every CUDA stream.",
        (
            _c("stream_id", "BIGINT", "id within the trace"),
            _c("pid", "BIGINT", "owning process"),
            _c("device_id", "INTEGER", "devices.device_id"),
            _c("handle", "UBIGINT", "the cudaStream_t value the program saw (0 = legacy default)"),
            _c("flags", "INTEGER", "cudaStreamCreateWithFlags flags"),
            _c("priority", "INTEGER", "stream priority"),
            _c("is_default", "BOOLEAN", "legacy or per-thread default stream"),
            _c("name", "VARCHAR", "display name"),
            _c("created_ns", "BIGINT", "virtual time of creation"),
        ),
    ),
    Table(
        "api_calls",
        "Every intercepted host API call (CUDA runtime, driver, libraries, libc waits).",
        (
            _c("call_id", "BIGINT", "id within the trace; kernels etc. refer to it"),
            _c("thread_id", "BIGINT", "threads.thread_id"),
            _c("seq", "BIGINT", "sequence number of the call within its thread"),
            _c("name", "VARCHAR", "function name, e.g. 'cudaLaunchKernel'"),
            _c("enter_ns", "BIGINT", "virtual time of entry"),
            _c("exit_ns", "BIGINT", "virtual time of return"),
            _c("result", "INTEGER", "return code (0 = success)"),
            _c("args", "VARCHAR", "argument summary"),
        ),
    ),
    Table(
        "kernels",
        "Every kernel executed (or predicted) on a device.",
        (
            _c("kernel_id", "BIGINT", "id within the trace"),
            *_DEVICE_OP,
            *_KERNEL_LAUNCH,
            _c("graph_id", "BIGINT", "CUDA graph launch this kernel belongs to, NULL if none"),
        ),
    ),
    Table(
        "kernel_features",
        "What is known about a kernel beyond its launch: library-call shape, bytes, registers, "
        "imported correlation id. One row per kernel that has any (most recorded kernels have "
        "none), joined on kernel_id.",
        (
            _c("kernel_id", "BIGINT", "kernels.kernel_id"),
            *KERNEL_FEATURES,
        ),
    ),
    Table(
        "copies",
        "Every memory copy.",
        (
            _c("copy_id", "BIGINT", "id within the trace"),
            *_DEVICE_OP,
            *_COPY,
        ),
    ),
    Table(
        "memsets",
        "Every memset.",
        (
            _c("memset_id", "BIGINT", "id within the trace"),
            *_DEVICE_OP,
            *_MEMSET,
        ),
    ),
    Table(
        "allocations",
        "Every device, pinned-host or managed allocation.",
        (
            _c("alloc_id", "BIGINT", "id within the trace"),
            _c("call_id", "BIGINT", "api_calls.call_id of the allocating call"),
            _c("pid", "BIGINT", "processes.pid"),
            _c("device_id", "INTEGER", "devices.device_id (NULL for host memory)"),
            _c("kind", "VARCHAR", "'device', 'host' (pinned) or 'managed'"),
            _c("address", "UBIGINT", "returned address (0 if it failed)"),
            _c("bytes", "BIGINT", "requested size"),
            _c("backed", "BOOLEAN", "true if it holds real bytes (see record --backed-max)"),
            _c("alloc_ns", "BIGINT", "virtual time of the allocation"),
            _c("free_ns", "BIGINT", "virtual time of the free (NULL if never freed)"),
            _c("result", "INTEGER", "return code of the allocating call"),
        ),
    ),
    Table(
        "syncs",
        "Every period a thread was blocked in an intercepted call.",
        (
            _c("sync_id", "BIGINT", "id within the trace"),
            _c("call_id", "BIGINT", "api_calls.call_id of the blocking call"),
            _c("thread_id", "BIGINT", "threads.thread_id"),
            _c(
                "kind",
                "VARCHAR",
                "'stream', 'event', 'device', 'copy', 'sleep', 'poll', 'wait', 'barrier'",
            ),
            _c("target", "VARCHAR", "what was awaited (stream, event, fd set, ...)"),
            _c("blocked_ns", "BIGINT", "virtual time the thread blocked"),
            _c("deadline_ns", "BIGINT", "deadline in virtual time (NULL = none / infinite)"),
            _c("resumed_ns", "BIGINT", "virtual time the thread resumed"),
        ),
    ),
    Table(
        "jumps",
        "Every jump of the virtual clock (taken while no participant thread ran).",
        (
            _c("jump_id", "BIGINT", "id within the trace"),
            _c("generation", "BIGINT", "clock generation after the jump"),
            _c("from_ns", "BIGINT", "virtual time before"),
            _c("to_ns", "BIGINT", "virtual time after (the earliest pending deadline)"),
            _c("cause_thread_id", "BIGINT", "thread whose deadline set the target"),
            _c("cause_kind", "VARCHAR", "kind of wait that set it (see syncs.kind)"),
            _c("cause_object", "VARCHAR", "the awaited object, e.g. 'stream 3' or 'kernel 812'"),
            _c("wall_ns", "BIGINT", "wall-clock time since run start when it was taken"),
        ),
    ),
    Table(
        "clock_samples",
        "The clock against wall time, sampled every 50 ms of wall time while the run records "
        "(what maps a virtual time to the wall time it was reached: the clock may flow slower "
        "than wall time, freeze and jump).",
        (
            _c(
                "wall_ns",
                "BIGINT",
                "wall-clock time since run start (as `jumps.wall_ns`: from before the program's spawn)",
            ),
            _c("virtual_ns", "BIGINT", "virtual time then"),
            _c("dilation", "DOUBLE", "host time dilation then (wall ns per virtual ns flowed)"),
            _c("frozen", "BOOLEAN", "the clock stood still (no participant thread ran)"),
        ),
    ),
    Table(
        "barriers",
        "Every cross-rank collective (a causality barrier).",
        (
            _c("barrier_id", "BIGINT", "id within the trace"),
            _c("collective", "VARCHAR", "e.g. 'allreduce', 'allgather'"),
            _c("communicator", "VARCHAR", "communicator id"),
            _c("bytes", "BIGINT", "message size per rank"),
            _c("world_size", "INTEGER", "ranks taking part"),
            _c("release_ns", "BIGINT", "virtual time the last rank arrived"),
            _c("end_ns", "BIGINT", "virtual time the collective ended on every rank"),
            _c("model", "VARCHAR", "model that produced the duration, or 'measured'"),
            _c(
                "straggler_rank", "INTEGER", "the last rank to arrive (NULL: one member, or failed)"
            ),
            _c("failed_rank", "INTEGER", "a member that died before it was released, else NULL"),
        ),
    ),
    Table(
        "barrier_arrivals",
        "Each rank's arrival at a barrier.",
        (
            _c("barrier_id", "BIGINT", "barriers.barrier_id"),
            _c("rank", "INTEGER", "rank that arrived"),
            _c("pid", "BIGINT", "processes.pid"),
            _c("stream_id", "BIGINT", "stream the collective ran on"),
            _c("kernel_id", "BIGINT", "the collective's kernel on this rank, if any"),
            _c("arrival_ns", "BIGINT", "virtual time this rank arrived"),
            _c("wait_ns", "BIGINT", "release_ns - arrival_ns: how long it waited (NULL: failed)"),
        ),
    ),
    Table(
        "nvtx_ranges",
        "NVTX push/pop and start/end ranges.",
        (
            _c("range_id", "BIGINT", "id within the trace"),
            _c("thread_id", "BIGINT", "threads.thread_id"),
            _c("name", "VARCHAR", "range text"),
            _c("domain", "VARCHAR", "NVTX domain"),
            _c("start_ns", "BIGINT", "virtual start"),
            _c("end_ns", "BIGINT", "virtual end"),
            _c("depth", "INTEGER", "nesting depth (0 = outermost)"),
        ),
    ),
    Table(
        "unsupported_calls",
        "Every call the application made that revati does not emulate.",
        (
            _c("call_id", "BIGINT", "api_calls.call_id"),
            _c("thread_id", "BIGINT", "threads.thread_id"),
            _c("name", "VARCHAR", "function name"),
            _c("library", "VARCHAR", "library it belongs to, e.g. 'libcudart.so.13'"),
            _c("at_ns", "BIGINT", "virtual time of the call"),
            _c("result", "INTEGER", "what was returned (cudaErrorNotSupported = 801)"),
        ),
    ),
    Table(
        "markers",
        "Free-form events: request arrival, first token, last token, iteration boundaries.",
        (
            _c("marker_id", "BIGINT", "id within the trace"),
            _c("pid", "BIGINT", "processes.pid"),
            _c("thread_id", "BIGINT", "threads.thread_id (NULL if not thread-bound)"),
            _c(
                "kind",
                "VARCHAR",
                "'request_arrival', 'first_token', 'last_token', 'iteration', ...",
            ),
            _c("name", "VARCHAR", "label"),
            _c("at_ns", "BIGINT", "virtual time"),
            _c("request_id", "VARCHAR", "request this belongs to, if any"),
            _c("payload", "JSON", "anything else"),
        ),
    ),
    Table(
        "requests",
        "Every request a load generator sent (`revati bench`): one row each, times as the "
        "client saw them.",
        (
            _c("request_id", "BIGINT", "id within the trace, in order of arrival"),
            _c("pid", "BIGINT", "processes.pid of the load generator that sent it"),
            _c("arrival_ns", "BIGINT", "virtual time the client sent it"),
            _c(
                "first_token_ns",
                "BIGINT",
                "virtual time the first output token arrived (NULL if none)",
            ),
            _c("end_ns", "BIGINT", "virtual time the response ended (or failed)"),
            _c("prompt_tokens", "INTEGER", "prompt length in tokens"),
            _c("output_tokens", "INTEGER", "output tokens received"),
            _c("status", "VARCHAR", "'ok', 'failed' or 'cancelled'"),
            _c("error", "VARCHAR", "why it failed (NULL if ok)"),
        ),
    ),
    Table(
        "request_tokens",
        "Every streamed output token of a request.",
        (
            _c("request_id", "BIGINT", "requests.request_id"),
            _c("token_index", "INTEGER", "0 for the first token, then 1, 2, ..."),
            _c("at_ns", "BIGINT", "virtual time the client received it"),
        ),
    ),
    Table(
        "graph_replays",
        "Every launch of a CUDA graph that replayed a graph template: one row stands for the "
        "template's kernels (the view `kernels` expands it).",
        (
            _c("replay_id", "BIGINT", "id within the trace: the graph_id of its kernels"),
            _c("template_id", "BIGINT", "graph_kernels.template_id"),
            _c("first_kernel_id", "BIGINT", "kernel_id of template node 0 (node i: + i)"),
            _c("device_id", "INTEGER", "devices.device_id"),
            _c("stream_id", "BIGINT", "streams.stream_id of the launch stream (lane 0)"),
            _c("launch_ns", "BIGINT", "virtual time the host launched the graph"),
            _c("root_ns", "BIGINT", "virtual time the graph's nodes are placed from"),
            _c("first_copy_id", "BIGINT", "copy_id of graph_copies node 0 (NULL: no copies)"),
            _c("first_memset_id", "BIGINT", "memset_id of graph_memsets node 0 (NULL: none)"),
        ),
    ),
    Table(
        "graph_kernels",
        "The kernels of a graph template (an instantiated graph as its first launch placed "
        "it), one row per kernel node, times relative to a replay's root_ns.",
        (
            _c("template_id", "BIGINT", "id of the template within the trace"),
            _c("node", "INTEGER", "kernel node index (0..kernels-1, topological order)"),
            *_TEMPLATE_NODE[2:],
            *_KERNEL_LAUNCH,
        ),
    ),
    Table(
        "graph_kernel_features",
        "kernel_features of template nodes that have any (library GEMM nodes).",
        (
            _c("template_id", "BIGINT", "graph_kernels.template_id"),
            _c("node", "INTEGER", "graph_kernels.node"),
            *KERNEL_FEATURES,
        ),
    ),
    Table(
        "graph_lanes",
        "The stream that runs branch `lane` (>= 1) of graphs launched on a stream.",
        (
            _c("stream_id", "BIGINT", "the launch stream (graph_replays.stream_id)"),
            _c("lane", "INTEGER", "graph_kernels.lane"),
            _c("lane_stream_id", "BIGINT", "streams.stream_id of the branch's stream"),
        ),
    ),
    Table(
        "graph_copies",
        "The copies of a graph template, one row per copy node, times relative to a replay's "
        "root_ns.",
        (
            *_TEMPLATE_NODE,
            *_COPY,
        ),
    ),
    Table(
        "graph_memsets",
        "The memsets of a graph template, one row per memset node, times relative to a "
        "replay's root_ns.",
        (
            *_TEMPLATE_NODE,
            *_MEMSET,
        ),
    ),
)

TABLE_BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}

# Tables added to this version without a bump (see the rules above): a reader opening a trace
# written before them sees them empty (TEMP tables), so older traces of the version still open.
ADDED_IN_VERSION: tuple[str, ...] = ("requests", "request_tokens", "clock_samples")

# Tables of the graph replays, and the schema version that added each: a reader of an older
# trace sees the ones it lacks empty.
GRAPH_TABLE_SINCE: dict[str, int] = {
    "graph_replays": 3,
    "graph_kernels": 3,
    "graph_kernel_features": 3,
    "graph_lanes": 3,
    "graph_copies": 4,
    "graph_memsets": 4,
}
GRAPH_TABLES: tuple[str, ...] = tuple(GRAPH_TABLE_SINCE)

# Tables that are views (kernels since v3, copies and memsets since v4): appends go to the stored
# table, readers query the view, which adds the rows of every graph replay. Older traces have
# them as plain tables.
STORED_AS: dict[str, str] = {
    "kernels": "kernel_rows",
    "kernel_features": "kernel_feature_rows",
    "copies": "copy_rows",
    "memsets": "memset_rows",
}

# A stored table whose batches may carry kernel_features columns: where the rows that have any
# go, and the key columns that join them back.
FEATURES_OF: dict[str, tuple[str, tuple[str, ...]]] = {
    "kernel_rows": ("kernel_feature_rows", ("kernel_id",)),
    "graph_kernels": ("graph_kernel_features", ("template_id", "node")),
}

# What a graph replay adds to each view: the template table it expands, and the replay's column
# that numbers the rows (template node `node` is that id + node).
REPLAYED_FROM: dict[str, tuple[str, str]] = {
    "kernels": ("graph_kernels", "first_kernel_id"),
    "kernel_features": ("graph_kernel_features", "first_kernel_id"),
    "copies": ("graph_copies", "first_copy_id"),
    "memsets": ("graph_memsets", "first_memset_id"),
}
_LANE_STREAM = """CASE WHEN t.lane = 0 THEN r.stream_id ELSE (SELECT l.lane_stream_id
    FROM graph_lanes l WHERE l.stream_id = r.stream_id AND l.lane = t.lane) END"""
# Columns of a device operation that come from the replay rather than its template.
_FROM_REPLAY = {
    "call_id": "NULL::BIGINT",
    "device_id": "r.device_id",
    "stream_id": _LANE_STREAM,
    "launch_ns": "r.launch_ns",
    "start_ns": "r.root_ns + t.start_ns",
    "end_ns": "r.root_ns + t.end_ns",
    "graph_id": "r.replay_id",
}


def replayed_sql(view: str) -> str:
    """A SELECT of the rows graph replays add to `view` (a key of `REPLAYED_FROM`), in its
    columns: template rows shifted to each replay's root, numbered from the replay's first id
    of that table."""
    template, first = REPLAYED_FROM[view]
    names = TABLE_BY_NAME[view].column_names
    exprs = {**_FROM_REPLAY, names[0]: f"r.{first} + t.node"}
    columns = ", ".join(f"{exprs.get(c, f't.{c}')} AS {c}" for c in names)
    return f"SELECT {columns} FROM graph_replays r JOIN {template} t USING (template_id)"


def view_ddl() -> list[str]:
    """The views `kernels`, `kernel_features`, `copies` and `memsets`: stored rows plus every
    graph replay's."""
    out = []
    for view, stored in STORED_AS.items():
        names = TABLE_BY_NAME[view].column_names
        out.append(
            f"CREATE OR REPLACE VIEW {view} AS SELECT {', '.join(names)} FROM {stored} "
            f"UNION ALL {replayed_sql(view)}"
        )
    return out


def stored_table(table: str) -> str:
    """The table that holds `table`'s rows in a trace of this version."""
    return STORED_AS.get(table, table)


def appendable_columns(table: str) -> tuple[str, ...]:
    """Columns a batch appended to `table` may carry: its own, and for kernels (eager or of a
    graph template) their features too (the writer moves those to the features table)."""
    own = TABLE_BY_NAME[table].column_names
    return own + KERNEL_FEATURE_NAMES if stored_table(table) in FEATURES_OF else own


def create_all_ddl() -> list[str]:
    """DDL statements that create every table and view of the current schema."""
    tables = [
        t.ddl().replace(f"EXISTS {t.name} (", f"EXISTS {stored_table(t.name)} (", 1) for t in TABLES
    ]
    return [*tables, *view_ddl()]
