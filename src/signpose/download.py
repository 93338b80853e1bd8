"""Download stage: one source URL becomes sources/<source_id>.mp4, or a tombstone.

Every http(s) URL goes through yt-dlp's Python API (never a shell), with a request handler
that refuses private hosts, non-http(s) redirects and long redirect chains on every hop.
Whatever arrives (mp4, mov, webm, swf, mkv) is verified and normalised to an mp4 before it is
renamed onto the target, so the target only ever holds a decodable video or a tombstone.

Failures are sorted in two: transient ones (timeouts, 429, 5xx, cut-off transfers) raise
TransientDownloadError so that Snakemake's `retries` apply and the target stays absent;
permanent ones (404, "Video unavailable", HTML instead of video, undecodable, over the caps)
write a tombstone, because a dead link is data and must not stop a three-day run.

yt-dlp and OpenCV are imported inside the functions that need them: the Snakefile may import
this module for DownloadOptions at planning time, where their import cost would be paid for
nothing.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

from signpose import tombstone
from signpose.files import atomic_path
from signpose.paths import not_a_file
from signpose.sites import is_youtube

STAGE = "download"
# Keys of the workflow config's download section that steer Snakemake, not the fetch
WORKFLOW_KEYS = ("retries", "backoff_s", "max_parallel", "retry_reasons")
DEFAULT_FORMAT = "bv*[height<=720][ext=mp4]/bv*[height<=720]/b[height<=720]/bv*/b"
_DETAIL_MAX = 300
# A name that always resolves where DNS works (RFC 2606 reserves it for this kind of use)
_DNS_CANARY = "example.com"


class TransientDownloadError(RuntimeError):
    """The source may work on a later try: fail the job and let Snakemake retry it."""


class _Dead(Exception):
    """Internal: a permanent failure that ends as a tombstone with `reason`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# ---------------------------------------------------------------------------------------------
# options and outcome


@dataclass(frozen=True)
class DownloadOptions:
    format: str = DEFAULT_FORMAT
    max_bytes: int = 500_000_000
    max_duration_s: float = 1800.0
    rate_limit: int | None = None  # bytes per second, None for unlimited
    sleep_s: float = 0.0  # before each request yt-dlp makes and before each download
    timeout_s: float = 30.0  # socket timeout: connect and every read
    max_redirects: int = 5
    headers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # host suffix -> headers
    cookies_file: Path | None = None
    allow_local_files: bool = False
    local_root: Path | None = None
    allow_private_hosts: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> DownloadOptions:
        """Options from the workflow config's download section; unknown keys are an error."""
        config = dict(config or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"download: unknown option(s) {', '.join(unknown)}")
        for name, value in config.items():
            _check_option(name, value)
        for name in ("cookies_file", "local_root"):
            if config.get(name) is not None:
                config[name] = Path(config[name])
        if "headers" in config:
            config["headers"] = {k: dict(v) for k, v in config["headers"].items()}
        return cls(**config)

    def headers_for(self, host: str) -> dict[str, str]:
        """Headers of every suffix that matches `host`, the most specific suffix last."""
        host = host.lower().rstrip(".")

        def bare(suffix: str) -> str:
            return suffix.lower().strip(".")

        matching = [s for s in self.headers if host == bare(s) or host.endswith("." + bare(s))]
        merged: dict[str, str] = {}
        for suffix in sorted(matching, key=lambda s: len(bare(s))):
            merged.update(self.headers[suffix])
        return merged


