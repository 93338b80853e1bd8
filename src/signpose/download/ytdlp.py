"""The yt-dlp adapter: the only module that drives yt-dlp (its private parts through
signpose.compat.ytdlp).

One attempt is one call of `download`: for a URL only yt-dlp's generic extractor would take
(a direct file), yt-dlp downloads it without probing it first, so a source costs one request
per attempt; every other URL (YouTube, HLS playlists, known sites) is extracted, checked
against the caps and then downloaded. Requests go through a handler that checks every URL and
redirect hop (signpose.download.guard) and keeps the per-host pause; the whole attempt has a
deadline, however slowly the bytes come.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from signpose.compat import ytdlp as ytdlp_compat
from signpose.download.failures import (
    Dead,
    MachineError,
    Scrubber,
    TransientDownloadError,
    classify,
)
from signpose.download.guard import Pacer, check_url
from signpose.download.options import DownloadOptions
from signpose.sites import is_youtube
from signpose.video import ffmpeg_exe

# URLs whose extension says "a manifest, not a media file": extracted, never fetched directly
_MANIFESTS = {"m3u8", "mpd", "f4m", "ism"}
_FRAGMENTED = ("m3u8", "http_dash_segments", "f4m", "ism")


@dataclass(frozen=True)
class Runtime:
    """The JavaScript runtime yt-dlp is handed, as it sees it."""

    name: str  # deno, node, bun, quickjs, or none
    path: str | None
    version: str | None  # None when the binary is missing or does not run

    def describe(self) -> str:
        if self.name == "none":
            return "none (download.js_runtime is none: YouTube downloads may fail)"
        if self.version is None:
            return f"{self.name} MISSING (looked for {self.path or self.name + ' on PATH'})"
        return f"{self.name} {self.version} ({self.path})"


def js_runtime(opts: DownloadOptions) -> Runtime:
    """The configured runtime; deno defaults to the binary of the pinned `deno` wheel, so that
    neither PATH nor an activated environment matters (SLURM jobs start with the login one)."""
    import yt_dlp  # noqa: F401 - importing it registers the runtimes below
    from yt_dlp.globals import supported_js_runtimes

    name = opts.js_runtime
    if name == "none":
        return Runtime(name, None, None)
    path = opts.js_runtime_path
    if path is None and name == "deno":
        import deno

        path = deno.find_deno_bin()
    info = supported_js_runtimes.value[name](path=path).info
    if info is None:
        return Runtime(name, path, None)
    return Runtime(name, info.path, info.version)


def environment_line(opts: DownloadOptions) -> tuple[str, Runtime]:
    """One log line naming yt-dlp, the JavaScript runtime and the challenge scripts."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ejs_version = version("yt-dlp-ejs")
    except PackageNotFoundError:
        ejs_version = "MISSING"
    runtime = js_runtime(opts)
    line = (
        f"yt-dlp {version('yt-dlp')}; JavaScript runtime: {runtime.describe()}; "
        f"yt-dlp-ejs {ejs_version}"
    )
    return line, runtime


def check_runtime(url: str, runtime: Runtime) -> None:
    """A YouTube download without its configured runtime is the machine's problem."""
    if is_youtube(url) and runtime.name != "none" and runtime.version is None:
        raise MachineError(
            f"the JavaScript runtime {runtime.name} that YouTube needs is missing "
            f"({runtime.describe()}): install it or set download.js_runtime"
        )


def download(
    url: str,
    work: Path,
    opts: DownloadOptions,
    scrub: Scrubber,
    log: logging.Logger,
    pacer: Pacer,
    runtime: Runtime,
) -> tuple[Path, float | None]:
    """The raw media file for `url` inside `work`, and the duration the site reported."""
    from yt_dlp import YoutubeDL
    from yt_dlp.globals import plugin_dirs
    from yt_dlp.utils import DownloadCancelled, YoutubeDLError

    check_url(url, opts)
    # The Python API reads no config files, but it does load plugins from the user's
    # directories; a plugin could change any of the behaviour below, so none are loaded.
    plugin_dirs.value = []
    cap = _SizeCap(opts.max_bytes)
    params = _params(url, work, opts, scrub, log, cap, runtime)
    handler = _guarded_handler(opts, pacer)

    class _GuardedYDL(YoutubeDL):
        def build_request_director(self, handlers: Any, preferences: Any = None) -> Any:
            # Only our handler: requests for http(s) with per-hop checks. The stock set
            # would add urllib (file:, data:, ftp: schemes) and websockets.
            return super().build_request_director([handler], preferences)

    direct = _is_direct(url)  # outside the deadline: it is the same work on every machine
    try:
        with _GuardedYDL(params) as ydl, _deadline(opts.deadline_s):
            if direct:
                info: Mapping[str, Any] = _direct_info(url)
            else:
                info = ydl.extract_info(url, download=False) or {}
                info = _check_info(info, opts)
            try:
                ydl.process_ie_result(dict(info), download=True)
            except YoutubeDLError as err:
                verdict = classify(err, url, scrub)
                if cap.exceeded or isinstance(verdict, MachineError):
                    raise
                if not (cap.fragmented or _fragmented(info)):
                    raise verdict from err
                # a fragment that failed, for whatever reason, is a hole in the video
                raise TransientDownloadError(
                    f"incomplete: {verdict}", final_reason="incomplete"
                ) from err
    except _DeadlinePassed as err:
        raise TransientDownloadError(
            f"the attempt passed download.deadline_s ({opts.deadline_s:g} s)"
        ) from err
    except (Dead, TransientDownloadError):
        raise
    except DownloadCancelled as err:
        if cap.exceeded:
            raise Dead("too_large", cap.exceeded) from err
        raise TransientDownloadError(f"download cancelled: {err}") from err
    except YoutubeDLError as err:
        raise classify(err, url, scrub) from err
    duration = info.get("duration")
    reported = float(duration) if isinstance(duration, int | float) and duration > 0 else None
    return _downloaded_file(work, url), reported


