"""What a blocking record resolved to (the coordinator answers the blocked thread with it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INFINITE = None  # the deadline of an untimed wait


@dataclass
class Resolution:
    """What a blocking record resolved to: a deadline, or an answer for a query."""

    deadline_ns: int | None
    result: int = 0
    value: int = 0
    kind: str = ""
    target: str = ""
    call: dict[str, Any] | None = None
