"""A loopback HTTP server that misbehaves on purpose, one way per path.

The download tests talk to it over real sockets so that yt-dlp's whole network stack
(requests, redirects, timeouts, partial reads) is exercised without the internet.
Routes are plain functions of (handler, server); the server counts hits per path so that
"fail once, then succeed" cases can mimic a flaky site across Snakemake retries.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

Route = Callable[["Handler", "MisbehavingServer"], None]


@dataclass
class Media:
    """Bytes the server hands out, made once per test session by a fixture."""

    mp4: bytes
    webm: bytes = b""
    mov: bytes = b""
    swf: bytes = b""
    noise: bytes = b""
    # served at /files/<name>: distinct videos, as distinct sources of a dataset would be
    files: dict[str, bytes] = field(default_factory=dict)
    # served at /hls/<variant>/<name>: an HLS playlist (index.m3u8) and its fragments
    hls: dict[str, bytes] = field(default_factory=dict)
    trickle_s: float = 5.0  # /trickle.mp4 sends one byte this often
    stall_s: float = 3.0  # longer than the timeout the tests configure
    slow_s: float = 1.0  # /slow.mp4 waits this long, so that parallel downloads overlap
    huge_bytes: int = 50 * 1024 * 1024
    # body bytes of the huge routes the client's socket took, by request target (the kernel's
    # buffers hold a few MB of them, unread, when the client stops)
    sent: collections.Counter[str] = field(default_factory=collections.Counter)
    ended: collections.Counter[str] = field(default_factory=collections.Counter)  # answered
    # keyed by the unquoted request target (path and query), so a fresh query string is a
    # fresh counter
    hits: collections.Counter[str] = field(default_factory=collections.Counter)
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    times: list[tuple[float, str]] = field(default_factory=list)  # (time.time(), target)
    active: int = 0  # requests being answered right now
    max_active: int = 0  # the most requests answered at once: what caps on parallelism bound


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.0 lets a body end by closing the connection, which the "no length" routes need
    protocol_version = "HTTP/1.0"
    server: MisbehavingServer

    def do_GET(self) -> None:  # noqa: N802 (name fixed by http.server)
        target = unquote(self.path)
        path = urlsplit(target).path
        media = self.server.media
        with self.server.lock:
            media.hits[target] += 1
            media.seen.append((target, dict(self.headers.items())))
            media.times.append((time.time(), target))
            media.active += 1
            media.max_active = max(media.max_active, media.active)
        route = self.server.route_for(path)
        try:
            # the client giving up first is something several tests provoke on purpose
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                route(self, self.server)
        finally:
            with self.server.lock:
                media.active -= 1
                media.ended[target] += 1

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # keep pytest output clean

    # helpers for routes
    def send_body(self, body: bytes, content_type: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_status(self, status: int, extra: dict[str, str] | None = None) -> None:
        body = f"<html><body>{status}</body></html>".encode()
        self.send_response(status)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _video(attr: str, content_type: str) -> Route:
    return lambda h, s: h.send_body(getattr(s.media, attr), content_type)


def _status(code: int) -> Route:
    return lambda h, s: h.send_status(code, {"Retry-After": "0"} if code in (429, 503) else None)


def _fail_first(code: int) -> Route:
    """Fail the first request to this path with `code`, then serve the mp4."""

    def route(h: Handler, s: MisbehavingServer) -> None:
        if s.media.hits[unquote(h.path)] == 1:
            h.send_status(code, {"Retry-After": "0"})
        else:
            h.send_body(s.media.mp4, "video/mp4")

    return route


def _stall_before_headers(h: Handler, s: MisbehavingServer) -> None:
    time.sleep(s.media.stall_s)
    h.send_body(s.media.mp4, "video/mp4")


def _send_half(h: Handler, body: bytes, claimed_length: int) -> None:
    """Announce `claimed_length` bytes of video, then send only the first half of `body`."""
    h.send_response(200)
    h.send_header("Content-Type", "video/mp4")
    h.send_header("Content-Length", str(claimed_length))
    h.end_headers()
    h.wfile.write(body[: len(body) // 2])
    h.wfile.flush()


def _stall_mid_body(h: Handler, s: MisbehavingServer) -> None:
    _send_half(h, s.media.mp4, len(s.media.mp4))
    time.sleep(s.media.stall_s)


def _truncated(h: Handler, s: MisbehavingServer) -> None:
    _send_half(h, s.media.mp4, len(s.media.mp4) + 100_000)
    h.close_connection = True


def _reset(h: Handler, s: MisbehavingServer) -> None:
    _send_half(h, s.media.mp4, len(s.media.mp4))
    # linger 0 turns close() into a TCP reset: the connection drops mid-file
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.connection.close()
    h.close_connection = True


def _drop_once(h: Handler, s: MisbehavingServer) -> None:
    """Drop the connection mid-file on the first request to this path, then serve."""
    if s.media.hits[unquote(h.path)] == 1:
        _reset(h, s)
    else:
        h.send_body(s.media.mp4, "video/mp4")


def _trickle(h: Handler, s: MisbehavingServer) -> None:
    """Promise the whole video, then send one byte every `trickle_s`: never a socket timeout."""
    h.send_response(200)
    h.send_header("Content-Type", "video/mp4")
    h.send_header("Content-Length", str(len(s.media.mp4)))
    h.end_headers()
    for i in range(len(s.media.mp4)):
        h.wfile.write(s.media.mp4[i : i + 1])
        h.wfile.flush()
        time.sleep(s.media.trickle_s)


def _hls(h: Handler, s: MisbehavingServer) -> None:
    """/hls/<variant>/<name>: `ok` serves every fragment, `missing` answers 404 for the second
    one, `short` cuts the second one off halfway under a Content-Length for all of it."""
    _, _, variant, name = urlsplit(unquote(h.path)).path.split("/", 3)
    body = s.media.hls.get(name)
    if body is None:
        h.send_status(404)
    elif name.endswith(".m3u8"):
        h.send_body(body, "application/vnd.apple.mpegurl")
    elif name == "seg1.ts" and variant == "missing":
        h.send_status(404)
    elif name == "seg1.ts" and variant == "short":
        _send_half(h, body, len(body))
        h.close_connection = True
    else:
        h.send_body(body, "video/mp2t")


def _slow(h: Handler, s: MisbehavingServer) -> None:
    time.sleep(s.media.slow_s)
    h.send_body(s.media.mp4, "video/mp4")


def _file(h: Handler, s: MisbehavingServer) -> None:
    name = urlsplit(unquote(h.path)).path.removeprefix("/files/")
    if name in s.media.files:
        h.send_body(s.media.files[name], "video/mp4")
    else:
        h.send_status(404)


_PAGE = b"<!DOCTYPE html><html><head><title>Sign</title></head><body>gone</body></html>"


def _html(h: Handler, s: MisbehavingServer) -> None:
    h.send_body(_PAGE, "text/html; charset=utf-8")


def _redirect_chain(h: Handler, s: MisbehavingServer) -> None:
    # /redirect/<n>/video.mp4 -> /redirect/<n-1>/video.mp4 -> ... -> /video.mp4
    remaining = int(h.path.split("/")[2])
    target = "/video.mp4" if remaining <= 1 else f"/redirect/{remaining - 1}/video.mp4"
    h.send_status(302, {"Location": target})


def _to_ftp(h: Handler, s: MisbehavingServer) -> None:
    h.send_status(302, {"Location": f"ftp://127.0.0.1:{s.server_port}/video.mp4"})


def _huge(with_length: bool) -> Route:
    """Stream generated bytes lazily so a 50 MB answer costs nothing unless read."""

    def route(h: Handler, s: MisbehavingServer) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "video/mp4")
        if with_length:
            h.send_header("Content-Length", str(s.media.huge_bytes))
        h.end_headers()
        chunk = bytes(range(256)) * 256
        target = unquote(h.path)
        for _ in range(s.media.huge_bytes // len(chunk)):
            h.wfile.write(chunk)
            s.media.sent[target] += len(chunk)  # only this handler's thread writes this key
        h.close_connection = True

    return route


def _needs_header(name: str, must_contain: str, attr: str, content_type: str) -> Route:
    def route(h: Handler, s: MisbehavingServer) -> None:
        if must_contain in (h.headers.get(name) or ""):
            h.send_body(getattr(s.media, attr), content_type)
        else:
            h.send_status(403)

    return route


ROUTES: dict[str, Route] = {
    "/video.mp4": _video("mp4", "video/mp4"),
    "/clip.webm": _video("webm", "video/webm"),
    "/clip.mov": _video("mov", "video/quicktime"),
    "/octet.mp4": _video("mp4", "application/octet-stream"),
    "/noise.mp4": _video("noise", "video/mp4"),
    "/gone404.mp4": _status(404),
    "/gone410.mp4": _status(410),
    "/forbidden.mp4": _status(403),
    "/always503.mp4": _status(503),
    "/flaky429.mp4": _fail_first(429),
    "/flaky503.mp4": _fail_first(503),
    "/drop-then-ok.mp4": _drop_once,
    "/trickle.mp4": _trickle,
    "/slow.mp4": _slow,
    "/stall-headers.mp4": _stall_before_headers,
    "/stall-body.mp4": _stall_mid_body,
    "/truncated.mp4": _truncated,
    "/reset.mp4": _reset,
    "/page.mp4": _html,
    # a site that labels its error page as video: only looking at the bytes tells
    "/html-as-video.mp4": lambda h, s: h.send_body(_PAGE, "video/mp4"),
    "/empty.mp4": lambda h, s: h.send_body(b"", "video/mp4"),
    "/to-ftp.mp4": _to_ftp,
    "/huge.mp4": _huge(with_length=True),
    "/huge-nolength.mp4": _huge(with_length=False),
    # aslpro serves Flash only to visitors that come from its own pages
    "/aslpro/sign.swf": _needs_header("Referer", "aslpro", "swf", "application/x-shockwave-flash"),
    "/cookie.mp4": _needs_header("Cookie", "sp_test=SECRET-value-4b1e", "mp4", "video/mp4"),
}


def request_target(url: str) -> str:
    """The path and query of one of the server's URLs: what `Media.hits` counts by."""
    return "/" + url.split("/", 3)[3]


class MisbehavingServer(ThreadingHTTPServer):
    daemon_threads = True  # stalled handlers must not keep the test process alive
    block_on_close = False

    def __init__(self, media: Media) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.media = media
        self.lock = threading.Lock()
        # a short poll keeps shutdown() from costing half a second per test
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self._unique = itertools.count()

    def route_for(self, path: str) -> Route:
        if path.startswith("/redirect/"):
            return _redirect_chain
        if path.startswith("/files/"):
            return _file
        if path.startswith("/hls/"):
            return _hls
        return ROUTES.get(path, _status(404))

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_port}{path}"

    def unique(self, path: str) -> str:
        """A URL that has not been requested yet: per-path hit counters start at zero."""
        return self.url(f"{path}?n={next(self._unique)}")

    def __enter__(self) -> MisbehavingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
