"""A tiny OpenAI-compatible streaming server with fixed delays, for `revati bench` tests.

    python openai_server.py PORT PREFILL_MS DECODE_MS [--never-ready] [--strict] [--fail]

Every completion sleeps PREFILL_MS before its first token and DECODE_MS before each next one,
streaming max_tokens tokens as server-sent events. Under revati the sleeps are virtual time, so
the client's TTFT and TPOT equal these delays. --never-ready answers GET /v1/models with 503;
--strict rejects a request with an `ignore_eos` field (HTTP 422, as `transformers serve` does);
--fail answers every completion with HTTP 400.
"""

import contextlib
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, PREFILL_S, DECODE_S = int(sys.argv[1]), float(sys.argv[2]) / 1e3, float(sys.argv[3]) / 1e3
NEVER_READY = "--never-ready" in sys.argv
STRICT, FAIL = "--strict" in sys.argv, "--fail" in sys.argv


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send_json(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if NEVER_READY or self.path != "/v1/models":
            self.send_error(503 if NEVER_READY else 404)
            return
        self.send_json(200, {"data": [{"id": "test-model"}]})

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if FAIL or (STRICT and "ignore_eos" in request):
            detail = "no such model" if FAIL else "Unexpected fields in the request: {'ignore_eos'}"
            self.send_json(400 if FAIL else 422, {"detail": detail})
            return
        chat = self.path == "/v1/chat/completions"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for i in range(request["max_tokens"]):
            time.sleep(PREFILL_S if i == 0 else DECODE_S)
            choice = {"delta": {"content": " tok"}} if chat else {"text": " tok"}
            self.wfile.write(f"data: {json.dumps({'choices': [choice]})}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")


print(f"serving on port {PORT}", flush=True)
with contextlib.suppress(KeyboardInterrupt):  # `revati bench` stops its server with SIGINT
    ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
