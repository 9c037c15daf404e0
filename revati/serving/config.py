"""The load a `revati bench` run sends: one dataclass, saved as JSON in the trace's config."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from revati.serving.load import (
    LengthRange,
    PlannedRequest,
    arrival_gaps,
    load_dataset,
    plan_requests,
)


@dataclass(frozen=True)
class LoadConfig:
    url: str = "http://127.0.0.1:8000"  # base URL of the server
    endpoint: str = "/v1/completions"  # /v1/completions or /v1/chat/completions
    model: str | None = None  # model name to send (default: the first of GET /v1/models)
    num_prompts: int = 100  # requests to send
    request_rate: float = math.inf  # mean requests per second (inf: all at once)
    burstiness: float = 1.0  # gamma shape of the gaps (1: Poisson)
    max_concurrency: int | None = None  # at most this many requests in flight
    seed: int = 0  # seed of arrivals, lengths and prompts
    input_len: str = "128"  # prompt tokens: N or LOW:HIGH
    output_len: str = "128"  # output tokens: N or LOW:HIGH (forced with ignore_eos)
    dataset: str | None = None  # JSON/JSONL with prompt/output lengths (overrides the lengths)
    ready_timeout: float = 600.0  # virtual seconds to wait for the server to answer

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LoadConfig:
        return cls(**json.loads(text))

    def plan(self) -> tuple[list[PlannedRequest], list[float]]:
        """The requests and the gaps before each, drawn from the seed."""
        rng = np.random.default_rng(self.seed)
        if self.dataset:
            planned = load_dataset(Path(self.dataset), self.num_prompts, rng)
        else:
            planned = plan_requests(
                self.num_prompts,
                LengthRange.parse(self.input_len, "--input-len"),
                LengthRange.parse(self.output_len, "--output-len"),
                rng,
            )
        return planned, arrival_gaps(self.num_prompts, self.request_rate, self.burstiness, rng)
