"""yt-dlp's private internals that the download stage relies on (pinned: yt-dlp==2026.10.26).

yt-dlp has no public hook on each request or redirect hop, so the network guard subclasses its
requests handler: `_send` wraps every request before a connection is made (the first URL, each
fragment) and `_create_instance` hands over the `requests` session whose redirect limit and
response hooks check every hop. tests/test_compat_ytdlp.py pins both.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

PIN = "yt-dlp==2026.10.26"


def guarded_requests_handler(
    around_request: Callable[[str], AbstractContextManager[None]],
    on_session: Callable[[Any], None],
) -> type:
    """yt-dlp's requests handler that sends each request inside `around_request(url)` (which
    may refuse it) and passes each `requests.Session` it creates to `on_session`."""
    from yt_dlp.networking._requests import RequestsRH

    class GuardedRequestsRH(RequestsRH):
        def _send(self, request: Any) -> Any:
            with around_request(request.url):
                return super()._send(request)

        def _create_instance(self, cookiejar: Any, legacy_ssl_support: Any = None) -> Any:
            session = super()._create_instance(cookiejar, legacy_ssl_support)
            on_session(session)
            return session

    return GuardedRequestsRH