def _fragmented(info: Mapping[str, Any]) -> bool:
    """Whether every format the site offers comes in fragments (HLS, DASH segments)."""
    formats = info.get("formats") or [info]
    return all(str(f.get("protocol", "")).startswith(_FRAGMENTED) for f in formats)


def _is_direct(url: str) -> bool:
    """True when only yt-dlp's generic extractor takes `url` and it does not name a manifest:
    a plain file, fetched with one request instead of a probe and a download."""
    from yt_dlp.extractor import gen_extractor_classes
    from yt_dlp.utils import determine_ext

    if determine_ext(url) in _MANIFESTS:
        return False
    first = next(ie for ie in gen_extractor_classes() if ie.suitable(url))
    return first.ie_key() == "Generic"


def _direct_info(url: str) -> dict[str, Any]:
    from yt_dlp.utils import determine_ext

    # what yt-dlp's generic extractor returns for a direct link, without asking the server
    return {
        "id": "raw",
        "title": "raw",
        "url": url,
        "ext": determine_ext(url, "unknown_video"),
        "direct": True,
        "extractor": "generic",
        "extractor_key": "Generic",
        "webpage_url": url,
    }


class _DeadlinePassed(BaseException):
    """Raised by the alarm; a BaseException so that no `except Exception` in yt-dlp eats it."""


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Interrupt the attempt after `seconds`, even inside a read that keeps receiving a byte
    now and then (the socket timeout restarts with every byte)."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("a download attempt runs in the main thread (its deadline is a signal)")

    def alarm(signum: int, frame: Any) -> None:
        raise _DeadlinePassed

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _params(
    url: str,
    work: Path,
    opts: DownloadOptions,
    scrub: Scrubber,
    log: logging.Logger,
    cap: _SizeCap,
    runtime: Runtime,
) -> dict[str, Any]:
    cookies = None
    if opts.cookies_file is not None:
        # yt-dlp writes the jar back when it closes; a private copy keeps the user's file
        # untouched and parallel jobs from racing on it
        if not opts.cookies_file.is_file():
            raise FileNotFoundError("download.cookies_file does not exist")
        cookies = work / "cookies.txt"
        shutil.copyfile(opts.cookies_file, cookies)
        scrub.add(str(cookies))
    host = urlsplit(url).hostname or ""
    js_runtimes = {} if runtime.name == "none" else {runtime.name: {"path": runtime.path}}
    return {
        "format": opts.format,
        "outtmpl": {"default": str(work / "raw.%(ext)s")},
        "noplaylist": True,
        "playlist_items": "1",
        "quiet": True,
        "noprogress": True,
        "color": {"stdout": "no_color", "stderr": "no_color"},
        "logger": _YdlLogger(log, scrub),
        "progress_hooks": [cap.hook],
        "socket_timeout": opts.timeout_s,
        # Snakemake's retries are the one retry policy; yt-dlp retrying inside a job would
        # multiply stalls by its default of 10
        "retries": 0,
        "fragment_retries": 0,
        "extractor_retries": 0,
        "file_access_retries": 0,
        # a missing fragment is a hole in the video, never something to skip
        "skip_unavailable_fragments": False,
        "ratelimit": opts.rate_limit,
        "sleep_interval_requests": opts.sleep_s or None,
        "sleep_interval": opts.sleep_s or None,
        "http_headers": opts.headers_for(host),
        "cookiefile": str(cookies) if cookies else None,
        "overwrites": True,
        "continuedl": False,
        # We normalise ourselves; yt-dlp's fixups and external downloaders would run ffmpeg
        # with its own networking, out of reach of the host checks
        "fixup": "never",
        "hls_prefer_native": True,
        "external_downloader": {},
        "ffmpeg_location": ffmpeg_exe(),
        "enable_file_urls": False,
        # handed over by path, never found on PATH; {} turns YouTube's challenges off
        "js_runtimes": js_runtimes,
        "remote_components": [],  # challenge scripts come from the pinned yt-dlp-ejs only
    }