def workflow_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """The fetch options (DownloadOptions.from_config's input) from the whole workflow config.

    Local paths in the metadata are relative to the metadata file.
    """
    options = {k: v for k, v in config["download"].items() if k not in WORKFLOW_KEYS}
    dataset = config["dataset"]
    options["allow_local_files"] = bool(dataset.get("allow_local_files", False))
    options["local_root"] = str(Path(dataset["metadata"]).parent.resolve())
    return options


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_headers(value: object) -> bool:
    if not isinstance(value, Mapping):
        return False
    return all(
        isinstance(suffix, str)
        and isinstance(headers, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
        for suffix, headers in value.items()
    )


_OPTION_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "format": (lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty string"),
    "max_bytes": (lambda v: _is_number(v) and v > 0, "a positive number"),
    "max_duration_s": (lambda v: _is_number(v) and v > 0, "a positive number"),
    "rate_limit": (lambda v: v is None or (_is_number(v) and v > 0), "null or a positive number"),
    "sleep_s": (lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    "timeout_s": (lambda v: _is_number(v) and v > 0, "a positive number"),
    "max_redirects": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "an integer >= 0",
    ),
    "headers": (_is_headers, "a mapping of host suffix to a mapping of header to string"),
    "cookies_file": (lambda v: v is None or isinstance(v, str | os.PathLike), "null or a path"),
    "allow_local_files": (lambda v: isinstance(v, bool), "true or false"),
    "local_root": (lambda v: v is None or isinstance(v, str | os.PathLike), "null or a path"),
    "allow_private_hosts": (lambda v: isinstance(v, bool), "true or false"),
}


def _check_option(name: str, value: object) -> None:
    ok, expected = _OPTION_CHECKS[name]
    if not ok(value):
        raise ValueError(f"download.{name}: expected {expected}, got {value!r}")


@dataclass(frozen=True)
class Outcome:
    status: Literal["ok", "dead"]
    reason: str = ""  # the tombstone's reason class when dead
    detail: str = ""
    bytes: int = 0  # size of the mp4 at the target
    duration_s: float = 0.0
    fps: float = 0.0
    width: int = 0
    height: int = 0
    frames: int = 0  # as the container claims: count by decoding where it matters


# ---------------------------------------------------------------------------------------------
# the stage


def fetch_source(
    url: str, target: str | os.PathLike, opts: DownloadOptions, log: logging.Logger
) -> Outcome:
    """Fetch `url` to `target` (sources/<source_id>.mp4): a verified mp4 or a tombstone.

    Returns the Outcome; raises TransientDownloadError when a later try may succeed, in which
    case nothing is left at or beside `target`.
    """
    target = Path(target)
    scrub = _Scrubber(opts.cookies_file)
    try:
        with _workdir(target) as work:
            raw = _obtain(url.strip(), work, opts, scrub, log)
            outcome = _normalise(raw, target, opts)
    except _Dead as dead:
        detail = _one_line(scrub(dead.detail))
        tombstone.write(target, tombstone.Tombstone(stage=STAGE, reason=dead.reason, detail=detail))
        log.warning("%s: dead (%s): %s", scrub(url), dead.reason, detail)
        return Outcome(status="dead", reason=dead.reason, detail=detail)
    except TransientDownloadError as err:
        # one line that names the URL and its problem: it is what the failed job shows
        message = f"{scrub(url.strip())}: {scrub(str(err))}"
        log.warning("transient failure, the job should be retried: %s", message)
        raise TransientDownloadError(message) from err
    log.info(
        "%s: ok, %dx%d, %.3g fps, %.2f s, %d bytes",
        scrub(url),
        outcome.width,
        outcome.height,
        outcome.fps,
        outcome.duration_s,
        outcome.bytes,
    )
    return outcome


def remove_tombstones(sources: str | os.PathLike, reasons: Collection[str]) -> list[Path]:
    """Delete the download tombstones under `sources` whose reason is one of `reasons`.

    This is how dead sources are retried on purpose: the next run sees their targets missing.
    Only a few bytes of each file are read, and real videos are never touched.
    """
    if not reasons:
        raise ValueError("download.retry_reasons is empty: name the reasons to retry")
    removed = []
    for path in sorted(Path(sources).glob("*.mp4")):
        tomb = tombstone.read(path)
        if tomb is not None and tomb.stage == STAGE and tomb.reason in reasons:
            path.unlink()
            removed.append(path)
    return removed


@contextlib.contextmanager
def _workdir(target: Path) -> Iterator[Path]:
    # Beside the target so the final rename stays on one filesystem; hidden and removed on
    # every way out so a failed try leaves nothing a later glob could mistake for a source.
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".work", dir=target.parent))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _obtain(
    url: str, work: Path, opts: DownloadOptions, scrub: _Scrubber, log: logging.Logger
) -> Path:
    """The raw media file for `url` inside `work`, copied or downloaded."""
    if not url:
        raise _Dead("bad_scheme", "empty URL")
    if "://" not in url and is_youtube(url):
        url = "https://" + url  # "youtube.com/watch?v=..." is a web address, not a path
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise _Dead("bad_scheme", f"no host in {url!r}")
        return _download(url, work, opts, scrub, log)
    if scheme == "file" or (not scheme and not parts.netloc):
        if not opts.allow_local_files:
            raise _Dead("local_not_allowed", f"local file URL {url!r} (allow_local_files is off)")
        return _copy_local(_local_path(url, opts), work, opts)
    raise _Dead("bad_scheme", f"scheme {scheme or '(none)'!r} is not downloadable")


