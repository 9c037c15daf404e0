"""What the load generator sends and when: arrivals, prompt and output lengths, prompts.

Arrivals follow vLLM's serving benchmark: gaps drawn from a gamma distribution with shape
`burstiness` and mean 1/`request_rate` (burstiness 1 is a Poisson process); an infinite rate
sends every request at once. Lengths are fixed (`128`), uniform in a closed range (`64:256`), or
read from a dataset file. Everything is drawn from one seeded generator, so a seed fixes the load.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from revati.errors import RevatiUsageError

# A prompt of N tokens is N words from this list: short, common English words that every
# tokenizer of a Llama-family model keeps as one token each (with their leading space).
PROMPT_WORDS = tuple(
    [
        "the",
        "of",
        "and",
        "to",
        "in",
        "is",
        "was",
        "for",
        "on",
        "as",
        "with",
        "by",
        "at",
        "from",
        "his",
        "her",
        "they",
        "this",
        "that",
        "are",
        "be",
        "not",
        "or",
        "it",
        "had",
        "have",
        "one",
        "all",
        "were",
        "which",
        "their",
        "said",
        "when",
        "there",
        "an",
        "been",
        "has",
        "more",
        "who",
        "will",
        "about",
        "if",
        "out",
        "up",
        "so",
        "some",
        "would",
        "what",
        "them",
        "into",
        "time",
        "than",
        "only",
        "new",
        "two",
        "may",
        "like",
        "other",
        "then",
        "first",
        "any",
        "now",
    ]
)


@dataclass(frozen=True)
class LengthRange:
    """A length: fixed when low == high, else uniform over the integers low..high."""

    low: int
    high: int

    @classmethod
    def parse(cls, text: str, option: str) -> LengthRange:
        parts = text.split(":")
        try:
            low, high = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else (0, -1)
        except ValueError:
            low, high = 0, -1
        if low < 1 or high < low:
            raise RevatiUsageError(
                f"{option} {text!r}: give a length N or a range LOW:HIGH of positive integers"
            )
        return cls(low, high)

    def sample(self, rng: np.random.Generator, n: int) -> list[int]:
        return [int(x) for x in rng.integers(self.low, self.high, size=n, endpoint=True)]


@dataclass(frozen=True)
class PlannedRequest:
    prompt: str
    prompt_tokens: int
    output_tokens: int


def arrival_gaps(n: int, rate: float, burstiness: float, rng: np.random.Generator) -> list[float]:
    """Seconds to wait before each of n requests (the first included)."""
    if rate <= 0 or burstiness <= 0:
        raise RevatiUsageError("--request-rate and --burstiness must be positive (rate may be inf)")
    if math.isinf(rate):
        return [0.0] * n
    scale = 1.0 / (rate * burstiness)
    return [float(g) for g in rng.gamma(shape=burstiness, scale=scale, size=n)]


def random_prompt(tokens: int, rng: np.random.Generator) -> str:
    words = rng.integers(0, len(PROMPT_WORDS), size=tokens)
    return " ".join(PROMPT_WORDS[w] for w in words)


def plan_requests(
    n: int, prompt_len: LengthRange, output_len: LengthRange, rng: np.random.Generator
) -> list[PlannedRequest]:
    """n requests of random prompts with lengths drawn from the two ranges."""
    prompts = prompt_len.sample(rng, n)
    outputs = output_len.sample(rng, n)
    return [
        PlannedRequest(random_prompt(p, rng), p, o) for p, o in zip(prompts, outputs, strict=True)
    ]


# ---- dataset files ---------------------------------------------------------------------------

_PROMPT_KEYS = ("prompt_len", "input_len", "prompt_tokens")
_OUTPUT_KEYS = ("output_len", "output_tokens")


def _lengths_of(entry: Any) -> tuple[int, int]:
    """(prompt, output) lengths of one dataset entry: explicit length fields, or a ShareGPT
    conversation whose first two turns' word counts stand for their token counts."""
    if not isinstance(entry, dict):
        raise ValueError("an entry must be a JSON object")
    prompt = next((entry[k] for k in _PROMPT_KEYS if k in entry), None)
    output = next((entry[k] for k in _OUTPUT_KEYS if k in entry), None)
    turns = entry.get("conversations")
    if (prompt is None or output is None) and isinstance(turns, list) and len(turns) >= 2:
        prompt = len(str(turns[0].get("value", "")).split())
        output = len(str(turns[1].get("value", "")).split())
    if not (isinstance(prompt, int) and isinstance(output, int) and prompt > 0 and output > 0):
        raise ValueError(
            "an entry needs positive integer prompt_len and output_len, or a ShareGPT "
            "'conversations' list of two non-empty turns"
        )
    return prompt, output


def _dataset_entries(path: Path) -> list[tuple[int, Any]]:
    """(line number, entry) pairs of a JSON array or a JSONL file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RevatiUsageError(f"{path}: cannot read the dataset: {e}") from e
    if text.lstrip().startswith("["):
        try:
            return [(0, e) for e in json.loads(text)]
        except ValueError as e:
            raise RevatiUsageError(f"{path}: not valid JSON: {e}") from e
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                entries.append((number, json.loads(line)))
            except ValueError as e:
                raise RevatiUsageError(f"{path}: line {number}: not valid JSON: {e}") from e
    return entries


def load_dataset(path: Path, n: int, rng: np.random.Generator) -> list[PlannedRequest]:
    """n requests with the lengths of a dataset's entries, in file order (cycled if short)."""
    lengths = []
    for number, entry in _dataset_entries(path):
        try:
            lengths.append(_lengths_of(entry))
        except ValueError as e:
            where = f"line {number}" if number else f"entry {len(lengths) + 1}"
            raise RevatiUsageError(f"{path}: {where}: {e}") from e
    if not lengths:
        raise RevatiUsageError(f"{path}: the dataset has no entries")
    picked = [lengths[i % len(lengths)] for i in range(n)]
    return [PlannedRequest(random_prompt(p, rng), p, o) for p, o in picked]
