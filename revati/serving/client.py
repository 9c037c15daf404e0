"""One streamed request to an OpenAI-compatible server (aiohttp), timed on the virtual clock."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Collection
from typing import Any

import aiohttp

from revati.serving.load import PlannedRequest
from revati.serving.request_log import STATUS_CANCELLED, STATUS_FAILED, RequestRecord

CHAT_ENDPOINT = "/v1/chat/completions"
COMPLETIONS_ENDPOINT = "/v1/completions"
ENDPOINTS = (COMPLETIONS_ENDPOINT, CHAT_ENDPOINT)


# Fields beyond OpenAI's API that the load asks for, dropped for a server that rejects them:
# `ignore_eos` forces the output length; `continuous_usage_stats` puts the running count of
# output tokens on every chunk, so a chunk without text (a token that decodes to nothing) or
# with several tokens (the server fell behind) is counted right.
EXTENSIONS = ("ignore_eos", "continuous_usage_stats")


def request_body(
    endpoint: str,
    model: str | None,
    req: PlannedRequest,
    extensions: Collection[str] = EXTENSIONS,
) -> dict[str, Any]:
    """The JSON body, streamed with usage figures: the output length forced with max_tokens,
    and with the `extensions` the server takes (one that rejects unknown fields may not)."""
    stream_options: dict[str, bool] = {"include_usage": True}
    if "continuous_usage_stats" in extensions:
        stream_options["continuous_usage_stats"] = True
    body: dict[str, Any] = {
        "max_tokens": req.output_tokens,
        "stream": True,
        "stream_options": stream_options,
        "temperature": 0.0,
    }
    if "ignore_eos" in extensions:
        body["ignore_eos"] = True
    if model:
        body["model"] = model
    if endpoint == CHAT_ENDPOINT:
        body["messages"] = [{"role": "user", "content": req.prompt}]
        body["max_completion_tokens"] = req.output_tokens
    else:
        body["prompt"] = req.prompt
    return body


def chunk_tokens(data: dict[str, Any], counted: int) -> int:
    """How many output tokens a streamed chunk brings, `counted` having come before it.

    A chunk that carries the server's usage figures brings the tokens up to its count of output
    tokens (none, one, or several the server sent together); one without brings one token if it
    has text. So a server with running usage figures is counted token for token, and the final
    usage chunk of one without them adds the tokens whose chunks had no text."""
    usage = data.get("usage") or {}
    if isinstance(usage.get("completion_tokens"), int):
        return max(usage["completion_tokens"] - counted, 0)
    choice = (data.get("choices") or [{}])[0]
    text = choice["text"] if "text" in choice else (choice.get("delta") or {}).get("content")
    return 1 if text else 0


async def send(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], record: RequestRecord
) -> None:
    """Send one request and read its SSE stream into record, each token received at the time
    its chunk came (`chunk_tokens`). A request cancelled (Ctrl-C) midway is marked so and keeps
    the tokens it got."""
    record.arrival = time.monotonic_ns()
    try:
        async with session.post(url, json=body) as resp:
            if resp.status != 200:
                text = (await resp.text())[:200].replace("\n", " ")
                raise RuntimeError(f"HTTP {resp.status}: {text}")
            async for raw in resp.content:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                new = chunk_tokens(json.loads(payload), len(record.tokens))
                record.tokens.extend([time.monotonic_ns()] * new)
        if not record.tokens:
            raise RuntimeError("the response streamed no tokens")
    except (aiohttp.ClientError, RuntimeError, ValueError, TimeoutError) as e:
        record.status = STATUS_FAILED
        record.error = f"{type(e).__name__}: {e}"
    except asyncio.CancelledError:
        record.status = STATUS_CANCELLED
        record.error = "cancelled before it ended (interrupted)"
        raise
    finally:
        record.end = time.monotonic_ns()
