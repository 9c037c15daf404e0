"""The requests of a trace as `RequestTimes`, for `revati report` and `revati bench`."""

from __future__ import annotations

from collections import defaultdict

from revati.recorder.reader import TraceReader
from revati.serving.metrics import RequestTimes
from revati.serving.request_log import STATUS_OK


def trace_requests(reader: TraceReader) -> list[RequestTimes]:
    """Every request of the trace with its token times, in order of arrival."""
    tokens: dict[int, list[int]] = defaultdict(list)
    for request_id, at_ns in reader.sql(
        "SELECT request_id, at_ns FROM request_tokens ORDER BY request_id, token_index"
    ):
        tokens[request_id].append(at_ns)
    rows = reader.sql(
        "SELECT request_id, arrival_ns, end_ns, prompt_tokens, status FROM requests "
        "ORDER BY request_id"
    )
    return [
        RequestTimes(arrival, end, prompt or 0, tokens.get(rid, []), status == STATUS_OK)
        for rid, arrival, end, prompt, status in rows
    ]


def request_summary(reader: TraceReader) -> dict[str, int]:
    """Counts of requests by status (empty for a trace without requests)."""
    return {s: int(n) for s, n in reader.sql("SELECT status, count(*) FROM requests GROUP BY 1")}