# ---------------------------------------------------------------------------------------------
# local files


def _local_path(url: str, opts: DownloadOptions) -> Path:
    parts = urlsplit(url)
    if parts.scheme.lower() == "file":
        if parts.netloc not in ("", "localhost"):
            raise _Dead("bad_scheme", f"file URL on another host: {url!r}")
        path = Path(urllib.request.url2pathname(parts.path))
    else:
        path = Path(url)
    if not path.is_absolute():
        path = (opts.local_root or Path.cwd()) / path
    return path


def _copy_local(path: Path, work: Path, opts: DownloadOptions) -> Path:
    kind = not_a_file(path)
    if kind:  # exists, but copying it would hang (FIFO), fail or read a device
        raise _Dead("local_not_a_file", f"{path}: {kind}, not a video file")
    if not path.is_file():
        raise _Dead("local_missing", f"no such file: {path}")
    size = path.stat().st_size
    if size > opts.max_bytes:
        raise _Dead("too_large", f"{size} bytes > max_bytes {opts.max_bytes}")
    raw = work / f"raw{path.suffix.lower()}"
    shutil.copyfile(path, raw)
    return raw


# ---------------------------------------------------------------------------------------------
# host checks, shared by the first request and every redirect hop


def _check_url(url: str, opts: DownloadOptions) -> None:
    """Raise _Dead unless `url` is http(s) on a host we may contact."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise _Dead("bad_scheme", f"redirect or request to {parts.scheme or '(none)'}: {url}")
    host = parts.hostname
    if not host:
        raise _Dead("bad_scheme", f"no host in {url}")
    if opts.allow_private_hosts:
        return
    for address in _addresses(host, url):
        if not _is_public(address):
            raise _Dead("private_host", f"{host} resolves to non-public address {address}")


def _addresses(host: str, url: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    with contextlib.suppress(ValueError):
        return [ipaddress.ip_address(host)]
    if _proxied(url, host):
        # the proxy resolves names, often on a cluster whose nodes have no DNS of their own
        return []
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise _dns_failure(host, err) from err
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def _proxied(url: str, host: str) -> bool:
    scheme = urlsplit(url).scheme.lower()
    proxies = urllib.request.getproxies()
    return bool(proxies.get(scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(host)


def _dns_failure(host: str, err: socket.gaierror) -> Exception:
    # "No such name" means a gone domain only when the resolver works at all: without a
    # network every name is unknown, and tombstoning them all would lose the whole dataset
    if err.errno == socket.EAI_NONAME and _resolver_works():
        return _Dead("no_such_host", f"{host}: {err.strerror}")
    return TransientDownloadError(f"cannot resolve {host}: {err.strerror}")


def _resolver_works() -> bool:
    try:
        socket.getaddrinfo(_DNS_CANARY, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return True


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


# ---------------------------------------------------------------------------------------------
# yt-dlp


def _download(
    url: str, work: Path, opts: DownloadOptions, scrub: _Scrubber, log: logging.Logger
) -> Path:
    from yt_dlp import YoutubeDL
    from yt_dlp.globals import plugin_dirs
    from yt_dlp.utils import DownloadCancelled, YoutubeDLError

    _check_url(url, opts)
    # The Python API reads no config files, but it does load plugins from the user's
    # directories; a plugin could change any of the behaviour below, so none are loaded.
    plugin_dirs.value = []
    cap = _SizeCap(opts.max_bytes)
    params = _ydl_params(url, work, opts, scrub, log, cap)

    class _GuardedYDL(YoutubeDL):
        def build_request_director(self, handlers: Any, preferences: Any = None) -> Any:
            # Only our handler: requests for http(s) with per-hop checks. The stock set
            # would add urllib (file:, data:, ftp: schemes) and websockets.
            return super().build_request_director([_guarded_handler(opts)], preferences)

    try:
        with _GuardedYDL(params) as ydl:
            info = ydl.extract_info(url, download=False)
            _check_info(info or {}, opts)
            ydl.process_ie_result(info, download=True)
    except _Dead:
        raise
    except DownloadCancelled as err:
        if cap.exceeded:
            raise _Dead("too_large", cap.exceeded) from err
        raise TransientDownloadError(f"download cancelled: {err}") from err
    except YoutubeDLError as err:
        raise _classify(err, url, scrub) from err
    return _downloaded_file(work, url)


def _ydl_params(
    url: str,
    work: Path,
    opts: DownloadOptions,
    scrub: _Scrubber,
    log: logging.Logger,
    cap: _SizeCap,
) -> dict[str, Any]:
    import imageio_ffmpeg

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
        "ffmpeg_location": imageio_ffmpeg.get_ffmpeg_exe(),
        "enable_file_urls": False,
    }


def _guarded_handler(opts: DownloadOptions) -> type:
    """yt-dlp's requests handler with our checks on the first URL and every redirect hop."""
    from yt_dlp.networking._requests import RequestsRH
    from yt_dlp.networking.exceptions import RequestError, TransportError

    # yt-dlp's request director only passes RequestError through untouched; anything else
    # is reported as a bug in the handler, so our verdicts travel inside these
    class RefusedRequest(RequestError):
        def __init__(self, dead: _Dead) -> None:
            super().__init__(msg=dead.detail)
            self.dead = dead

    def guard(url: str) -> None:
        try:
            _check_url(url, opts)
        except _Dead as dead:
            raise RefusedRequest(dead) from dead
        except TransientDownloadError as err:
            raise TransportError(msg=str(err)) from err

    def check_redirect(response: Any, *args: Any, **kwargs: Any) -> Any:
        # requests calls response hooks before it follows a redirect, so the next hop is
        # checked before any connection to it is made
        if response.is_redirect:
            guard(urljoin(response.url, response.headers["location"]))
        return response

    class GuardedRequestsRH(RequestsRH):
        def _send(self, request: Any) -> Any:
            guard(request.url)
            return super()._send(request)

        def _create_instance(self, cookiejar: Any, legacy_ssl_support: Any = None) -> Any:
            session = super()._create_instance(cookiejar, legacy_ssl_support)
            session.max_redirects = opts.max_redirects
            session.hooks["response"].append(check_redirect)
            return session

    return GuardedRequestsRH


