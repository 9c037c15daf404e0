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

SCHEMA_VERSION = 2
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
            _c("name", "VARCHAR", "kernel name (demangled where possible)"),
            _c("grid_x", "INTEGER", "grid dimension x"),
            _c("grid_y", "INTEGER", "grid dimension y"),
            _c("grid_z", "INTEGER", "grid dimension z"),
            _c("block_x", "INTEGER", "block dimension x"),
            _c("block_y", "INTEGER", "block dimension y"),
            _c("block_z", "INTEGER", "block dimension z"),
            _c("shared_mem", "INTEGER", "dynamic shared memory bytes"),
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
            _c("kind", "VARCHAR", "'HtoD', 'DtoH', 'DtoD', 'HtoH' or 'PtoP'"),
            _c("bytes", "BIGINT", "bytes copied"),
            _c("src", "UBIGINT", "source address"),
            _c("dst", "UBIGINT", "destination address"),
        ),
    ),
    Table(
        "memsets",
        "Every memset.",
        (
            _c("memset_id", "BIGINT", "id within the trace"),
            *_DEVICE_OP,
            _c("bytes", "BIGINT", "bytes set"),
            _c("value", "INTEGER", "byte value"),
            _c("dst", "UBIGINT", "destination address"),
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
)

TABLE_BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}

# Tables added to this version without a bump (see the rules above): a reader opening a trace
# written before them sees them empty (TEMP tables), so older traces of the version still open.
ADDED_IN_VERSION: tuple[str, ...] = ("requests", "request_tokens")

# Derived tables: built from the tables above by `recorder/event_order.py` when a writer closes
# (or as TEMP tables by a reader when a trace lacks them). Never appended to directly.
DERIVED_TABLES: tuple[Table, ...] = (
    Table(
        "event_groups",
        "Events that share kind, track, process and name; one row per group.",
        (
            _c("grp", "INTEGER", "group id (0..groups-1)"),
            _c(
                "kind",
                "VARCHAR",
                "'api_call', 'kernel', 'copy', 'memset', 'sync', 'jump', "
                "'barrier', 'nvtx' or 'marker'",
            ),
            _c("kind_code", "TINYINT", "position of kind in the tie-break order"),
            _c("track_id", "VARCHAR", "'thread:<thread_id>' or 'stream:<stream_id>', NULL if none"),
            _c("pid", "BIGINT", "process of the track (or of the marker), NULL if run-global"),
            _c("rank", "INTEGER", "rank of that process, NULL if none"),
            _c("name", "VARCHAR", "display name of the events"),
            _c("events", "BIGINT", "number of events in the group"),
            _c("track_kind", "TINYINT", "0 thread, 1 stream, -1 none (join key)"),
            _c("track_ref", "BIGINT", "thread_id or stream_id, -1 if none (join key)"),
            _c("key_pid", "BIGINT", "pid named by the row itself (markers), -1 otherwise"),
        ),
    ),
    Table(
        "event_order",
        "Every event in the one global order; row position (rowid) = seq.",
        (
            _c("grp", "INTEGER", "event_groups.grp"),
            _c("kind_code", "TINYINT", "event_groups.kind_code"),
            _c("ref_id", "BIGINT", "id in the event's own table (call_id, kernel_id, ...)"),
            _c("start_ns", "BIGINT", "virtual start"),
            _c("end_ns", "BIGINT", "virtual end (= start_ns for instants)"),
        ),
    ),
    Table(
        "timeline_overview",
        "Coarse timeline (recorder/overview.py): per track, layer and bucket of the run "
        "(meta 'timeline_overview' = '<buckets> <t_min> <t_max>'), the group of the longest "
        "event there.",
        (
            _c("track_id", "VARCHAR", "event_groups.track_id"),
            _c("layer", "VARCHAR", "'call', 'sync', 'nvtx', 'marker' or 'device'"),
            _c("bucket", "SMALLINT", "bucket index (0..buckets-1)"),
            _c("grp", "INTEGER", "event_groups.grp of the longest event touching the bucket"),
        ),
    ),
)

# Tables whose rows are events on a track with a time; the reader's global order uses these.
EVENT_TABLES = (
    "api_calls",
    "kernels",
    "copies",
    "memsets",
    "syncs",
    "jumps",
    "barriers",
    "nvtx_ranges",
    "markers",
)


def appendable_columns(table: str) -> tuple[str, ...]:
    """Columns a batch appended to `table` may carry: its own, and for `kernels` its features
    too (the writer moves those to `kernel_features`)."""
    own = TABLE_BY_NAME[table].column_names
    return own + KERNEL_FEATURE_NAMES if table == "kernels" else own


def create_all_ddl() -> list[str]:
    """DDL statements that create every table of the current schema."""
    return [t.ddl() for t in TABLES]
