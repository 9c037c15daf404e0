"""Import PyTorch-profiler (Kineto) Chrome-trace JSON files into a revati trace.

Each file is one rank of one run (`distributedInfo.rank`). Mapping (see docs/importers.md):
`cuda_runtime` / `cuda_driver` -> api_calls; `kernel` -> kernels; `gpu_memcpy` -> copies;
`gpu_memset` -> memsets; `cuda_sync` -> syncs; `user_annotation` -> nvtx_ranges (ProfilerStep#N
also -> markers kind 'iteration'); `gpu_user_annotation` -> nvtx_ranges on the host thread that
opened the annotation.
GPU events carry pid = device and tid = stream; `args.correlation` links a runtime call to the
device work it launched. NCCL kernels of several ranks become barriers. `cpu_op`,
`python_function` and other host-only categories are counted in run.config but not imported.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from revati.recorder import schema
from revati.recorder.importers.builder import (
    ImportSummary,
    TraceBuilder,
    add_barriers,
    catalog_id,
    nesting_depths,
    number_calls,
    started_at_from,
    write_trace,
)
from revati.recorder.importers.kineto_input import (
    CATEGORY,
    MetadataNames,
    as_dict,
    check_file_imported,
    collective_args,
    device_properties,
    dim3,
    expand_inputs,
    int_or_none,
    is_int,
    is_number,
    load_kineto,
    metadata_names,
    refuse_duplicates,
    refuse_same_rank,
    us_to_ns,
    with_int_ids,
)
from revati.recorder.importers.operator_shapes import OperatorIndex, kernel_columns
from revati.recorder.output import atomic_output, check_output
from revati.recorder.writer import RunInfo

from revati.errors import RevatiImportError

_COPY_KIND = re.compile(r"\b(HtoD|DtoH|DtoD|HtoH|PtoP)\b")
_SYNC_KIND = {
    "stream sync": "stream",
    "event sync": "event",
    "context sync": "device",
    "stream wait event": "event",
}
_PROFILER_STEP = re.compile(r"^ProfilerStep#(\d+)$")
# A host pid already taken by another input file is moved up by multiples of this.
_PID_STRIDE = 10_000_000


@dataclass
class _FileState:
    """Per-input bookkeeping while its events are converted."""

    index: int
    path: Path
    data: dict[str, Any]
    rank: int | None
    world_size: int | None
    base_ns: int
    main_pid: int = 0
    pids: dict[int, int] = field(default_factory=dict)  # original pid -> trace pid
    calls: dict[int, int] = field(default_factory=dict)  # correlation -> api_calls row
    call_events: dict[int, dict[str, Any]] = field(default_factory=dict)  # correlation -> event
    operators: OperatorIndex | None = None  # host operators with recorded input shapes
    annotations: dict[int, int] = field(default_factory=dict)  # External id -> thread_id
    skipped: Counter[str] = field(default_factory=Counter)  # host-only: not imported
    malformed: Counter[str] = field(default_factory=Counter)  # GPU/runtime events unreadable


class KinetoImporter:
    """Converts one or more Kineto files (ranks of one run) into a TraceBuilder."""

    def __init__(self) -> None:
        self.b = TraceBuilder()
        self.used_pids: set[int] = set()
        self.threads: dict[tuple[int, int], int] = {}  # (pid, tid) -> thread_id
        self.devices: dict[tuple[int, int], int] = {}  # (file, ordinal) -> id
        self.streams: dict[tuple[int, int, int], int] = {}  # (file, dev, stream) -> id
        self.span: dict[int, list[Any]] = {}  # trace pid -> [min, max]
        self.thread_span: dict[int, list[Any]] = {}
        self.kernel_owner: list[tuple[int | None, int]] = []  # per kernel row
        self.kernel_groups: list[str | None] = []  # process group of an NCCL kernel row
        self.ann_keys: list[Any] = []  # per nvtx row
        self.files: list[_FileState] = []
        self.thread_names: dict[int, str | None] = {}
        self.ranks: dict[int, Path] = {}

    # ---- entry -------------------------------------------------------------------------------

    def add_file(self, path: Path, data: dict[str, Any]) -> None:
        dist = as_dict(data.get("distributedInfo"))
        st = _FileState(
            index=len(self.files),
            path=path,
            data=data,
            rank=int_or_none(dist.get("rank")),
            world_size=int_or_none(dist.get("world_size")),
            base_ns=int_or_none(data.get("baseTimeNanoseconds")) or 0,
        )
        refuse_same_rank(path, st.rank, self.ranks)
        self.files.append(st)
        rows_before = self._row_count()
        events = [with_int_ids(e) for e in data["traceEvents"] if isinstance(e, dict)]
        st.malformed["event that is not a JSON object"] = len(data["traceEvents"]) - len(events)
        names = metadata_names(events)
        st.operators = OperatorIndex.from_kineto(events)
        by_kind = self._sort_events(st, events)
        st.main_pid = self._main_pid(st, by_kind)
        for e in by_kind.get("call", []):
            self._add_call(st, e, names)
        for e in by_kind.get("annotation", []):
            self._add_annotation(st, e, names)
        for kind in ("kernel", "memcpy", "memset", "sync", "gpu_annotation"):
            for e in by_kind.get(kind, []):
                self._add_device_event(st, kind, e, names)
        st.malformed = +st.malformed  # drop zero counts
        check_file_imported(path, self._row_count() - rows_before, st.malformed, st.skipped)

    def _sort_events(
        self, st: _FileState, events: list[dict[str, Any]]
    ) -> dict[str, list[dict[str, Any]]]:
        """The importable events by kind; the rest counted as not imported or malformed."""
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for e in events:
            cat = e.get("cat")
            kind = CATEGORY.get(cat.lower()) if isinstance(cat, str) else None
            if kind is None or e.get("ph") != "X":
                label = cat if isinstance(cat, str) else "(no category)"
                st.skipped["metadata" if e.get("ph") == "M" else label] += 1
            elif not is_number(e.get("ts")) or not _valid_dur(e.get("dur")):
                st.malformed[f"{cat} without a numeric ts/dur"] += 1
            else:
                by_kind.setdefault(kind, []).append(e)
        return by_kind

    def _row_count(self) -> int:
        return sum(self.b.rows(t) for t in self.b.tables)

    def finish(self) -> TraceBuilder:
        """Add the derived rows (processes, threads, seq, depths, barriers)."""
        self._add_processes()
        self._add_threads()
        number_calls(self.b)
        ann = self.b.tables.get("nvtx_ranges")
        if ann:
            ann["depth"] = nesting_depths(self.ann_keys, ann["start_ns"], ann["end_ns"])
        if self._ranks_of_one_run():
            add_barriers(self.b, self.kernel_owner, self.kernel_groups)
        return self.b

    def _ranks_of_one_run(self) -> bool:
        """Collectives are matched only across files that are distinct ranks of one world."""
        ranks = [st.rank for st in self.files]
        worlds = {st.world_size for st in self.files if st.world_size is not None}
        return len(self.files) > 1 and None not in ranks and len(worlds) <= 1

    # ---- identities --------------------------------------------------------------------------

    def _main_pid(self, st: _FileState, by_kind: dict[str, list[dict[str, Any]]]) -> int:
        """The file's host process: the one making most CUDA calls (the rank's process)."""
        counts: Counter[int] = Counter(
            e["pid"]
            for e in by_kind.get("call", []) + by_kind.get("annotation", [])
            if is_int(e.get("pid"))
        )
        original = counts.most_common(1)[0][0] if counts else -1 - st.index
        return self._trace_pid(st, original)

    def _trace_pid(self, st: _FileState, pid: int) -> int:
        """Trace pid for a host pid of this file, distinct from every other file's pids."""
        if pid not in st.pids:
            new = pid
            while new in self.used_pids:  # same OS pid in another file (another host or rank)
                new += _PID_STRIDE
            self.used_pids.add(new)
            st.pids[pid] = new
        return st.pids[pid]

    def _thread(self, st: _FileState, e: dict[str, Any], names: MetadataNames) -> int | None:
        if not is_int(e.get("pid")) or not is_int(e.get("tid")):
            return None
        pid = self._trace_pid(st, e["pid"])
        key = (pid, e["tid"])
        if key not in self.threads:
            thread_id = self.b.next_id("thread")
            self.threads[key] = thread_id
            self.thread_names[thread_id] = names.threads.get((e["pid"], e["tid"]))
        return self.threads[key]

    def _device(self, st: _FileState, ordinal: int) -> int:
        key = (st.index, ordinal)
        if key not in self.devices:
            props = device_properties(st.data, ordinal)
            name = props.get("name")
            device_id = self.devices[key] = self.b.next_id("device")
            self.b.add(
                "devices",
                device_id=device_id,
                pid=st.main_pid,
                ordinal=ordinal,
                name=name,
                model=catalog_id(name),
                memory_bytes=int_or_none(props.get("totalGlobalMem")),
            )
        return self.devices[key]

    def _stream(self, st: _FileState, ordinal: int, stream: int, names: MetadataNames) -> int:
        key = (st.index, ordinal, stream)
        if key not in self.streams:
            stream_id = self.streams[key] = self.b.next_id("stream")
            label = (names.threads.get((ordinal, stream)) or f"stream {stream}").strip()
            self.b.add(
                "streams",
                stream_id=stream_id,
                pid=st.main_pid,
                device_id=self._device(st, ordinal),
                name=label,
            )
        return self.streams[key]

    # ---- events ------------------------------------------------------------------------------

    def _add_call(self, st: _FileState, e: dict[str, Any], names: MetadataNames) -> None:
        thread_id = self._thread(st, e, names)
        if thread_id is None:
            st.malformed["call without pid/tid"] += 1
            return
        start, end = _times(st, e)
        args = as_dict(e.get("args"))
        call_id = self.b.next_id("call")
        corr = int_or_none(args.get("correlation"))
        if corr is not None:
            st.calls[corr] = self.b.rows("api_calls")
            st.call_events[corr] = e
        self.b.add(
            "api_calls",
            call_id=call_id,
            thread_id=thread_id,
            name=str(e.get("name")),
            enter_ns=start,
            exit_ns=end,
            args=json.dumps(args, separators=(",", ":")),
        )
        self._touch(st.pids[e["pid"]], thread_id, start, end)

    def _add_annotation(self, st: _FileState, e: dict[str, Any], names: MetadataNames) -> None:
        thread_id = self._thread(st, e, names)
        if thread_id is None:
            st.malformed["annotation without pid/tid"] += 1
            return
        start, end = _times(st, e)
        name = str(e.get("name"))
        self.b.add(
            "nvtx_ranges",
            range_id=self.b.next_id("range"),
            thread_id=thread_id,
            name=name,
            domain="user_annotation",
            start_ns=start,
            end_ns=end,
        )
        self.ann_keys.append(("thread", thread_id))
        args = as_dict(e.get("args"))
        external = int_or_none(args.get("External id"))
        if external is not None:
            st.annotations[external] = thread_id
        pid = st.pids[e["pid"]]
        self._touch(pid, thread_id, start, end)
        step = _PROFILER_STEP.match(name)
        if step:
            payload = {"step": int(step.group(1)), "duration_ns": end - start}
            self.b.add(
                "markers",
                marker_id=self.b.next_id("marker"),
                pid=pid,
                thread_id=thread_id,
                kind="iteration",
                name=name,
                at_ns=start,
                payload=json.dumps(payload),
            )

    def _add_device_event(
        self, st: _FileState, kind: str, e: dict[str, Any], names: MetadataNames
    ) -> None:
        args = as_dict(e.get("args"))
        ordinal = int_or_none(args.get("device"))
        ordinal = ordinal if ordinal is not None else int_or_none(e.get("pid"))
        stream = int_or_none(args.get("stream"))
        stream = stream if stream is not None else int_or_none(e.get("tid"))
        if ordinal is None or stream is None:
            st.malformed[f"{kind} without device/stream"] += 1
            return
        start, end = _times(st, e)
        row = st.calls.get(int_or_none(args.get("correlation")) or -1)
        call_id = None if row is None else self.b.column("api_calls", "call_id")[row]
        launch = None if row is None else self.b.column("api_calls", "enter_ns")[row]
        if kind == "sync":
            self._add_sync(st, e, args, row, start, end)
            return
        if kind == "gpu_annotation":
            # the GPU-side extent of a user annotation: kept on the host thread that opened it
            thread_id = st.annotations.get(int_or_none(args.get("External id")) or -1)
            if thread_id is None:
                st.skipped["gpu_user_annotation without its user_annotation"] += 1
                return
            self.b.add(
                "nvtx_ranges",
                range_id=self.b.next_id("range"),
                thread_id=thread_id,
                name=str(e.get("name")),
                domain="gpu_user_annotation",
                start_ns=start,
                end_ns=end,
            )
            self.ann_keys.append(("stream", st.index, ordinal, stream))
            return
        common = dict(
            call_id=call_id,
            device_id=self._device(st, ordinal),
            stream_id=self._stream(st, ordinal, stream, names),
            launch_ns=launch,
            start_ns=start,
            end_ns=end,
            duration_source=schema.DURATION_MEASURED,
            model=schema.DURATION_MEASURED,
        )
        self._touch(st.main_pid, None, start, end)
        if kind == "kernel":
            self._add_kernel(st, e, args, common)
        elif kind == "memcpy":
            m = _COPY_KIND.search(str(e.get("name")))
            self.b.add(
                "copies",
                copy_id=self.b.next_id("copy"),
                kind=m.group(1) if m else None,
                bytes=int_or_none(args.get("bytes")),
                **common,
            )
        else:
            self.b.add(
                "memsets",
                memset_id=self.b.next_id("memset"),
                bytes=int_or_none(args.get("bytes")),
                **common,
            )

    def _add_kernel(
        self, st: _FileState, e: dict[str, Any], args: dict[str, Any], common: dict[str, Any]
    ) -> None:
        grid = dim3(args.get("grid"))
        block = dim3(args.get("block"))
        features: dict[str, Any] = {
            k: args[k]
            for k in ("blocks per SM", "warps per SM", "est. achieved occupancy %")
            if k in args
        }
        features["shared_mem_kind"] = "static+dynamic"
        dtype, nbytes, communicator = collective_args(args, features)
        shape = self._launcher_shape(st, args)
        features.update({k: v for k, v in shape.items() if k.startswith("attn_")})
        shaped = kernel_columns(shape) | {"dtype": dtype or shape.get("dtype")}
        if nbytes is not None:  # a collective's own size
            shaped["bytes"] = nbytes
        self.b.add(
            "kernels",
            kernel_id=self.b.next_id("kernel"),
            name=str(e.get("name")),
            grid_x=grid[0],
            grid_y=grid[1],
            grid_z=grid[2],
            block_x=block[0],
            block_y=block[1],
            block_z=block[2],
            shared_mem=int_or_none(args.get("shared memory")),
            registers=int_or_none(args.get("registers per thread")),
            **shaped,
            features=json.dumps(features),
            correlation=int_or_none(args.get("correlation")),
            **common,
        )
        self.kernel_owner.append((st.rank, st.main_pid))
        self.kernel_groups.append(communicator)

    def _launcher_shape(self, st: _FileState, args: dict[str, Any]) -> dict[str, Any]:
        """Shape features of the operator whose runtime call launched the kernel ({} if none)."""
        call = st.call_events.get(int_or_none(args.get("correlation")) or -1)
        if call is None or not st.operators:
            return {}
        return st.operators.launcher_features(call)

    def _add_sync(
        self,
        st: _FileState,
        e: dict[str, Any],
        args: dict[str, Any],
        row: int | None,
        start: int,
        end: int,
    ) -> None:
        sync_kind = str(args.get("cuda_sync_kind") or e.get("name") or "").lower()
        target = f"stream {args['stream']}" if "stream" in args else None
        if "event" in args:
            target = f"event {args['event']}"
        self.b.add(
            "syncs",
            sync_id=self.b.next_id("sync"),
            call_id=None if row is None else self.b.column("api_calls", "call_id")[row],
            thread_id=None if row is None else self.b.column("api_calls", "thread_id")[row],
            kind=_SYNC_KIND.get(sync_kind, "device"),
            target=target,
            blocked_ns=start,
            resumed_ns=end,
        )

    # ---- derived rows ------------------------------------------------------------------------

    def _touch(self, pid: int, thread_id: int | None, start: int, end: int) -> None:
        for key, spans in ((pid, self.span), (thread_id, self.thread_span)):
            if key is None:
                continue
            s = spans.get(key)
            if s is None:
                spans[key] = [start, end]
            else:
                s[0], s[1] = min(s[0], start), max(s[1], end)

    def _add_processes(self) -> None:
        for st in self.files:
            names = metadata_names([e for e in st.data["traceEvents"] if isinstance(e, dict)])
            host = st.data.get("host_name") if isinstance(st.data.get("host_name"), str) else None
            for original, pid in sorted(st.pids.items(), key=lambda kv: kv[1] != st.main_pid):
                span = self.span.get(pid) or [None, None]
                pname = names.processes.get(original)
                self.b.add(
                    "processes",
                    pid=pid,
                    argv=[pname] if pname else [],
                    rank=st.rank,
                    world_size=st.world_size,
                    host=host,
                    started_ns=span[0],
                    ended_ns=span[1],
                )

    def _add_threads(self) -> None:
        for (pid, tid), thread_id in sorted(self.threads.items(), key=lambda kv: kv[1]):
            span = self.thread_span.get(thread_id, [None, None])
            self.b.add(
                "threads",
                thread_id=thread_id,
                pid=pid,
                tid=tid,
                name=self.thread_names.get(thread_id),
                started_ns=span[0],
                ended_ns=span[1],
            )