def _check_info(info: Mapping[str, Any], opts: DownloadOptions) -> None:
    """Refuse what the site already says is over the caps, before fetching a byte of it."""
    if info.get("_type") == "playlist":
        entries = list(info.get("entries") or [])
        if not entries:
            raise _Dead("not_video", "a playlist without entries")
        info = entries[0]
    duration = info.get("duration")
    if _is_number(duration) and duration > opts.max_duration_s:
        raise _Dead("too_long", f"{duration} s > max_duration_s {opts.max_duration_s}")
    size = info.get("filesize") or info.get("filesize_approx")
    if _is_number(size) and size > opts.max_bytes:
        raise _Dead("too_large", f"{size} bytes > max_bytes {opts.max_bytes}")


def _downloaded_file(work: Path, url: str) -> Path:
    files = [p for p in work.glob("raw.*") if not p.name.endswith((".part", ".ytdl"))]
    if not files:
        # yt-dlp skipped the download without an error (a filter); treat as no video
        raise _Dead("not_video", f"nothing was downloaded from {url}")
    return max(files, key=lambda p: p.stat().st_size)


class _SizeCap:
    """Progress hook that stops a download over max_bytes as soon as it is known to be.

    yt-dlp's own max_filesize returns quietly and only looks at Content-Length; this sees
    both the announced size and the bytes as they arrive (chunked or lying servers).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.exceeded = ""

    def hook(self, status: Mapping[str, Any]) -> None:
        from yt_dlp.utils import DownloadCancelled

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

    def __init__(self, log: logging.Logger, scrub: _Scrubber) -> None:
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


class _Scrubber:
    """Removes secrets (the cookies file's paths) from anything we log or record."""

    def __init__(self, cookies_file: Path | None) -> None:
        self._secrets: list[str] = []
        if cookies_file is not None:
            self.add(str(cookies_file))
            with contextlib.suppress(OSError):
                self.add(str(cookies_file.resolve()))

    def add(self, secret: str) -> None:
        if secret and secret not in self._secrets:
            # longest first so a path is not half-replaced by one of its prefixes
            self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<cookies>")
        return text


# ---------------------------------------------------------------------------------------------
# sorting yt-dlp's errors

_TRANSIENT = ""  # the reason class that means "fail the job, Snakemake retries it"
# Statuses in 4xx that sites also send for short outages or throttling
_TRANSIENT_STATUS = {408, 425, 429}

# Matched in order against yt-dlp's message when no structured cause decides. Transient rules
# come first: YouTube's bot checks and rate limits also say "sign in" and "unavailable".
_MESSAGE_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(pattern, re.IGNORECASE), reason)
    for pattern, reason in [
        (r"not a bot|captcha|try again later|rate.?limit|too many requests", _TRANSIENT),
        (r"not available on this app|watch on the latest version", _TRANSIENT),
        # a missing JavaScript runtime or a broken signature solver hides every format: the
        # environment's problem, never the video's
        (r"requested format is not available|only images are available", _TRANSIENT),
        (r"\[download\] got error", _TRANSIENT),  # yt-dlp gave up on a retryable transfer
        (r"private video|video is private", "private"),
        (r"confirm your age|age.restricted|inappropriate", "age_restricted"),
        (r"members.only|join this channel", "members_only"),
        (r"your (?:country|location)|geo.?restrict", "geo_blocked"),
        (r"unsupported url", "not_video"),
        (r"did not get any data blocks", "empty"),
        (
            r"video unavailable|has been removed|no longer available|terminated|"
            r"does not exist|is not available|copyright",
            "unavailable",
        ),
    ]
]


