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

from revati.serving.metrics import RequestTimes

FILE_GLOB = "requests-*.jsonl"
REQUEST_COLUMNS = (
    "request_id",
    "pid",
    "arrival_ns",
    "first_token_ns",
    "end_ns",
    "prompt_tokens",
    "output_tokens",
    "status",
    "error",
)
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


def request_tables(run_dir: Path, epoch_monotonic_ns: int) -> dict[str, dict[str, list[Any]]]:
    """The requests logged in run_dir as columns of the `requests` and `request_tokens`
    tables (ids in order of arrival, times virtual); empty if none were logged."""
    records = sorted(_read_records(run_dir), key=lambda r: (r["arrival"], r["pid"]))
    requests: dict[str, list[Any]] = {name: [] for name in REQUEST_COLUMNS}
    tokens: dict[str, list[Any]] = {"request_id": [], "token_index": [], "at_ns": []}
    for request_id, r in enumerate(records):
        times = [t - epoch_monotonic_ns for t in r["tokens"]]
        row = (
            request_id,
            r["pid"],
            r["arrival"] - epoch_monotonic_ns,
            times[0] if times else None,
            r["end"] - epoch_monotonic_ns,
            r["prompt_tokens"],
            len(times),
            r["status"],
            r["error"],
        )
        for name, value in zip(REQUEST_COLUMNS, row, strict=True):
            requests[name].append(value)
        tokens["request_id"].extend([request_id] * len(times))
        tokens["token_index"].extend(range(len(times)))
        tokens["at_ns"].extend(times)
    if not records:
        return {}
    return (
        {"requests": requests, "request_tokens": tokens}
        if tokens["at_ns"]
        else {"requests": requests}
    )
