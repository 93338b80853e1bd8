"""What signpose.compat.ytdlp relies on in yt-dlp's private internals, pinned.

Each failure names the pin: an upgrade of yt-dlp that changes one of these fails here, in CI,
instead of at run time inside a download job.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from signpose.compat import ytdlp as compat

sys.path.insert(0, str(Path(__file__).parent))
from httpserver import Media, MisbehavingServer  # noqa: E402

CHANGED = f"{compat.PIN} changed what signpose.compat.ytdlp relies on: "


def test_the_installed_yt_dlp_is_the_pinned_one() -> None:
    from importlib.metadata import version

    installed = version("yt-dlp")
    assert f"yt-dlp=={installed}" == compat.PIN, CHANGED + f"installed {installed}"


def test_the_requests_handler_has_the_hooks_we_override() -> None:
    try:
        from yt_dlp.networking._requests import RequestsRH
    except ImportError as err:
        pytest.fail(CHANGED + f"yt_dlp.networking._requests.RequestsRH is gone ({err})")
    send = inspect.signature(RequestsRH._send)
    create = inspect.signature(RequestsRH._create_instance)
    assert list(send.parameters) == ["self", "request"], CHANGED + f"_send{send}"
    assert list(create.parameters) == ["self", "cookiejar", "legacy_ssl_support"], (
        CHANGED + f"_create_instance{create}"
    )


def test_every_request_passes_through_the_guarded_handler() -> None:
    import requests
    from yt_dlp import YoutubeDL

    seen: list[str] = []
    sessions: list[object] = []

    @contextlib.contextmanager
    def around(url: str) -> Iterator[None]:
        seen.append(url)
        yield

    handler = compat.guarded_requests_handler(around, sessions.append)

    class OnlyGuarded(YoutubeDL):
        def build_request_director(self, handlers, preferences=None):  # noqa: ANN001
            return super().build_request_director([handler], preferences)

    with MisbehavingServer(Media(mp4=b"\0\0\0\x18ftypmp42")) as server:
        url = server.url("/video.mp4")
        with OnlyGuarded({"quiet": True}) as ydl:
            body = ydl.urlopen(url).read()
    assert body == server.media.mp4, CHANGED + "the guarded handler did not answer"
    assert seen == [url], CHANGED + f"_send saw {seen}"
    assert len(sessions) == 1 and isinstance(sessions[0], requests.Session), (
        CHANGED + f"_create_instance gave {sessions}"
    )