def _valid_dur(dur: Any) -> bool:
    return dur is None or (is_number(dur) and dur >= 0)


def _times(st: _FileState, e: dict[str, Any]) -> tuple[int, int]:
    start = st.base_ns + us_to_ns(e["ts"])
    dur = e.get("dur")
    if not isinstance(dur, (int, float)) or isinstance(dur, bool) or dur <= 0:
        return start, start
    return start, start + us_to_ns(dur)


def import_kineto(
    paths: list[str | os.PathLike[str]], out: str | os.PathLike[str], *, force: bool = False
) -> ImportSummary:
    """Import PyTorch-profiler traces (one per rank of one run) into a new trace at `out`."""
    if not paths:
        raise RevatiImportError("no Kineto input files given")
    inputs = expand_inputs(paths)
    output = check_output(out, force=force, inputs=inputs)
    refuse_duplicates(inputs)
    importer = KinetoImporter()
    for path in inputs:
        importer.add_file(path, load_kineto(path))
    builder = importer.finish()
    run = _run_info(importer, builder)
    with atomic_output(output) as tmp:
        counts = write_trace(builder, tmp, run)
    return ImportSummary(
        output=output,
        source_format="kineto",
        inputs=tuple(str(p) for p in inputs),
        counts=counts,
        ranks=tuple(st.rank for st in importer.files),
        not_imported=sum((st.skipped for st in importer.files), Counter()),
        malformed=sum((st.malformed for st in importer.files), Counter()),
    )


