"""The load generator's arrivals and lengths, drawn from a seed."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from revati.errors import RevatiUsageError
from revati.serving.client import CHAT_ENDPOINT, COMPLETIONS_ENDPOINT, chunk_tokens, request_body
from revati.serving.config import LoadConfig
from revati.serving.load import (
    LengthRange,
    PlannedRequest,
    arrival_gaps,
    load_dataset,
    plan_requests,
)


def test_infinite_rate_sends_everything_at_once():
    assert arrival_gaps(5, math.inf, 1.0, np.random.default_rng(0)) == [0.0] * 5


@pytest.mark.parametrize("burstiness", [0.5, 1.0, 4.0])
def test_gaps_have_the_rate_as_mean_and_burstiness_as_gamma_shape(burstiness):
    gaps = np.array(arrival_gaps(40_000, 8.0, burstiness, np.random.default_rng(1)))
    assert gaps.mean() == pytest.approx(1 / 8.0, rel=0.02)
    # a gamma with shape k has coefficient of variation 1/sqrt(k) (1 for Poisson arrivals)
    assert gaps.std() / gaps.mean() == pytest.approx(1 / math.sqrt(burstiness), rel=0.03)


def test_a_seed_fixes_the_whole_load():
    a = LoadConfig(num_prompts=20, request_rate=3.0, input_len="4:40", seed=7).plan()
    b = LoadConfig(num_prompts=20, request_rate=3.0, input_len="4:40", seed=7).plan()
    c = LoadConfig(num_prompts=20, request_rate=3.0, input_len="4:40", seed=8).plan()
    assert a == b
    assert a != c


def test_bad_rate_is_refused():
    with pytest.raises(RevatiUsageError, match="--request-rate"):
        arrival_gaps(3, 0.0, 1.0, np.random.default_rng(0))


def test_length_ranges():
    assert LengthRange.parse("128", "--input-len") == LengthRange(128, 128)
    r = LengthRange.parse("3:6", "--input-len")
    drawn = r.sample(np.random.default_rng(0), 2000)
    assert set(drawn) == {3, 4, 5, 6}  # both ends included, uniform over them
    for bad in ("0", "6:3", "x", "1:2:3", "-4"):
        with pytest.raises(RevatiUsageError, match="--output-len"):
            LengthRange.parse(bad, "--output-len")


def test_random_prompts_have_their_token_length_in_words():
    planned = plan_requests(50, LengthRange(1, 30), LengthRange(7, 7), np.random.default_rng(3))
    assert all(len(p.prompt.split()) == p.prompt_tokens for p in planned)
    assert {p.output_tokens for p in planned} == {7}


def test_dataset_jsonl_and_sharegpt(tmp_path):
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"prompt_len": 5, "output_len": 9}\n\n{"input_len": 2, "output_tokens": 3}\n')
    got = load_dataset(jsonl, 5, np.random.default_rng(0))
    assert [(p.prompt_tokens, p.output_tokens) for p in got] == [(5, 9), (2, 3)] * 2 + [(5, 9)]
    share = tmp_path / "share.json"
    turns = [{"from": "human", "value": "one two three"}, {"from": "gpt", "value": "a b"}]
    share.write_text(json.dumps([{"conversations": turns}]))
    (req,) = load_dataset(share, 1, np.random.default_rng(0))
    assert (req.prompt_tokens, req.output_tokens) == (3, 2)


@pytest.mark.parametrize(
    "text, where",
    [
        ('{"prompt_len": 5, "output_len": 9}\n{"prompt_len": 5\n', "line 2: not valid JSON"),
        ('{"prompt_len": 5, "output_len": 0}\n', "line 1: an entry needs"),
        ('[{"prompt_len": 5, "output_len": 1}, 7]', "entry 2: an entry must be"),
        ("", "has no entries"),
    ],
)
def test_malformed_dataset_is_one_clear_error(tmp_path, text, where):
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(RevatiUsageError, match=where) as e:
        load_dataset(path, 3, np.random.default_rng(0))
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_a_chunk_brings_the_tokens_up_to_its_usage_count_else_one_if_it_has_text():
    def chunk(text=None, content=None, completion_tokens=None):
        choice = {"text": text} if content is None else {"delta": {"content": content}}
        usage = {"usage": {"completion_tokens": completion_tokens}} if completion_tokens else {}
        return {"choices": [choice] if text is not None or content is not None else [], **usage}

    assert chunk_tokens(chunk(text=" a"), 3) == 1
    assert chunk_tokens(chunk(text=""), 3) == 0
    assert chunk_tokens(chunk(content=" a"), 0) == 1
    assert chunk_tokens(chunk(content=""), 0) == 0
    assert chunk_tokens(chunk(text="", completion_tokens=4), 3) == 1  # a token without text
    assert chunk_tokens(chunk(text=" a", completion_tokens=6), 3) == 3  # sent together
    assert chunk_tokens(chunk(completion_tokens=6), 6) == 0  # the last usage chunk agrees
    assert chunk_tokens(chunk(completion_tokens=6), 4) == 2  # ... or adds what had no text
    assert chunk_tokens({"choices": [{"delta": {"role": "assistant"}}], "usage": None}, 0) == 0


def test_requests_ask_for_usage_and_carry_only_the_extensions_kept():
    req = PlannedRequest(prompt="the of", prompt_tokens=2, output_tokens=7)
    full = request_body(COMPLETIONS_ENDPOINT, "m", req)
    assert full["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    assert full["ignore_eos"] is True and full["max_tokens"] == 7
    plain = request_body(CHAT_ENDPOINT, None, req, extensions=())
    assert plain["stream_options"] == {"include_usage": True} and "ignore_eos" not in plain
    assert plain["max_completion_tokens"] == 7 and "model" not in plain