def _causes(err: BaseException) -> Iterator[BaseException]:
    """`err` and everything it wraps: yt-dlp nests exc_info, cause, __cause__, __context__."""
    seen: set[int] = set()
    todo: list[BaseException] = [err]
    while todo:
        exc = todo.pop(0)
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        yield exc
        exc_info = getattr(exc, "exc_info", None)
        nested = [
            exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None,
            getattr(exc, "cause", None),
            exc.__cause__,
            exc.__context__,
        ]
        todo.extend(n for n in nested if isinstance(n, BaseException))


def _classify(err: BaseException, url: str, scrub: _Scrubber) -> _Dead | TransientDownloadError:
    """What a yt-dlp error means for this source: a tombstone, or a retry."""
    message = _one_line(scrub(str(err)).removeprefix("ERROR: "))
    found = _structured_reason(err, url)
    if isinstance(found, _Dead):
        return found  # one of our own refusals, raised from inside yt-dlp's networking
    reason = found if found is not None else _message_reason(message)
    if reason == _TRANSIENT:
        return TransientDownloadError(message)
    return _Dead(reason, message)


def _message_reason(message: str) -> str:
    for pattern, reason in _MESSAGE_RULES:
        if pattern.search(message):
            return reason
    # unknown errors fail the job loudly rather than lose the source to a guess
    return _TRANSIENT


