"""The load generator: sends the planned requests on their arrival schedule, logs each result.

It runs inside the run as a participant: `asyncio.sleep` and the HTTP waits block in
intercepted epoll calls, so the gaps between arrivals and every latency are virtual time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
from rich.console import Console
from rich.progress import Progress

from revati.errors import RevatiRunError
from revati.serving.client import EXTENSIONS, request_body, send
from revati.serving.config import LoadConfig
from revati.serving.load import PlannedRequest
from revati.serving.request_log import STATUS_OK, RequestLog, RequestRecord

# A streamed response may take as long as the server needs: no total timeout.
NO_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=60)

KEEPALIVE_S = 1.0  # seconds an idle connection stays in the pool


async def _test_request(
    session: aiohttp.ClientSession, url: str, endpoint: str, model: str | None, req: PlannedRequest
) -> tuple[str, ...]:
    """Send the first request once before the load, as vLLM's benchmark does, so that a wrong
    URL, endpoint or model fails at once; it is not part of the results. Returns the request
    extensions the server takes: one the server's error names is dropped and the request sent
    again (a server that rejects unknown fields gets a plain OpenAI request)."""
    extensions: tuple[str, ...] = EXTENSIONS
    while True:
        record = RequestRecord(0, 0, req.prompt_tokens)
        await send(session, url, request_body(endpoint, model, req, extensions), record)
        if record.status == STATUS_OK:
            return extensions
        kept = tuple(e for e in extensions if e not in (record.error or ""))
        if kept == extensions:
            break
        extensions = kept
    raise RevatiRunError(
        f"the server failed the test request sent before the load ({url}: {record.error}); "
        "check --url, --endpoint and --model"
    )


async def _paced(
    config: LoadConfig,
    model: str | None,
    planned: list[PlannedRequest],
    gaps: list[float],
    on_done: Callable[[RequestRecord], None],
) -> None:
    limit = asyncio.Semaphore(config.max_concurrency or len(planned) or 1)
    url = config.url.rstrip("/") + config.endpoint
    # An idle pooled connection is dropped after 1 s, before the server's keep-alive timeout
    # (uvicorn's, vLLM's and transformers' server: 5 s) can close it under a request just being
    # sent on it, which aiohttp reports as ServerDisconnectedError (seen once in 200 requests).
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_S)

    async def one(
        session: aiohttp.ClientSession, req: PlannedRequest, extensions: tuple[str, ...]
    ) -> None:
        async with limit:
            record = RequestRecord(0, 0, req.prompt_tokens)
            try:
                body = request_body(config.endpoint, model, req, extensions)
                await send(session, url, body, record)
            finally:
                on_done(record)

    async with aiohttp.ClientSession(timeout=NO_TIMEOUT, connector=connector) as session:
        extensions = (
            await _test_request(session, url, config.endpoint, model, planned[0]) if planned else ()
        )
        tasks = []
        for req, gap in zip(planned, gaps, strict=True):
            if gap > 0:
                await asyncio.sleep(gap)
            tasks.append(asyncio.create_task(one(session, req, extensions)))
        await asyncio.gather(*tasks)


def run_load(
    config: LoadConfig,
    model: str | None,
    planned: list[PlannedRequest],
    gaps: list[float],
    log: RequestLog,
) -> list[RequestRecord]:
    """Send every request, writing each to the log as it finishes; returns them all."""
    records: list[RequestRecord] = []
    console = Console(stderr=True)
    with Progress(console=console, disable=not console.is_terminal, transient=True) as progress:
        bar = progress.add_task("requests", total=len(planned))

        def on_done(record: RequestRecord) -> None:
            log.write(record)
            records.append(record)
            progress.advance(bar)

        asyncio.run(_paced(config, model, planned, gaps, on_done))
    return records