def _guarded_handler(opts: DownloadOptions, pacer: Pacer) -> type:
    """yt-dlp's requests handler with our checks on the first URL and every redirect hop."""
    from yt_dlp.networking.exceptions import RequestError

    # yt-dlp's request director only passes RequestError through untouched; anything else
    # is reported as a bug in the handler, so our verdicts travel inside these
    class Refused(RequestError):
        def __init__(self, verdict: Dead | TransientDownloadError) -> None:
            super().__init__(msg=verdict.detail if isinstance(verdict, Dead) else str(verdict))
            self.verdict = verdict

    def guard(url: str) -> None:
        try:
            check_url(url, opts)
        except (Dead, TransientDownloadError) as verdict:
            raise Refused(verdict) from verdict

    @contextlib.contextmanager
    def around_request(url: str) -> Iterator[None]:
        guard(url)
        with pacer.turn(url):
            yield

    def check_redirect(response: Any, *args: Any, **kwargs: Any) -> Any:
        # requests calls response hooks before it follows a redirect, so the next hop is
        # checked before any connection to it is made
        if response.is_redirect:
            guard(urljoin(response.url, response.headers["location"]))
        return response

    def on_session(session: Any) -> None:
        session.max_redirects = opts.max_redirects
        session.hooks["response"].append(check_redirect)

    return ytdlp_compat.guarded_requests_handler(around_request, on_session)


def _check_info(info: Mapping[str, Any], opts: DownloadOptions) -> Mapping[str, Any]:
    """Refuse what the site already says is over the caps, before fetching a byte of it."""
    if info.get("_type") == "playlist":
        entries = list(info.get("entries") or [])
        if not entries:
            raise Dead("not_video", "a playlist without entries")
        info = entries[0]
    duration = info.get("duration")
    if _is_number(duration) and duration > opts.max_duration_s:
        raise Dead("too_long", f"{duration} s > max_duration_s {opts.max_duration_s}")
    size = info.get("filesize") or info.get("filesize_approx")
    if _is_number(size) and size > opts.max_bytes:
        raise Dead("too_large", f"{size} bytes > max_bytes {opts.max_bytes}")
    return info


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _downloaded_file(work: Path, url: str) -> Path:
    files = [p for p in work.glob("raw.*") if not p.name.endswith((".part", ".ytdl"))]
    if not files:
        # yt-dlp skipped the download without an error (a filter); treat as no video
        raise Dead("not_video", f"nothing was downloaded from {url}")
    return max(files, key=lambda p: p.stat().st_size)


class _SizeCap:
    """Progress hook that stops a download over max_bytes as soon as it is known to be (and
    notes whether it comes in fragments).

    yt-dlp's own max_filesize returns quietly and only looks at Content-Length; this sees
    both the announced size and the bytes as they arrive (chunked or lying servers).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.exceeded = ""
        self.fragmented = False  # the download came in fragments

    def hook(self, status: Mapping[str, Any]) -> None:
        from yt_dlp.utils import DownloadCancelled

        self.fragmented = self.fragmented or status.get("fragment_index") is not None
        announced = status.get("total_bytes") or status.get("total_bytes_estimate") or 0
        arrived = status.get("downloaded_bytes") or 0
        size = max(announced, arrived)
        if size > self.max_bytes:
            word = "announced" if announced >= arrived else "received"
            self.exceeded = f"{int(size)} bytes {word} > max_bytes {self.max_bytes}"
            raise DownloadCancelled(self.exceeded)


class _YdlLogger:
    """yt-dlp's logger interface onto ours, scrubbed. Its errors become our exceptions, and
    are logged once there, so here they are only warnings."""

    def __init__(self, log: logging.Logger, scrub: Scrubber) -> None:
        self._log = log
        self._scrub = scrub

    def debug(self, msg: str) -> None:
        self._log.debug("yt-dlp: %s", self._scrub(msg))

    def info(self, msg: str) -> None:
        self._log.debug("yt-dlp: %s", self._scrub(msg))

    def warning(self, msg: str) -> None:
        self._log.warning("yt-dlp: %s", self._scrub(msg))

    def error(self, msg: str) -> None:
        self._log.warning("yt-dlp: %s", self._scrub(msg))