def _structured_reason(err: BaseException, url: str) -> _Dead | str | None:
    """A reason from the exception chain (refusals, HTTP status, transfer errors), else None."""
    from yt_dlp.networking.exceptions import (
        CertificateVerifyError,
        HTTPError,
        TransportError,
    )
    from yt_dlp.utils import ContentTooShortError

    for exc in _causes(err):
        dead = getattr(exc, "dead", None)
        if isinstance(dead, _Dead):
            return dead
        if isinstance(exc, HTTPError):
            return _http_reason(exc, url)
        if isinstance(exc, CertificateVerifyError):
            return "tls_error"  # an expired or wrong certificate does not fix itself
        if isinstance(exc, TransportError | ContentTooShortError | OSError):
            # timeouts, resets, cut-off bodies, DNS: a dead domain was already caught by
            # the host check before yt-dlp ran, so what is left here is the network's fault
            return _TRANSIENT
    return None


def _http_reason(exc: Any, url: str) -> str:
    """Reason class for an HTTP error status."""
    status = int(exc.status)
    if getattr(exc, "redirect_loop", False):
        return "too_many_redirects"
    if status in _TRANSIENT_STATUS or not 400 <= status < 500:
        return _TRANSIENT
    if is_youtube(url):
        # YouTube reports dead videos in its player response, which yt-dlp turns into
        # messages; a 403/404 from its video servers is an expired or throttled stream URL
        return _TRANSIENT
    return f"http_{status}"


# ---------------------------------------------------------------------------------------------
# verify and normalise


@dataclass(frozen=True)
class _Probe:
    codec: str  # codec of the first video stream, e.g. "h264"
    duration_s: float | None  # from the container; None when it does not say (swf)


