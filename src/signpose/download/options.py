"""The fetch options, built from the config's validated `download` section.

config/schema.yaml is the only place a default or a bound of these is written: `from_config`
validates the section against it (filling every default) and copies the result, so nothing
here restates either.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

STAGE = "download"


@dataclass(frozen=True)
class DownloadOptions:
    format: str
    max_bytes: int
    max_duration_s: float
    rate_limit: int | None  # bytes per second, None for unlimited
    sleep_s: float  # before each request yt-dlp makes and before each download
    timeout_s: float  # socket timeout: connect and every read
    deadline_s: float  # the whole attempt, however slowly the bytes arrive
    max_redirects: int
    headers: Mapping[str, Mapping[str, str]]  # host suffix -> headers
    host_pause_s: Mapping[str, float]  # host suffix -> pause between requests to it
    cookies_file: Path | None
    allow_private_hosts: bool
    js_runtime: str  # deno | node | bun | quickjs | none
    js_runtime_path: str | None
    # from the dataset section: local paths in the metadata are relative to the metadata file
    allow_local_files: bool
    local_root: Path | None

    @classmethod
    def from_config(
        cls,
        section: Mapping[str, Any] | None,
        *,
        allow_local_files: bool,
        local_root: str | Path | None,
    ) -> DownloadOptions:
        """Options from the config's download section; a bad or unknown key is a ValueError.

        The section's keys that steer Snakemake (retries, max_parallel ...) are accepted and
        left out; the two local-file options come from the dataset section.
        """
        import jsonschema

        from signpose.config import with_defaults

        try:
            config = with_defaults(section, section="download")
        except jsonschema.ValidationError as err:
            where = ".".join(map(str, err.absolute_path)) or "(section)"
            raise ValueError(f"download.{where}: {err.message}") from None
        values = {f.name: config[f.name] for f in fields(cls) if f.name in config}
        if values["cookies_file"] is not None:
            values["cookies_file"] = Path(values["cookies_file"])
        return cls(
            **values,
            allow_local_files=allow_local_files,
            local_root=Path(local_root) if local_root is not None else None,
        )

    def headers_for(self, host: str) -> dict[str, str]:
        """Headers of every suffix that matches `host`, the most specific suffix last."""
        merged: dict[str, str] = {}
        for suffix in matching_suffixes(self.headers, host):
            merged.update(self.headers[suffix])
        return merged

    def pause_for(self, host: str) -> tuple[str, float]:
        """The most specific `host_pause_s` suffix that matches `host`, and its pause."""
        suffixes = matching_suffixes(self.host_pause_s, host)
        return (suffixes[-1], float(self.host_pause_s[suffixes[-1]])) if suffixes else ("", 0.0)


def matching_suffixes(by_suffix: Mapping[str, Any], host: str) -> list[str]:
    """The keys of `by_suffix` that are `host` or a domain above it, least specific first."""
    host = host.lower().rstrip(".")

    def bare(suffix: str) -> str:
        return suffix.lower().strip(".")

    matching = [s for s in by_suffix if host == bare(s) or host.endswith("." + bare(s))]
    return sorted(matching, key=lambda s: len(bare(s)))


def workflow_options(config: Mapping[str, Any]) -> DownloadOptions:
    """The fetch options from the whole (validated) workflow config.

    Local paths in the metadata are relative to the metadata file.
    """
    dataset = config["dataset"]
    return DownloadOptions.from_config(
        config["download"],
        allow_local_files=bool(dataset["allow_local_files"]),
        local_root=Path(dataset["metadata"]).parent.resolve(),
    )


# Minutes a download job may need besides its waits and its deadline: normalising the video
NORMALISE_MIN = 10


def job_minutes(section: Mapping[str, Any]) -> int:
    """The time limit of every download attempt, in minutes: the longest wait before one (the
    last retry's), its deadline and a bot-check back-off, plus normalising; so that a job is
    bounded wherever it runs (a SLURM job's time limit is its `runtime`). One figure for every
    attempt, not one per attempt: a per-job function costs planning time at every source."""
    retries = section["retries"]
    wait = section["backoff_s"] * 2 ** (retries - 1) if retries else 0
    seconds = wait + section["deadline_s"] + section["bot_check_backoff_s"]
    return math.ceil(seconds / 60) + NORMALISE_MIN


# http.cookiejar.MozillaCookieJar's first-line check and yt-dlp's entry rules
# (YoutubeDLCookieJar.load: seven tab-separated fields, a numeric expiry, `#HttpOnly_` prefix)
_COOKIES_MAGIC = re.compile("#( Netscape)? HTTP Cookie File")
_HTTPONLY_PREFIX = "#HttpOnly_"
_COOKIE_FIELDS = 7


def check_cookies_file(path: str | os.PathLike | None) -> None:
    """Stop the run at start when `download.cookies_file` is not a Netscape cookies file.

    yt-dlp would only find out in every download job: each source retried, then given up, and
    each bad line, cookie value included, written to the job's log. The message names the key
    and the line, never the file's path or the line's text (both are kept out of every log).
    """
    if path is None:
        return
    where = "download.cookies_file"
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        problem = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
        raise ValueError(f"{where}: the file cannot be read ({problem})") from None
    if not lines or not _COOKIES_MAGIC.match(lines[0]):
        raise ValueError(
            f"{where}: not a Netscape cookies file (its first line must be '# Netscape HTTP "
            "Cookie File'; export cookies.txt from a browser logged in to the site)"
        )
    for number, line in enumerate(lines[1:], start=2):
        entry = line.removeprefix(_HTTPONLY_PREFIX)
        if entry.startswith("#") or not entry.strip():
            continue
        parts = entry.split("\t")
        if len(parts) != _COOKIE_FIELDS:
            raise ValueError(
                f"{where}: line {number} has {len(parts)} tab-separated fields, a cookie has "
                f"{_COOKIE_FIELDS}"
            )
        if parts[4] and not re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", parts[4]):
            raise ValueError(f"{where}: line {number}: the expiry (field 5) is not a number")
