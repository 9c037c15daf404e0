"""A tiny OpenAI-compatible streaming server with fixed delays, for `revati bench` tests.

    python openai_server.py PORT PREFILL_MS DECODE_MS [--never-ready] [--strict] [--fail]
                            [--terse]

Every completion sleeps PREFILL_MS before its first token and DECODE_MS before each next one,
streaming max_tokens tokens as server-sent events, with the usage figures `stream_options` asks
for (`include_usage`: a last chunk with the count; vLLM's `continuous_usage_stats`: the running
count on every chunk). Under revati the sleeps are virtual time, so the client's TTFT and TPOT
equal these delays. --never-ready answers GET /v1/models with 503; --strict rejects fields
OpenAI's API does not have (`ignore_eos`, `continuous_usage_stats`: HTTP 422, as `transformers
serve` does the first); --fail answers every completion with HTTP 400; --terse streams every
second token without text and the last two tokens in one chunk (as vLLM does with tokens that
decode to nothing, and when it falls behind).
"""

import contextlib
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, PREFILL_S, DECODE_S = int(sys.argv[1]), float(sys.argv[2]) / 1e3, float(sys.argv[3]) / 1e3
NEVER_READY = "--never-ready" in sys.argv
STRICT, FAIL, TERSE = "--strict" in sys.argv, "--fail" in sys.argv, "--terse" in sys.argv
EXTENSIONS = ("ignore_eos", "continuous_usage_stats")


def chunks(n):
    """(tokens it brings, text) of each chunk of an n-token answer."""
    if not TERSE:
        return [(1, " tok")] * n
    texts = [(1, "" if i % 2 else " tok") for i in range(n)]
    return texts[:-2] + [(2, " tok tok")] if n > 2 else texts


def unknown_fields(request):
    fields = {*request, *(request.get("stream_options") or {})}
    return [f for f in EXTENSIONS if f in fields] if STRICT else []


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
        if FAIL or unknown_fields(request):
            detail = f"Unexpected fields in the request: {unknown_fields(request)}"
            self.send_json(400 if FAIL else 422, {"detail": "no such model" if FAIL else detail})
            return
        options = request.get("stream_options") or {}
        chat = self.path == "/v1/chat/completions"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        sent = 0
        for tokens, text in chunks(request["max_tokens"]):
            for _ in range(tokens):
                time.sleep(PREFILL_S if sent == 0 else DECODE_S)
                sent += 1
            chunk = {"choices": [{"delta": {"content": text}} if chat else {"text": text}]}
            if options.get("continuous_usage_stats"):
                chunk["usage"] = {"completion_tokens": sent}
            self.send_event(chunk)
        if options.get("include_usage"):
            self.send_event({"choices": [], "usage": {"completion_tokens": sent}})
        self.wfile.write(b"data: [DONE]\n\n")

    def send_event(self, chunk):
        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.flush()


print(f"serving on port {PORT}", flush=True)
with contextlib.suppress(KeyboardInterrupt):  # `revati bench` stops its server with SIGINT
    ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
