"""Requests from a load generator to the trace's single writer.

A load generator is a participant of the run, not the writer: it appends one JSON line per
finished request to `requests-<pid>.jsonl` in the run directory (`REVATI_RUN_DIR`), flushed at
once, so a crash or Ctrl-C loses at most the request in flight. The session ingests every such
file when the run ends, before the trace closes. Times in the file are the participant's
CLOCK_MONOTONIC readings (virtual: the run's monotonic epoch plus virtual time); the ingest
subtracts the epoch.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from revati.recorder.writer import TraceWriter
from revati.serving.metrics import RequestTimes

FILE_GLOB = "requests-*.jsonl"
STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_CANCELLED = "cancelled"


@dataclass
class RequestRecord:
    """One request as the client saw it; times are CLOCK_MONOTONIC ns."""

    arrival: int
    end: int
    prompt_tokens: int
    tokens: list[int] = field(default_factory=list)  # receive time of each output token
    status: str = STATUS_OK
    error: str | None = None
    pid: int = field(default_factory=os.getpid)

    def times(self) -> RequestTimes:
        return RequestTimes(
            self.arrival, self.end, self.prompt_tokens, self.tokens, self.status == STATUS_OK
        )


class RequestLog:
    """The participant side: append finished requests to this process's file."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.path = Path(run_dir) / f"requests-{os.getpid()}.jsonl"
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, record: RequestRecord) -> None:
        self._file.write(json.dumps(asdict(record)) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _read_records(run_dir: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted(run_dir.glob(FILE_GLOB)):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:  # the line a killed load generator left half written
                continue
    return records


def ingest_requests(run_dir: Path, writer: TraceWriter, epoch_monotonic_ns: int) -> int:
    """Write the requests logged in run_dir to the trace's `requests` and `request_tokens`
    tables, ids in order of arrival; returns how many."""
    records = sorted(_read_records(run_dir), key=lambda r: (r["arrival"], r["pid"]))
    requests: list[dict[str, Any]] = []
    token_cols: dict[str, list[int]] = {"request_id": [], "token_index": [], "at_ns": []}
    for request_id, r in enumerate(records):
        times = [t - epoch_monotonic_ns for t in r["tokens"]]
        requests.append(
            {
                "request_id": request_id,
                "pid": r["pid"],
                "arrival_ns": r["arrival"] - epoch_monotonic_ns,
                "first_token_ns": times[0] if times else None,
                "end_ns": r["end"] - epoch_monotonic_ns,
                "prompt_tokens": r["prompt_tokens"],
                "output_tokens": len(times),
                "status": r["status"],
                "error": r["error"],
            }
        )
        token_cols["request_id"].extend([request_id] * len(times))
        token_cols["token_index"].extend(range(len(times)))
        token_cols["at_ns"].extend(times)
    if requests:
        writer.append_rows("requests", requests)
    if token_cols["at_ns"]:
        writer.append("request_tokens", token_cols)
    return len(requests)
