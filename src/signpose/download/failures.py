"""What a failed fetch means: a tombstone for the source, a retry, or the machine's fault.

Three outcomes, three types:
- `Dead`: the source is gone for good (404, private, not a video); it becomes a tombstone.
- `TransientDownloadError`: a later try may work (timeouts, 429, 5xx, a cut-off transfer, a
  bot check); the job fails so that Snakemake retries it, and after the last retry the source
  becomes a tombstone whose reason is `final_reason` (`gave_up`, or `incomplete` for media
  that arrived with holes).
- `MachineError`: the machine cannot reach anything (no DNS, no route, no JavaScript runtime);
  the job fails on every try and never leaves a tombstone, so that a compute node without
  internet does not bury a dataset.

yt-dlp is imported inside the functions that need it (planning imports this package).
"""

from __future__ import annotations

import contextlib
import errno
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from signpose.sites import is_youtube

_DETAIL_MAX = 300


class TransientDownloadError(RuntimeError):
    """The source may work on a later try: fail the job and let Snakemake retry it."""

    def __init__(self, message: str, final_reason: str = "gave_up", bot_check: bool = False):
        super().__init__(message)
        # the tombstone's reason if this is still the answer after the last retry
        self.final_reason = final_reason
        # YouTube asked for proof of humanity: the next try must wait long, and cookies help
        self.bot_check = bot_check


class MachineError(TransientDownloadError):
    """The machine, not the source, is at fault: fail the job, never write a tombstone."""


class Dead(Exception):
    """A permanent failure that ends as a tombstone with `reason`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Scrubber:
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


def one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _DETAIL_MAX else line[: _DETAIL_MAX - 3] + "..."


# ---------------------------------------------------------------------------------------------
# sorting yt-dlp's errors

_TRANSIENT = ""  # the reason class that means "fail the job, Snakemake retries it"
_BOT_CHECK = "bot_check"  # transient, with a long back-off and a hint about cookies
_INCOMPLETE = "incomplete"  # transient; a tombstone of this reason after the last retry
# Statuses in 4xx that sites also send for short outages or throttling
_TRANSIENT_STATUS = {408, 425, 429}
# connect() errors that say this machine has no way out, whatever the host
_NO_ROUTE = {errno.ENETUNREACH, errno.ENETDOWN}

# Matched in order against yt-dlp's message when no structured cause decides. The texts are
# YouTube's (yt-dlp passes its playability reasons on) and yt-dlp's own, as
# tests/test_download.py checks against the installed extractor. Transient rules come first:
# YouTube's bot checks and rate limits also say "sign in" and "unavailable".
_MESSAGE_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(pattern, re.IGNORECASE), reason)
    for pattern, reason in [
        (r"not a bot|captcha challenge", _BOT_CHECK),
        (r"try again later|rate.?limit|too many requests", _TRANSIENT),
        (r"not available on this app|watch on the latest version", _TRANSIENT),
        # a broken signature solver hides every format: the environment's problem, never the
        # video's (a missing runtime is caught before the first request)
        (r"requested format is not available|only images are available", _TRANSIENT),
        (r"fragment \d+ not found|the downloaded file is empty", _INCOMPLETE),
        (r"\[download\] got error", _TRANSIENT),  # yt-dlp gave up on a retryable transfer
        (r"private video|video is private", "private"),
        (r"confirm your age|age.restricted|inappropriate|age.verification", "age_restricted"),
        (r"members.only|join this channel", "members_only"),
        (r"your (?:country|location)|geo.?restrict", "geo_blocked"),
        (r"copyright", "copyright"),
        # removed by its uploader, or its account closed: gone for good, unlike a video that is
        # unavailable for no stated reason
        (r"has been removed|account associated with this video has been terminated", "removed"),
        (r"unsupported url", "not_video"),
        (r"did not get any data blocks", "empty"),
        (
            r"video unavailable|has been removed|no longer available|terminated|"
            r"does not exist|is not available",
            "unavailable",
        ),
    ]
]
COOKIES_HINT = (
    "YouTube asks this address to prove it is not a bot: set download.cookies_file to a "
    "cookies.txt exported from a browser logged in to YouTube, or lower the request rate "
    "(download.host_pause_s)"
)


def causes(err: BaseException) -> Iterator[BaseException]:
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


def classify(err: BaseException, url: str, scrub: Scrubber) -> Dead | TransientDownloadError:
    """What a yt-dlp error means for this source: a tombstone, or a retry."""
    message = one_line(scrub(str(err)).removeprefix("ERROR: "))
    found = _structured_reason(err, url)
    if isinstance(found, Dead | TransientDownloadError):
        return found  # one of our own verdicts, raised from inside yt-dlp's networking
    reason = found if found is not None else message_reason(message)
    if reason == _BOT_CHECK:
        return TransientDownloadError(f"{message} ({COOKIES_HINT})", bot_check=True)
    if reason == _INCOMPLETE:
        return TransientDownloadError(message, final_reason=_INCOMPLETE)
    if reason == _TRANSIENT:
        return TransientDownloadError(message)
    return Dead(reason, message)


def message_reason(message: str) -> str:
    for pattern, reason in _MESSAGE_RULES:
        if pattern.search(message):
            return reason
    # unknown errors are retried rather than lose the source to a guess; after the last
    # retry they end as `gave_up` tombstones with this message
    return _TRANSIENT


def _structured_reason(err: BaseException, url: str) -> Dead | TransientDownloadError | str | None:
    """A reason from the exception chain (verdicts, HTTP status, transfer errors), else None."""
    from yt_dlp.networking.exceptions import CertificateVerifyError, HTTPError, TransportError
    from yt_dlp.utils import ContentTooShortError, GeoRestrictedError

    chain = list(causes(err))
    for exc in chain:
        if isinstance(exc, OSError) and exc.errno in _NO_ROUTE:
            return MachineError(f"no route out of this machine ({exc.strerror})")
    for exc in chain:
        verdict = getattr(exc, "verdict", None)
        if isinstance(verdict, Dead | TransientDownloadError):
            return verdict
        if isinstance(exc, GeoRestrictedError):
            return "geo_blocked"
        if isinstance(exc, HTTPError):
            return _http_reason(exc, url)
        if isinstance(exc, CertificateVerifyError):
            return "tls_error"  # an expired or wrong certificate does not fix itself
        if isinstance(exc, TransportError | ContentTooShortError | OSError):
            # timeouts, resets, cut-off bodies: a dead domain was already caught by the host
            # check before yt-dlp ran, so what is left here is the network's fault
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
