"""One streamed request to an OpenAI-compatible server (aiohttp), timed on the virtual clock."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from revati.serving.load import PlannedRequest
from revati.serving.request_log import STATUS_CANCELLED, STATUS_FAILED, RequestRecord

CHAT_ENDPOINT = "/v1/chat/completions"
COMPLETIONS_ENDPOINT = "/v1/completions"
ENDPOINTS = (COMPLETIONS_ENDPOINT, CHAT_ENDPOINT)


def request_body(
    endpoint: str, model: str | None, req: PlannedRequest, ignore_eos: bool = True
) -> dict[str, Any]:
    """The JSON body, streamed: the output length forced with max_tokens, and with ignore_eos
    where the server takes it (a server that rejects unknown fields may not)."""
    body: dict[str, Any] = {"max_tokens": req.output_tokens, "stream": True, "temperature": 0.0}
    if ignore_eos:
        body["ignore_eos"] = True
    if model:
        body["model"] = model
    if endpoint == CHAT_ENDPOINT:
        body["messages"] = [{"role": "user", "content": req.prompt}]
        body["max_completion_tokens"] = req.output_tokens
    else:
        body["prompt"] = req.prompt
    return body


def _chunk_text(data: dict[str, Any]) -> str:
    choices = data.get("choices") or [{}]
    choice = choices[0]
    if "text" in choice:
        return str(choice.get("text") or "")
    return str((choice.get("delta") or {}).get("content") or "")


async def send(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], record: RequestRecord
) -> None:
    """Send one request and read its SSE stream into record; every chunk with text is one
    token. A request cancelled (Ctrl-C) midway is marked so and keeps the tokens it got."""
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
                if _chunk_text(json.loads(payload)):
                    record.tokens.append(time.monotonic_ns())
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
