"""One source URL becomes sources/<source_id>.mp4, or a tombstone, or a failed attempt.

http(s) URLs go through the yt-dlp adapter; local files (when allowed) and mirror files are
copied. Whatever arrives is verified and normalised before it is renamed onto the target, so
the target only ever holds a decodable video or a tombstone, and a failed attempt leaves
nothing at or beside it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from signpose import tombstone
from signpose.download.failures import Dead, Scrubber, TransientDownloadError, one_line
from signpose.download.options import STAGE, DownloadOptions
from signpose.paths import not_a_file
from signpose.sites import is_youtube

PACE_FOLDER = ".pace"  # beside the sources: the time of the last request to each host


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
    frames: int = 0  # decoded where the site reported a duration, else the container's claim
    origin: str = ""  # download, local, or mirror: where the bytes came from


def fetch_source(
    url: str,
    target: str | os.PathLike,
    opts: DownloadOptions,
    log: logging.Logger,
    mirror_file: Path | None = None,
) -> Outcome:
    """Fetch `url` (or copy `mirror_file`, which stands in for it) to `target`
    (sources/<source_id>.mp4): a verified mp4 or a tombstone.

    Returns the Outcome; raises TransientDownloadError when a later try may succeed (its
    subclass MachineError when this machine cannot download anything), in which case nothing
    is left at or beside `target`.
    """
    target = Path(target)
    scrub = Scrubber(opts.cookies_file)
    try:
        with _workdir(target) as work:
            outcome = _fetch(url.strip(), target, work, opts, scrub, log, mirror_file)
    except Dead as dead:
        return write_tombstone(target, dead.reason, scrub(dead.detail), scrub(url), log)
    except TransientDownloadError as err:
        # one line that names the URL and its problem: it is what the failed job shows
        message = f"{scrub(url.strip())}: {scrub(str(err))}"
        raise type(err)(message, err.final_reason, err.bot_check) from err
    log.info(
        "%s: ok (%s), %dx%d, %.3g fps, %.2f s, %d bytes",
        scrub(url),
        outcome.origin,
        outcome.width,
        outcome.height,
        outcome.fps,
        outcome.duration_s,
        outcome.bytes,
    )
    return outcome


def write_tombstone(
    target: Path, reason: str, detail: str, url: str, log: logging.Logger
) -> Outcome:
    detail = one_line(detail)
    tombstone.write(target, tombstone.Tombstone(stage=STAGE, reason=reason, detail=detail))
    log.warning("%s: dead (%s): %s", url, reason, detail)
    return Outcome(status="dead", reason=reason, detail=detail)


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


def _fetch(
    url: str,
    target: Path,
    work: Path,
    opts: DownloadOptions,
    scrub: Scrubber,
    log: logging.Logger,
    mirror_file: Path | None,
) -> Outcome:
    """The raw media for `url` inside `work`, copied or downloaded, then normalised."""
    from signpose.download import media

    if mirror_file is not None:
        raw = _copy_local(mirror_file, work, opts)
        return media.normalise(raw, target, opts, None, "mirror")
    if not url:
        raise Dead("bad_scheme", "empty URL")
    if "://" not in url and is_youtube(url):
        url = "https://" + url  # "youtube.com/watch?v=..." is a web address, not a path
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise Dead("bad_scheme", f"no host in {url!r}")
        raw, reported_s = _download(url, target, work, opts, scrub, log)
        return media.normalise(raw, target, opts, reported_s, "download")
    if scheme == "file" or (not scheme and not parts.netloc):
        if not opts.allow_local_files:
            raise Dead("local_not_allowed", f"local file URL {url!r} (allow_local_files is off)")
        raw = _copy_local(_local_path(url, opts), work, opts)
        return media.normalise(raw, target, opts, None, "local")
    raise Dead("bad_scheme", f"scheme {scheme or '(none)'!r} is not downloadable")


def _download(
    url: str, target: Path, work: Path, opts: DownloadOptions, scrub: Scrubber, log: logging.Logger
) -> tuple[Path, float | None]:
    from signpose.download import ytdlp
    from signpose.download.guard import Pacer

    line, runtime = ytdlp.environment_line(opts)
    log.info("%s", line)  # before the first request: why YouTube works or not, in one line
    ytdlp.check_runtime(url, runtime)
    pacer = Pacer(target.parent / PACE_FOLDER, opts)
    try:
        return ytdlp.download(url, work, opts, scrub, log, pacer, runtime)
    finally:
        if pacer.waited_s:
            log.info("waited %.1f s for the per-host pause (download.host_pause_s)", pacer.waited_s)


# ---------------------------------------------------------------------------------------------
# local files


def _local_path(url: str, opts: DownloadOptions) -> Path:
    parts = urlsplit(url)
    if parts.scheme.lower() == "file":
        if parts.netloc not in ("", "localhost"):
            raise Dead("bad_scheme", f"file URL on another host: {url!r}")
        path = Path(urllib.request.url2pathname(parts.path))
    else:
        path = Path(url)
    if not path.is_absolute():
        path = (opts.local_root or Path.cwd()) / path
    return path


def _copy_local(path: Path, work: Path, opts: DownloadOptions) -> Path:
    kind = not_a_file(path)
    if kind:  # exists, but copying it would hang (FIFO), fail or read a device
        raise Dead("local_not_a_file", f"{path}: {kind}, not a video file")
    if not path.is_file():
        raise Dead("local_missing", f"no such file: {path}")
    size = path.stat().st_size
    if size > opts.max_bytes:
        raise Dead("too_large", f"{size} bytes > max_bytes {opts.max_bytes}")
    raw = work / f"raw{path.suffix.lower()}"
    shutil.copyfile(path, raw)  # read, never moved: the original stays as it was
    return raw
