"""The participant `revati bench` runs inside the record: server, readiness, load, shutdown.

    python -m revati.serving.driver LOAD_JSON SERVER_LOG [SERVER_CMD ARGS...]

Without SERVER_CMD it only sends the load (a server some other participant runs). It needs
REVATI_RUN_DIR (set by the run) to hand its requests to the trace's writer. Errors are one line
on stderr and the error's exit code; Ctrl-C stops the server and exits 130, every finished
request already logged.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from revati.errors import RevatiError, RevatiRunError
from revati.serving.config import LoadConfig
from revati.serving.generator import run_load
from revati.serving.request_log import RequestLog, RequestRecord
from revati.serving.server import Server, wait_ready


def drive(config: LoadConfig, server_log: Path, server_argv: list[str]) -> list[RequestRecord]:
    """Start the server (if any), send the load, stop the server; returns the requests."""
    run_dir = os.environ.get("REVATI_RUN_DIR")
    if not run_dir:
        raise RevatiRunError(
            "the load generator runs inside a recorded run (REVATI_RUN_DIR is not set): use "
            "`revati bench -- SERVER_CMD`, or `revati bench --no-launch` as part of the command "
            "`revati record` runs"
        )
    planned, gaps = config.plan()
    log = RequestLog(run_dir)
    server = Server(server_argv, server_log) if server_argv else None
    try:
        listed = wait_ready(config.url, config.ready_timeout, server)
        model = config.model or listed
        return run_load(config, model, planned, gaps, log)
    finally:
        log.close()
        if server is not None:
            server.stop()


def main(argv: list[str]) -> int:
    config = LoadConfig.from_json(argv[0])
    try:
        drive(config, Path(argv[1]), argv[2:])
        return 0
    except RevatiError as e:
        print(f"revati: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("revati: interrupted; the server is stopped and the trace kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
