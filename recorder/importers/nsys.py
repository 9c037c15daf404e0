"""Import an Nsight Systems SQLite export (`nsys export --type sqlite`) into a revati trace.

Mapping (see docs/importers.md): CUPTI_ACTIVITY_KIND_RUNTIME -> api_calls (name via nameId in
StringIds, the `_v7000` version suffix dropped); CUPTI_ACTIVITY_KIND_KERNEL -> kernels (name from
demangledName, else shortName); MEMCPY -> copies (copyKind enum -> HtoD/DtoH/...); MEMSET ->
memsets; SYNCHRONIZATION -> syncs; NVTX_EVENTS push/pop and start/end ranges -> nvtx_ranges, marks
-> markers; TARGET_INFO_GPU (if present) -> device names. Processes come from globalPid
(pid = globalPid >> 24 & 0xFFFFFF), threads from globalTid (tid = globalTid & 0xFFFFFF). A kernel
is linked to its launch call by correlationId within the same process. Columns are looked up by
name, so exports of every schema version that has these tables load.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from revati.recorder import schema
from revati.recorder.importers.builder import (
    ImportSummary,
    TraceBuilder,
    add_barriers,
    catalog_id,
    count_list,
    nesting_depths,
    number_calls,
    started_at_from,
    write_trace,
)
from revati.recorder.importers.nsys_export import (
    KERNEL_TABLE,
    MEMCPY_TABLE,
    MEMSET_TABLE,
    NVTX_TABLE,
    RUNTIME_TABLE,
    SYNC_TABLE,
    NsysExport,
    pid_of,
    tid_of,
)
from revati.recorder.importers.operator_shapes import attach_nvtx_shapes
from revati.recorder.output import atomic_output, check_output
from revati.recorder.writer import RunInfo

from revati.errors import RevatiImportError

# ENUM_CUDA_MEMCPY_OPER -> copies.kind (array and unified-memory kinds fold into the nearest).
COPY_KINDS = {
    1: "HtoD",
    2: "DtoH",
    3: "HtoD",
    4: "DtoH",
    5: "DtoD",
    6: "DtoD",
    7: "DtoD",
    8: "DtoD",
    9: "HtoH",
    10: "PtoP",
    11: "HtoD",
    12: "DtoH",
    13: "DtoD",
}
# ENUM_CUPTI_SYNC_TYPE -> syncs.kind
SYNC_KINDS = {1: "event", 2: "event", 3: "stream", 4: "device"}
# ENUM_NSYS_EVENT_TYPE values of NVTX_EVENTS rows
NVTX_MARK, NVTX_PUSHPOP, NVTX_STARTEND, NVTX_DOMAIN_CREATE = 34, 59, 60, 75
NVTXT_MARK, NVTXT_PUSHPOP, NVTXT_STARTEND = 65, 70, 71
_VERSION_SUFFIX = re.compile(r"_v\d+$")


@dataclass
class NsysImporter:
    """Converts one export into a TraceBuilder."""

    db: NsysExport
    b: TraceBuilder = field(default_factory=TraceBuilder)
    threads: dict[int, int] = field(default_factory=dict)  # globalTid -> thread_id
    devices: dict[tuple[int, int], int] = field(default_factory=dict)  # (pid, ordinal) -> id
    streams: dict[tuple[int, int, int], int] = field(default_factory=dict)
    calls: dict[tuple[int, int], int] = field(default_factory=dict)  # (pid, corr) -> row
    span: dict[int, list[Any]] = field(default_factory=dict)  # pid or thread -> [lo, hi]
    kernel_pids: list[int] = field(default_factory=list)

    def run(self) -> TraceBuilder:
        self._calls()
        self._kernels()
        self._copies()
        self._memsets()
        self._syncs()
        self._nvtx()
        attach_nvtx_shapes(self.b)
        self._processes_and_threads()
        pids = sorted(set(self.kernel_pids))
        if len(pids) > 1:
            add_barriers(self.b, [(None, p) for p in self.kernel_pids])
        return self.b

    # ---- identities --------------------------------------------------------------------------

    def _thread(self, global_tid: int) -> int:
        if global_tid not in self.threads:
            self.threads[global_tid] = self.b.next_id("thread")
        return self.threads[global_tid]

    def _device(self, pid: int, ordinal: int) -> int:
        if (pid, ordinal) not in self.devices:
            self.devices[(pid, ordinal)] = self.b.next_id("device")
        return self.devices[(pid, ordinal)]

    def _stream(self, pid: int, ordinal: int, stream: int) -> int:
        key = (pid, ordinal, stream)
        if key not in self.streams:
            self.streams[key] = self.b.next_id("stream")
            self.b.add(
                "streams",
                stream_id=self.streams[key],
                pid=pid,
                device_id=self._device(pid, ordinal),
                name=f"stream {stream}",
                **self._stream_info(pid, stream),
            )
        return self.streams[key]

    def _stream_info(self, pid: int, stream: int) -> dict[str, Any]:
        if not hasattr(self, "_stream_rows"):
            rows = self.db.records(
                "TARGET_INFO_CUDA_STREAM", ("streamId", "processId", "priority", "flag")
            )
            self._stream_rows = {(r["processId"], r["streamId"]): r for r in rows}
        r = self._stream_rows.get((pid, stream))
        if r is None:
            return {}
        stream_type = r["flag"]  # ENUM_CUPTI_STREAM_TYPE: 1 default, 2 non-blocking, 3 NULL
        return {
            "priority": r["priority"],
            "flags": {1: 0, 2: 1, 3: 0}.get(stream_type),  # as cudaStreamCreateWithFlags
            "is_default": stream_type in (1, 3) if stream_type else None,
        }

    def _touch(self, key: int, start: int, end: int) -> None:
        s = self.span.get(key)
        if s is None:
            self.span[key] = [start, end]
        else:
            s[0], s[1] = min(s[0], start), max(s[1], end)

    # ---- tables ------------------------------------------------------------------------------

    def _calls(self) -> None:
        for r in self.db.records(
            RUNTIME_TABLE, ("start", "end", "globalTid", "correlationId", "nameId", "returnValue")
        ):
            gtid = r["globalTid"]
            row = self.b.rows("api_calls")
            name = self.db.text(r["nameId"]) or f"<runtime call {r['nameId']}>"
            self.b.add(
                "api_calls",
                call_id=self.b.next_id("call"),
                thread_id=self._thread(gtid),
                name=_VERSION_SUFFIX.sub("", name),
                enter_ns=r["start"],
                exit_ns=r["end"],
                result=r["returnValue"],
                args=f"correlation={r['correlationId']}",
            )
            self.calls[(pid_of(gtid), r["correlationId"])] = row
            self._touch(-gtid - 1, r["start"], r["end"])

    def _device_op(self, r: dict[str, Any]) -> dict[str, Any]:
        pid = pid_of(r["globalPid"])
        row = self.calls.get((pid, r["correlationId"]))
        self._touch(pid, r["start"], r["end"])
        return dict(
            call_id=None if row is None else self.b.column("api_calls", "call_id")[row],
            launch_ns=None if row is None else self.b.column("api_calls", "enter_ns")[row],
            device_id=self._device(pid, r["deviceId"]),
            stream_id=self._stream(pid, r["deviceId"], r["streamId"]),
            start_ns=r["start"],
            end_ns=r["end"],
            duration_source=schema.DURATION_MEASURED,
            model=schema.DURATION_MEASURED,
        )

    def _kernels(self) -> None:
        wanted = (
            "start",
            "end",
            "deviceId",
            "streamId",
            "correlationId",
            "globalPid",
            "demangledName",
            "shortName",
            "mangledName",
            "registersPerThread",
            "gridX",
            "gridY",
            "gridZ",
            "blockX",
            "blockY",
            "blockZ",
            "staticSharedMemory",
            "dynamicSharedMemory",
            "graphId",
        )
        for r in self.db.records(KERNEL_TABLE, wanted):
            name = (
                self.db.text(r["demangledName"])
                or self.db.text(r["shortName"])
                or self.db.text(r["mangledName"])
                or "<unknown kernel>"
            )
            features = {
                "static_shared_mem": r["staticSharedMemory"],
                "short_name": self.db.text(r["shortName"]),
            }
            self.b.add(
                "kernels",
                kernel_id=self.b.next_id("kernel"),
                name=name,
                grid_x=r["gridX"],
                grid_y=r["gridY"],
                grid_z=r["gridZ"],
                block_x=r["blockX"],
                block_y=r["blockY"],
                block_z=r["blockZ"],
                shared_mem=r["dynamicSharedMemory"],
                registers=r["registersPerThread"],
                features=_json(features),
                graph_id=r["graphId"] or None,
                correlation=r["correlationId"],
                **self._device_op(r),
            )
            self.kernel_pids.append(pid_of(r["globalPid"]))

    def _copies(self) -> None:
        wanted = (
            "start",
            "end",
            "deviceId",
            "streamId",
            "correlationId",
            "globalPid",
            "bytes",
            "copyKind",
        )
        for r in self.db.records(MEMCPY_TABLE, wanted):
            self.b.add(
                "copies",
                copy_id=self.b.next_id("copy"),
                kind=COPY_KINDS.get(r["copyKind"]),
                bytes=r["bytes"],
                **self._device_op(r),
            )

    def _memsets(self) -> None:
        wanted = (
            "start",
            "end",
            "deviceId",
            "streamId",
            "correlationId",
            "globalPid",
            "bytes",
            "value",
        )
        for r in self.db.records(MEMSET_TABLE, wanted):
            self.b.add(
                "memsets",
                memset_id=self.b.next_id("memset"),
                bytes=r["bytes"],
                value=r["value"],
                **self._device_op(r),
            )

    def _syncs(self) -> None:
        wanted = ("start", "end", "streamId", "correlationId", "globalPid", "syncType", "eventId")
        for r in self.db.records(SYNC_TABLE, wanted):
            row = self.calls.get((pid_of(r["globalPid"]), r["correlationId"]))
            kind = SYNC_KINDS.get(r["syncType"], "device")
            target = (
                f"event {r['eventId']}"
                if kind == "event" and r["eventId"] is not None
                else f"stream {r['streamId']}"
                if kind == "stream"
                else None
            )
            self.b.add(
                "syncs",
                sync_id=self.b.next_id("sync"),
                call_id=None if row is None else self.b.column("api_calls", "call_id")[row],
                thread_id=None if row is None else self.b.column("api_calls", "thread_id")[row],
                kind=kind,
                target=target,
                blocked_ns=r["start"],
                resumed_ns=r["end"],
            )

    def _nvtx(self) -> None:
        wanted = ("start", "end", "eventType", "text", "textId", "globalTid", "domainId")
        records = list(self.db.records(NVTX_TABLE, wanted))
        domains = {
            r["domainId"]: self.db.text(r["text"]) or self.db.text(r["textId"])
            for r in records
            if r["eventType"] == NVTX_DOMAIN_CREATE
        }
        keys: list[Any] = []
        for r in records:
            etype, gtid = r["eventType"], r["globalTid"]
            if gtid is None or r["start"] is None:
                continue
            name = self.db.text(r["text"]) or self.db.text(r["textId"]) or ""
            thread_id = self._thread(gtid)
            if etype in (NVTX_MARK, NVTXT_MARK):
                self.b.add(
                    "markers",
                    marker_id=self.b.next_id("marker"),
                    pid=pid_of(gtid),
                    thread_id=thread_id,
                    kind="nvtx_mark",
                    name=name,
                    at_ns=r["start"],
                )
            elif etype in (NVTX_PUSHPOP, NVTX_STARTEND, NVTXT_PUSHPOP, NVTXT_STARTEND):
                end = r["end"] if r["end"] is not None else r["start"]
                self.b.add(
                    "nvtx_ranges",
                    range_id=self.b.next_id("range"),
                    thread_id=thread_id,
                    name=name,
                    domain=domains.get(r["domainId"]),
                    start_ns=r["start"],
                    end_ns=end,
                )
                # start/end ranges may cross threads and do not nest: each is its own key
                keys.append(gtid if etype in (NVTX_PUSHPOP, NVTXT_PUSHPOP) else ("se", len(keys)))
            else:
                continue
            self._touch(-gtid - 1, r["start"], r["end"] or r["start"])
        ranges = self.b.tables.get("nvtx_ranges")
        if ranges:
            ranges["depth"] = nesting_depths(keys, ranges["start_ns"], ranges["end_ns"])

    def _processes_and_threads(self) -> None:
        names = (
            {
                pid_of(g): n
                for g, _, n in self.db.int_rows("SELECT globalPid, pid, name FROM PROCESSES")
            }
            if "PROCESSES" in self.db.tables
            else {}
        )
        thread_names = self._thread_names()
        pids = {pid_of(g) for g in self.threads} | {p for p, _ in self.devices}
        for gtid in self.threads:
            s = self.span.get(-gtid - 1)
            if s is not None:
                self._touch(pid_of(gtid), s[0], s[1])
        for pid in sorted(pids):
            s = self.span.get(pid) or [None, None]
            self.b.add(
                "processes",
                pid=pid,
                argv=[names[pid]] if names.get(pid) else [],
                started_ns=s[0],
                ended_ns=s[1],
            )
        for gtid, thread_id in sorted(self.threads.items(), key=lambda kv: kv[1]):
            s = self.span.get(-gtid - 1) or [None, None]
            self.b.add(
                "threads",
                thread_id=thread_id,
                pid=pid_of(gtid),
                tid=tid_of(gtid),
                name=thread_names.get(gtid),
                started_ns=s[0],
                ended_ns=s[1],
            )
        gpus = self._gpus()
        for (pid, ordinal), device_id in sorted(self.devices.items(), key=lambda kv: kv[1]):
            name, memory = gpus.get(ordinal, (None, None))
            self.b.add(
                "devices",
                device_id=device_id,
                pid=pid,
                ordinal=ordinal,
                name=name,
                model=catalog_id(name),
                memory_bytes=memory,
            )
        number_calls(self.b)

    def _thread_names(self) -> dict[int, str]:
        if "ThreadNames" not in self.db.tables:
            return {}
        rows = self.db.int_rows("SELECT globalTid, nameId FROM ThreadNames")
        return {g: name for g, n in rows if (name := self.db.text(n))}

    def _gpus(self) -> dict[int, tuple[str | None, int | None]]:
        """CUDA ordinal -> (name, memory) from TARGET_INFO_GPU (absent in windowed exports)."""
        cols = self.db.columns("TARGET_INFO_GPU")
        if not cols or "name" not in cols:
            return {}
        key = "cuDevice" if "cuDevice" in cols else "id"
        memory = "totalMemory" if "totalMemory" in cols else "NULL"
        return {
            k: (n, m)
            for k, n, m in self.db.rows(f"SELECT {key}, name, {memory} FROM TARGET_INFO_GPU")
        }

    def run_info(self) -> RunInfo:
        meta = self._export_meta()
        session = (
            self.db.rows("SELECT utcEpochNs FROM TARGET_INFO_SESSION_START_TIME")
            if "utcEpochNs" in self.db.columns("TARGET_INFO_SESSION_START_TIME")
            else []
        )
        models = [m for m in self.b.column("devices", "model") if m]
        config = {
            "importer": "nsys",
            "inputs": [{"path": str(self.db.path.resolve()), **meta}],
            "session_start_utc_ns": session[0][0] if session else None,
        }
        first_pid = min(self.b.column("processes", "pid"), default=None)
        argv: list[str] = next(
            (
                a
                for p, a in zip(
                    self.b.column("processes", "pid"),
                    self.b.column("processes", "argv"),
                    strict=True,
                )
                if p == first_pid
            ),
            [],
        )
        run = RunInfo(
            source=schema.SOURCE_REAL,
            argv=argv,
            cwd="",
            host="",
            device=models[0] if models else None,
            config=config,
        )
        offset = self.b.min_time()
        if session and offset is not None:
            started = started_at_from(session[0][0] + offset)
            if started is not None:
                run.started_at = started
        return run

    def _export_meta(self) -> dict[str, Any]:
        for table in ("META_DATA_EXPORT", "EXPORT_META_DATA"):
            if {"name", "value"} <= self.db.columns(table):
                meta = dict(self.db.rows(f"SELECT name, value FROM {table}"))
                return {
                    "nsys_version": meta.get("EXPORT_PRODUCT_VERSION"),
                    "export_schema": meta.get("EXPORT_SCHEMA_VERSION"),
                }
        return {}


def _json(value: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in value.items() if v is not None}, separators=(",", ":"))


def import_nsys(
    path: str | os.PathLike[str], out: str | os.PathLike[str], *, force: bool = False
) -> ImportSummary:
    """Import one Nsight Systems SQLite export into a new trace at `out`."""
    output = check_output(out, force=force, inputs=[path])
    db = NsysExport(Path(path))
    try:
        importer = NsysImporter(db)
        builder = importer.run()
        run = importer.run_info()
    finally:
        db.close()
    check_rows_imported(db, builder)
    run.config["malformed"] = dict(db.malformed)
    with atomic_output(output) as tmp:
        counts = write_trace(builder, tmp, run)
    return ImportSummary(
        output=output,
        source_format="nsys",
        inputs=(str(path),),
        counts=counts,
        ranks=tuple(None for _ in builder.column("processes", "pid")),
        malformed=dict(db.malformed),
    )


def check_rows_imported(db: NsysExport, builder: TraceBuilder) -> None:
    """An export that gave no GPU work or runtime call is an error naming why."""
    if any(builder.rows(t) for t in ("api_calls", "kernels", "copies", "memsets")):
        return
    if db.malformed:
        raise RevatiImportError(
            f"{db.path}: every CUPTI row is malformed ({count_list(db.malformed)}); "
            "nothing to import; re-export the report with `nsys export --type sqlite`"
        )
    raise RevatiImportError(
        f"{db.path}: its CUPTI tables hold no kernels, copies, memsets or runtime calls; "
        "nothing to import (was the run traced with --trace cuda?)"
    )