def _run_info(importer: KinetoImporter, builder: TraceBuilder) -> RunInfo:
    offset = builder.min_time()
    models = [m for m in builder.column("devices", "model") if m]
    first = importer.files[0]
    pnames = metadata_names([e for e in first.data["traceEvents"] if isinstance(e, dict)])
    main = next((o for o, p in first.pids.items() if p == first.main_pid), None)
    argv = [pnames.processes[main]] if main in pnames.processes else []
    inputs = [
        {
            "path": str(st.path.resolve()),
            "rank": st.rank,
            "world_size": st.world_size,
            "base_time_ns": st.base_ns,
            "pids": {str(k): v for k, v in st.pids.items()},
            "devices": sorted(
                {
                    str(device_properties(st.data, o).get("name"))
                    for (f, o) in importer.devices
                    if f == st.index
                }
            ),
            "not_imported": dict(st.skipped.most_common()),
            "malformed": dict(st.malformed.most_common()),
        }
        for st in importer.files
    ]
    run = RunInfo(
        source=schema.SOURCE_REAL,
        argv=argv,
        cwd="",
        device=models[0] if models else None,
        host=next(
            (h for st in importer.files if isinstance(h := st.data.get("host_name"), str)), ""
        ),
        config={"importer": "kineto", "inputs": inputs},
    )
    started = started_at_from(offset)
    if started is not None:
        run.started_at = started
    return run
