"""Source identity: which file under sources/ a URL downloads to.

Snakemake imports this at planning time for every record (21,000 for WLASL2000), so it stays
on the standard library: no yt-dlp, no OpenCV. Many WLASL instances share one YouTube video
under different URL spellings; keying them by the video id downloads each video once.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qs, urlsplit

_ID_CHARS = "A-Za-z0-9_-"
# An id is exactly 11 id characters; a junk tail that cannot belong to an id (`%20`, `)`)
# is tolerated because hand-edited metadata has it, a 12th id character is not.
_YOUTUBE_ID = re.compile(rf"([{_ID_CHARS}]{{11}})(?![{_ID_CHARS}])")
_YOUTUBE_DOMAINS = ("youtube.com", "youtube-nocookie.com")
_SHORT_HOST = "youtu.be"
# /embed/<id>, /shorts/<id>, /v/<id> (old Flash player), /e/<id>, /live/<id>
_PATH_KINDS = {"embed", "shorts", "v", "e", "live"}


def _host_and_parts(url: str) -> tuple[str, str, str]:
    text = url.strip()
    parts = urlsplit(text)
    if not parts.scheme and not parts.netloc:
        # "youtube.com/watch?v=..." without a scheme: read the first segment as the host
        parts = urlsplit("//" + text)
    if parts.scheme not in ("", "http", "https"):
        return "", "", ""
    host = (parts.hostname or "").lower().rstrip(".")
    return host, parts.path, parts.query


def _is_youtube_host(host: str) -> bool:
    return any(host == d or host.endswith("." + d) for d in _YOUTUBE_DOMAINS)


def _candidate(host: str, path: str, query: str) -> str | None:
    segments = [s for s in path.split("/") if s]
    if host == _SHORT_HOST or host.endswith("." + _SHORT_HOST):
        return segments[0] if segments else None
    if not _is_youtube_host(host):
        return None
    if segments[:1] == ["watch"] or not segments:
        values = parse_qs(query).get("v")
        return values[0] if values else None
    if len(segments) >= 2 and segments[0] in _PATH_KINDS:
        return segments[1]
    return None


def youtube_id(url: str) -> str | None:
    """The 11-character video id of a YouTube URL, or None for anything else.

    Accepts watch?v= (any host: www, m, music, nocookie), youtu.be/, shorts/, embed/, v/ and
    live/ forms, with or without a scheme, and ignores extra query parameters.
    """
    host, path, query = _host_and_parts(url)
    if not host:
        return None
    candidate = _candidate(host, path, query)
    if candidate is None:
        return None
    match = _YOUTUBE_ID.match(candidate)
    return match.group(1) if match else None


def source_id(url: str) -> str:
    """A stable file name stem for the video behind `url`.

    YouTube URLs give their video id (11 characters), every other URL the first 16 hex digits
    of the SHA-256 of the stripped URL; the lengths differ, so the two kinds never collide.
    """
    vid = youtube_id(url)
    if vid is not None:
        return vid
    return hashlib.sha256(url.strip().encode("utf-8")).hexdigest()[:16]


def is_youtube(url: str) -> bool:
    return youtube_id(url) is not None
