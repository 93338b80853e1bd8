"""A loopback server speaking the REST protocols of Gemini (generateContent) and of
OpenAI-compatible endpoints (chat/completions), so the real SDK clients can be pointed at it.

Each request is answered by `server.reply(key, prompt) -> (status, text, delay_s)`, which a
test sets; `text` is the model's answer for status 200, the error message otherwise. Every
request is recorded as (protocol, key, prompt).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Reply = Callable[[str, str], tuple[int, str, float]]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LLMServer

    def do_POST(self) -> None:  # noqa: N802 (name fixed by http.server)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        if ":generateContent" in self.path:
            protocol, key = "gemini", self.headers.get("x-goog-api-key", "")
            prompt = body["contents"][0]["parts"][0]["text"]
        else:
            protocol = "openai"
            key = self.headers.get("Authorization", "").removeprefix("Bearer ")
            prompt = body["messages"][-1]["content"]
        with self.server.lock:
            self.server.requests.append((protocol, key, prompt))
        status, text, delay = self.server.reply(key, prompt)
        time.sleep(delay)
        if status == 200:
            payload = gemini_answer(text) if protocol == "gemini" else openai_answer(text)
        else:
            payload = error(protocol, status, text)
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out first
            pass

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def gemini_answer(text: str) -> dict:
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                            "finishReason": "STOP", "index": 0}],
            "modelVersion": "loopback"}  # fmt: skip


def openai_answer(text: str) -> dict:
    return {"id": "chatcmpl-loopback", "object": "chat.completion", "created": 0,
            "model": "loopback",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}]}  # fmt: skip


def error(protocol: str, status: int, message: str) -> dict:
    if protocol == "gemini":
        names = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 401: "UNAUTHENTICATED"}
        return {"error": {"code": status, "message": message,
                          "status": names.get(status, "UNKNOWN")}}  # fmt: skip
    return {"error": {"message": message, "type": "error", "code": str(status)}}


class LLMServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str, str]] = []
        self.reply: Reply = lambda key, prompt: (200, "[]", 0.0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> LLMServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
