"""The network guard: which URLs a download may contact, checked on the first request and on
every redirect hop (http and https only, public hosts only unless allowed), and the per-host
pause between requests.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import re
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from signpose.download.failures import Dead, MachineError, TransientDownloadError
from signpose.download.options import DownloadOptions

# A name that always resolves where DNS works (RFC 2606 reserves it for this kind of use)
_DNS_CANARY = "example.com"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def check_url(url: str, opts: DownloadOptions) -> None:
    """Raise Dead unless `url` is http(s) on a host we may contact."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise Dead("bad_scheme", f"redirect or request to {parts.scheme or '(none)'}: {url}")
    host = parts.hostname
    if not host:
        raise Dead("bad_scheme", f"no host in {url}")
    if opts.allow_private_hosts:
        return
    for address in _addresses(host, url):
        if not _is_public(address):
            raise Dead("private_host", f"{host} resolves to non-public address {address}")


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
        return Dead("no_such_host", f"{host}: {err.strerror}")
    if _resolver_works():
        # this name's servers answer nothing now, others do: the source's problem, retried
        return TransientDownloadError(f"cannot resolve {host} now: {err.strerror}")
    return MachineError(f"no DNS on this machine: cannot resolve {host} nor {_DNS_CANARY}")


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


class Pacer:
    """Keeps `host_pause_s` between requests to hosts under one suffix, across processes.

    Parallel download jobs are separate processes (on a cluster, separate nodes sharing the
    results directory), so the time of the last request to each suffix lives in a small file
    in `folder`; an exclusive lock on it makes the jobs take turns.
    """

    def __init__(self, folder: Path, opts: DownloadOptions) -> None:
        self.folder = folder
        self.opts = opts
        self.waited_s = 0.0

    @contextlib.contextmanager
    def turn(self, url: str) -> Iterator[None]:
        """Wait until the pause since the last request under the same suffix is over, then
        hold the turn while the request is sent: the next one's pause counts from its answer,
        so the server sees the requests at least the pause apart."""
        suffix, pause = self.opts.pause_for(urlsplit(url).hostname or "")
        if pause <= 0:
            yield
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / _UNSAFE_NAME.sub("_", suffix.strip(".").lower()), "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
            f.seek(0)
            last = float(f.read().strip() or 0)
            wait = last + pause - time.time()
            if wait > 0:
                time.sleep(wait)
                self.waited_s += wait
            try:
                yield
            finally:
                f.seek(0)
                f.truncate()
                f.write(repr(time.time()))