_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_VIDEO_STREAM = re.compile(r"Stream #0:\d+.*?: Video: (\w+)")
_HTML_START = (b"<!doctype html", b"<html", b"<head", b"<?xml")


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _probe(path: Path) -> _Probe:
    """Codec and duration as ffmpeg reads them from the headers (no decoding)."""
    # -i with no output makes ffmpeg print the stream list and exit 1; that is the probe
    run = subprocess.run(
        [_ffmpeg(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
        check=False,
    )
    stream = _VIDEO_STREAM.search(run.stderr)
    if stream is None:
        last = run.stderr.strip().splitlines()[-1:] or ["no video stream"]
        raise _Dead("undecodable", f"no video stream: {last[0]}")
    duration = _DURATION.search(run.stderr)
    seconds = None
    if duration is not None:
        h, m, s = duration.groups()
        seconds = int(h) * 3600 + int(m) * 60 + float(s)
    return _Probe(codec=stream.group(1), duration_s=seconds)


def _looks_like_html(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(1024).lstrip().lower()
    return head.startswith(_HTML_START) or b"<html" in head


def _is_mp4_brand(path: Path) -> bool:
    # QuickTime (.mov) shares ffmpeg's demuxer with mp4; its ftyp brand is "qt  " or missing
    with open(path, "rb") as f:
        head = f.read(12)
    return head[4:8] == b"ftyp" and head[8:12] != b"qt  "


def _normalise(raw: Path, target: Path, opts: DownloadOptions) -> Outcome:
    """Turn the raw file into a verified mp4 at `target`, atomically."""
    if raw.stat().st_size == 0:
        raise _Dead("empty", "the source is an empty file")
    if _looks_like_html(raw):
        raise _Dead("not_video", "got an HTML page instead of a video")
    probe = _probe(raw)
    if probe.duration_s is not None and probe.duration_s > opts.max_duration_s:
        raise _Dead("too_long", f"{probe.duration_s:.1f} s > max_duration_s {opts.max_duration_s}")
    with atomic_path(target) as tmp:
        if probe.codec == "h264" and _is_mp4_brand(raw):
            os.replace(raw, tmp)  # already what we want: keep the bytes
        elif probe.codec == "h264":
            _remux_or_transcode(raw, tmp, probe, opts)
        else:
            _transcode(raw, tmp, probe, opts)
        outcome = _verify(tmp, opts)
    return outcome


# fmt: off
_REMUX = ["-map", "0:v:0", "-c:v", "copy", "-an", "-sn", "-dn"]
_ENCODE = [
    "-map", "0:v:0", "-an", "-sn", "-dn",
    "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
    # x264 with yuv420p needs even sides; crop at most one pixel rather than rescale
    "-vf", "crop=trunc(iw/2)*2:trunc(ih/2)*2",
]
# fmt: on


def _remux_or_transcode(raw: Path, out: Path, probe: _Probe, opts: DownloadOptions) -> None:
    if _run_ffmpeg(raw, out, _REMUX, probe, opts) != 0:
        # h264 in a container that does not carry cleanly into mp4 (odd timestamps in flv):
        # decoding and encoding again always works where the stream itself is sound
        _transcode(raw, out, probe, opts)


def _transcode(raw: Path, out: Path, probe: _Probe, opts: DownloadOptions) -> None:
    if _run_ffmpeg(raw, out, _ENCODE, probe, opts) != 0:
        raise _Dead("undecodable", f"ffmpeg could not decode the {probe.codec} stream")


def _run_ffmpeg(raw: Path, out: Path, args: list[str], probe: _Probe, opts: DownloadOptions) -> int:
    command = [_ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-y", "-i", str(raw)]
    command += [*args, "-movflags", "+faststart", "-f", "mp4", str(out)]
    # generous: a stuck ffmpeg must end, a slow machine must not tombstone good videos
    limit = 120 + 4 * (probe.duration_s or opts.max_duration_s)
    try:
        run = subprocess.run(command, capture_output=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired as err:
        raise TransientDownloadError(f"ffmpeg took over {limit:.0f} s on {raw.name}") from err
    return run.returncode


def _verify(path: Path, opts: DownloadOptions) -> Outcome:
    """The outcome for a finished mp4, or _Dead when it does not decode or is out of range."""
    import cv2

    probe = _probe(path)
    capture = cv2.VideoCapture(str(path))
    try:
        ok = capture.isOpened() and capture.read()[0]
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        frames = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        capture.release()
    if not ok:
        raise _Dead("undecodable", "no frame could be decoded")
    duration = probe.duration_s
    if duration is None and fps > 0:
        duration = frames / fps
    if not duration or duration <= 0:
        raise _Dead("undecodable", "the video has no duration")
    if duration > opts.max_duration_s:
        raise _Dead("too_long", f"{duration:.1f} s > max_duration_s {opts.max_duration_s}")
    return Outcome(
        status="ok",
        bytes=path.stat().st_size,
        duration_s=round(duration, 3),
        fps=fps,
        width=width,
        height=height,
        frames=frames,
    )


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _DETAIL_MAX else line[: _DETAIL_MAX - 3] + "..."
