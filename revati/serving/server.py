"""The server under test: launched as a participant, awaited until it answers, stopped gently."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import aiohttp

from revati.errors import RevatiRunError

READY_PATHS = ("/v1/models", "/health")
POLL_S = 0.5  # virtual seconds between readiness checks
STOP_STEPS = ((signal.SIGINT, 30.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0))
LAST_LINES = 8
JOIN_TIMEOUT_S = 60.0  # a server command that never joins the run (a static binary) is not held


class Server:
    """SERVER_CMD in its own process group, its output in `log_path`."""

    def __init__(self, argv: list[str], log_path: Path) -> None:
        self.argv = argv
        self.log_path = log_path
        with log_path.open("wb") as log:
            try:
                self.proc = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            except OSError as e:
                raise RevatiRunError(f"{argv[0]}: cannot start the server: {e.strerror}") from e
        self._await_join()

    def _await_join(self) -> None:
        """Stay running until the server's process has joined the run (its ring is in the run
        directory) or ended. A child that Popen starts with vfork does not count as running
        before its new image joins; were the load generator to wait for it in virtual time
        meanwhile, the clock could jump through the server's start-up."""
        run_dir = os.environ.get("REVATI_RUN_DIR")
        if not run_dir:
            return
        ring = f"ring-{self.proc.pid}-"
        deadline = time.monotonic() + JOIN_TIMEOUT_S  # the clock runs while this thread does
        while self.proc.poll() is None and time.monotonic() < deadline:
            try:
                if any(name.startswith(ring) for name in os.listdir(run_dir)):
                    return
            except OSError:
                return
            os.sched_yield()

    def last_output(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        tail = " | ".join(line.strip() for line in lines[-LAST_LINES:])
        return f"; its last output: {tail}" if tail else "; it printed nothing"

    def check_running(self, url: str) -> None:
        code = self.proc.poll()
        if code is not None:
            raise RevatiRunError(
                f"the server `{self.argv[0]}` exited with status {code} before it answered "
                f"{url}{READY_PATHS[0]}{self.last_output()} (full output: {self.log_path})"
            )

    def describe(self) -> str:
        return f"the server `{self.argv[0]}`"

    def stop(self) -> int:
        """SIGINT, then SIGTERM, then SIGKILL to its process group, each after a timeout."""
        for sig, wait_s in STOP_STEPS:
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait_s)
            except subprocess.TimeoutExpired:
                continue
        return self.proc.wait()


def wait_ready(url: str, timeout_s: float, server: Server | None) -> str | None:
    """Poll url until the server answers (failing early if `server` exits); returns the first
    model it lists (None if it lists none)."""
    return asyncio.run(_wait_ready(url.rstrip("/"), timeout_s, server))


async def _wait_ready(url: str, timeout_s: float, server: Server | None) -> str | None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        while True:
            if server is not None:
                server.check_running(url)
            for path in READY_PATHS:
                answer = await _probe(session, url + path)
                if answer is not False:
                    return answer if isinstance(answer, str) else None
            if time.monotonic() > deadline:
                who = server.describe() if server else "the server"
                output = server.last_output() if server else ""
                raise RevatiRunError(
                    f"{who} did not answer {url}{READY_PATHS[0]} within {timeout_s:g} s of "
                    f"virtual time (--ready-timeout){output}"
                )
            await asyncio.sleep(POLL_S)


async def _probe(session: aiohttp.ClientSession, url: str) -> str | None | bool:
    """The first model listed at url (None if it lists none), False if it does not answer 200."""
    try:
        async with session.get(url) as resp:
            if resp.status != 200:
                return False
            try:
                data = await resp.json(content_type=None)
                return str(data["data"][0]["id"])
            except (ValueError, KeyError, IndexError, TypeError):
                return None
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False
