"""The download stage against a real, misbehaving HTTP server on 127.0.0.1.

Every case checks the outcome class and what is on disk afterwards: a decodable mp4, a
tombstone with its reason, or (for transient failures) nothing at all, and in every case no
temporary file left beside the target.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import imageio_ffmpeg
import pytest

from signpose import download, tombstone
from signpose.download import DownloadOptions, Outcome, TransientDownloadError, fetch_source
from signpose.download.failures import Dead, Scrubber, classify
from signpose.download.options import check_cookies_file
from signpose.sites import source_id, youtube_id

# the helper sits beside this file; the path entry keeps it importable whether or not tests/
# becomes a package
sys.path.insert(0, str(Path(__file__).parent))
from conftest import decoded_frames, wait_for  # noqa: E402
from httpserver import Media, MisbehavingServer, request_target  # noqa: E402

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
TIMEOUT_S = 1.0  # the tests' socket timeout; the server stalls for 3 s
ASLPRO_REFERER = "http://www.aslpro.com/cgi-bin/aslpro/aslpro.cgi"
LOG = logging.getLogger("test.download")


# ---------------------------------------------------------------------------------------------
# fixtures


def _encode(out: Path, *codec: str) -> bytes:
    source = ["-f", "lavfi", "-i", "testsrc=duration=2:size=160x120:rate=25"]
    subprocess.run(
        [FFMPEG, "-v", "error", "-y", *source, *codec, str(out)], check=True, capture_output=True
    )
    return out.read_bytes()


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    h264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p"]
    _encode(folder / "clip.mp4", *h264)
    _encode(folder / "clip.mov", *h264)
    _encode(folder / "clip.mkv", *h264)
    _encode(folder / "clip.webm", "-c:v", "libvpx", "-b:v", "200k")
    _encode(folder / "clip.swf", "-c:v", "flv", "-f", "swf")  # Flash video, as aslpro serves
    (folder / "noise.mp4").write_bytes(random.Random(0).randbytes(20_000))
    return folder


@pytest.fixture
def server(media_dir: Path) -> Iterator[MisbehavingServer]:
    media = Media(
        mp4=(media_dir / "clip.mp4").read_bytes(),
        webm=(media_dir / "clip.webm").read_bytes(),
        mov=(media_dir / "clip.mov").read_bytes(),
        swf=(media_dir / "clip.swf").read_bytes(),
        noise=(media_dir / "noise.mp4").read_bytes(),
        stall_s=3 * TIMEOUT_S,
    )
    with MisbehavingServer(media) as srv:
        yield srv


def options(
    allow_local_files: bool = False, local_root: Path | None = None, **changes: object
) -> DownloadOptions:
    """Test defaults: loopback allowed, short timeout, small caps so failures are quick.

    Everything else is the schema's default (the download section validated and filled).
    """
    base: dict[str, object] = {
        "allow_private_hosts": True,
        "timeout_s": TIMEOUT_S,
        "max_bytes": 1_000_000,
        "max_duration_s": 60,
    }
    changes = {k: str(v) if isinstance(v, Path) else v for k, v in changes.items()}
    return DownloadOptions.from_config(
        {**base, **changes}, allow_local_files=allow_local_files, local_root=local_root
    )


def target_for(tmp_path: Path, url: str) -> Path:
    return tmp_path / "sources" / f"{source_id(url)}.mp4"


def fetch(url: str, tmp_path: Path, opts: DownloadOptions | None = None) -> tuple[Outcome, Path]:
    target = target_for(tmp_path, url)
    return fetch_source(url, target, opts or options(), LOG), target


# ---------------------------------------------------------------------------------------------
# assertions about the files on disk


def assert_only(target: Path) -> None:
    """`target` is the only thing in its directory: no temp file, no work directory."""
    assert sorted(os.listdir(target.parent)) == [target.name]


def assert_nothing_left(target: Path) -> None:
    assert not target.exists()
    if target.parent.exists():
        assert os.listdir(target.parent) == []


def codec_of(path: Path) -> str:
    run = subprocess.run([FFMPEG, "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    match = re.search(r"Video: (\w+)", run.stderr)
    assert match, run.stderr
    return match.group(1)


def assert_video(outcome: Outcome, target: Path) -> None:
    assert outcome.status == "ok", outcome
    assert tombstone.read(target) is None
    assert codec_of(target) == "h264"
    assert decoded_frames(target) == 50
    assert (outcome.width, outcome.height, outcome.fps) == (160, 120, 25.0)
    assert outcome.duration_s == pytest.approx(2.0, abs=0.05)
    assert outcome.bytes == target.stat().st_size
    assert_only(target)


def assert_dead(outcome: Outcome, target: Path, reason: str) -> None:
    assert (outcome.status, outcome.reason) == ("dead", reason), outcome
    tomb = tombstone.read(target)
    assert tomb == tombstone.Tombstone(stage="download", reason=reason, detail=outcome.detail)
    assert "\n" not in tomb.detail
    assert_only(target)


def assert_transient(url: str, tmp_path: Path, opts: DownloadOptions | None = None) -> str:
    target = target_for(tmp_path, url)
    with pytest.raises(TransientDownloadError) as caught:
        fetch_source(url, target, opts or options(), LOG)
    message = str(caught.value)
    assert "\n" not in message and url in message
    assert_nothing_left(target)
    return message


# ---------------------------------------------------------------------------------------------
# success and normalisation


def test_h264_mp4_is_kept_byte_for_byte(server: MisbehavingServer, tmp_path: Path) -> None:
    outcome, target = fetch(server.url("/video.mp4"), tmp_path)
    assert_video(outcome, target)
    assert outcome.frames == 50
    assert target.read_bytes() == server.media.mp4


@pytest.mark.parametrize(
    ("path", "source_codec"),
    [("/clip.webm", "vp8"), ("/clip.mov", "h264"), ("/octet.mp4", "h264")],
)
def test_other_containers_end_as_h264_mp4(
    server: MisbehavingServer, tmp_path: Path, path: str, source_codec: str
) -> None:
    outcome, target = fetch(server.url(path), tmp_path)
    assert_video(outcome, target)
    with open(target, "rb") as f:
        assert f.read(12)[4:8] == b"ftyp"


def test_h264_that_cannot_be_copied_into_mp4_is_encoded_again(
    server: MisbehavingServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback for h264 in a container that does not carry cleanly into mp4: ffmpeg's
    copy fails (here made to, with a bitstream filter that does not exist), so the stream is
    decoded and encoded again."""
    from signpose.download import media

    monkeypatch.setattr(media, "_REMUX", [*media._REMUX, "-bsf:v", "no_such_filter"])
    outcome, target = fetch(server.url("/clip.mov"), tmp_path)
    assert_video(outcome, target)
    # x264 writes its settings into the stream: the source's crf 23, signpose's encode crf 18
    assert b"crf=23.0" in server.media.mov and b"crf=18.0" in target.read_bytes()


def test_aslpro_swf_gets_configured_referer_and_is_transcoded(
    server: MisbehavingServer, tmp_path: Path
) -> None:
    url = server.url("/aslpro/sign.swf")
    opts = options(headers={"127.0.0.1": {"Referer": ASLPRO_REFERER}})
    outcome, target = fetch(url, tmp_path, opts)
    assert_video(outcome, target)
    assert {h.get("Referer") for _, h in server.media.seen} == {ASLPRO_REFERER}


def test_aslpro_swf_without_referer_is_forbidden(server: MisbehavingServer, tmp_path: Path) -> None:
    outcome, target = fetch(server.url("/aslpro/sign.swf"), tmp_path)
    assert_dead(outcome, target, "http_403")


def test_redirects_within_the_limit_are_followed(server: MisbehavingServer, tmp_path: Path) -> None:
    outcome, target = fetch(server.url("/redirect/5/video.mp4"), tmp_path, options(max_redirects=5))
    assert_video(outcome, target)


# ---------------------------------------------------------------------------------------------
# permanent failures: tombstones


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/gone404.mp4", "http_404"),
        ("/gone410.mp4", "http_410"),
        ("/forbidden.mp4", "http_403"),
        ("/page.mp4", "not_video"),  # HTML with status 200
        ("/html-as-video.mp4", "not_video"),  # HTML labelled video/mp4
        ("/noise.mp4", "undecodable"),
        ("/empty.mp4", "empty"),
        ("/to-ftp.mp4", "bad_scheme"),
    ],
)
def test_dead_links_become_tombstones(
    server: MisbehavingServer, tmp_path: Path, path: str, reason: str
) -> None:
    outcome, target = fetch(server.url(path), tmp_path)
    assert_dead(outcome, target, reason)


def test_redirect_chain_beyond_the_limit_is_dead(server: MisbehavingServer, tmp_path: Path) -> None:
    outcome, target = fetch(server.url("/redirect/6/video.mp4"), tmp_path, options(max_redirects=5))
    assert_dead(outcome, target, "too_many_redirects")
    assert "/video.mp4" not in server.media.hits


@pytest.mark.parametrize("path", ["/huge.mp4", "/huge-nolength.mp4"])
def test_over_the_size_cap_stops_early(
    server: MisbehavingServer, tmp_path: Path, path: str
) -> None:
    url = server.unique(path)
    outcome, target = fetch(url, tmp_path, options(max_bytes=1_000_000))
    assert_dead(outcome, target, "too_large")
    answered = request_target(url)
    wait_for(lambda: server.media.ended[answered] == 1, None, timeout_s=10)
    sent = server.media.sent[answered]
    print(f"{path}: the server sent {sent:,} of {server.media.huge_bytes:,} bytes")
    # the 1 MB the cap allows and what the sockets buffer, never the 50 MB
    assert 1_000_000 < sent < 16 * 1024 * 1024 < server.media.huge_bytes


def test_over_the_duration_cap_is_dead(server: MisbehavingServer, tmp_path: Path) -> None:
    outcome, target = fetch(server.url("/video.mp4"), tmp_path, options(max_duration_s=1.5))
    assert_dead(outcome, target, "too_long")


@pytest.mark.parametrize(
    "name", ["a;rm -rf ~.mp4", "$(touch pwned).mp4", "`touch pwned`.mp4", "x' && touch pwned '.mp4"]
)
def test_hostile_urls_never_reach_a_shell(
    server: MisbehavingServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.chdir(tmp_path)
    outcome, target = fetch(server.url("/" + name), tmp_path)
    assert_dead(outcome, target, "http_404")
    assert [seen for seen, _ in server.media.seen] == ["/" + name]
    assert sorted(os.listdir(tmp_path)) == ["sources"]


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/video.mp4", "javascript:alert(1)", "data:video/mp4;base64,AAAA", ""]
)
def test_other_schemes_are_refused(tmp_path: Path, url: str) -> None:
    outcome, target = fetch(url, tmp_path)
    assert_dead(outcome, target, "bad_scheme")


# ---------------------------------------------------------------------------------------------
# transient failures: the job fails, nothing is left


@pytest.mark.parametrize("path", ["/flaky429.mp4", "/flaky503.mp4"])
def test_throttling_and_outages_are_retried(
    server: MisbehavingServer, tmp_path: Path, path: str
) -> None:
    url = server.url(path)
    message = assert_transient(url, tmp_path)
    assert re.search(r"HTTP Error (429|503)", message)
    # what Snakemake's `retries` does: the same job again, which now succeeds
    outcome, target = fetch(url, tmp_path)
    assert_video(outcome, target)


@pytest.mark.parametrize("path", ["/stall-headers.mp4", "/stall-body.mp4"])
def test_stalls_time_out_once(server: MisbehavingServer, tmp_path: Path, path: str) -> None:
    start = time.monotonic()
    message = assert_transient(server.url(path), tmp_path)
    # one socket timeout, not yt-dlp's default ten retries of it
    assert time.monotonic() - start < 3 * TIMEOUT_S
    assert "timed out" in message


@pytest.mark.parametrize("path", ["/truncated.mp4", "/reset.mp4"])
def test_cut_off_transfers_are_retried(
    server: MisbehavingServer, tmp_path: Path, path: str
) -> None:
    assert_transient(server.url(path), tmp_path)


def test_no_network_is_not_a_dead_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a node without DNS answers "no such name" for everything, YouTube included
    def no_dns(host: str, *args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    assert_transient(
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ", tmp_path, options(allow_private_hosts=False)
    )


def test_a_gone_domain_is_dead_when_dns_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo

    def dns(host: str, *args: object, **kwargs: object) -> list[object]:
        if host == "example.com":
            return real("127.0.0.1", None)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", dns)
    outcome, target = fetch(
        "http://www.gone-asl-site.test/a.mp4", tmp_path, options(allow_private_hosts=False)
    )
    assert_dead(outcome, target, "no_such_host")


# ---------------------------------------------------------------------------------------------
# private hosts and local files


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]", "10.1.2.3", "169.254.169.254"]
)
def test_private_hosts_are_refused_by_default(
    server: MisbehavingServer, tmp_path: Path, host: str
) -> None:
    url = f"http://{host}:{server.server_port}/video.mp4"
    outcome, target = fetch(url, tmp_path, options(allow_private_hosts=False))
    assert_dead(outcome, target, "private_host")
    assert not server.media.seen


@pytest.mark.parametrize("url", ["file:///etc/hostname", "clips/a.mp4", "/srv/videos/a.mp4"])
def test_local_files_are_refused_by_default(tmp_path: Path, url: str) -> None:
    outcome, target = fetch(url, tmp_path)
    assert_dead(outcome, target, "local_not_allowed")


@pytest.mark.parametrize("form", ["relative", "absolute", "file_url"])
@pytest.mark.parametrize("name", ["clip.mp4", "clip.mkv", "clip.webm"])
def test_local_files_when_allowed(media_dir: Path, tmp_path: Path, form: str, name: str) -> None:
    url = {
        "relative": name,
        "absolute": str(media_dir / name),
        "file_url": (media_dir / name).as_uri(),
    }[form]
    opts = options(allow_local_files=True, local_root=media_dir)
    outcome, target = fetch(url, tmp_path, opts)
    assert_video(outcome, target)
    assert (media_dir / name).exists()  # copied, never moved


def test_missing_local_file(media_dir: Path, tmp_path: Path) -> None:
    opts = options(allow_local_files=True, local_root=media_dir)
    outcome, target = fetch("no/such.mp4", tmp_path, opts)
    assert_dead(outcome, target, "local_missing")


def test_local_file_over_the_size_cap(media_dir: Path, tmp_path: Path) -> None:
    opts = options(allow_local_files=True, local_root=media_dir, max_bytes=1000)
    outcome, target = fetch("clip.mp4", tmp_path, opts)
    assert_dead(outcome, target, "too_large")


# ---------------------------------------------------------------------------------------------
# cookies, politeness


@pytest.fixture(scope="module")
def tls_server(media_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The loopback server behind HTTPS with a self-signed certificate (no CA vouches for it)."""
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv = MisbehavingServer(Media(mp4=(media_dir / "clip.mp4").read_bytes()))
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    with srv:
        yield srv


def test_a_certificate_that_does_not_verify_is_a_tls_error_tombstone(
    tls_server: MisbehavingServer, tmp_path: Path
) -> None:
    url = tls_server.url("/video.mp4").replace("http://", "https://")
    outcome, target = fetch(url, tmp_path)
    assert_dead(outcome, target, "tls_error")  # a wrong certificate does not fix itself
    assert "certificate" in outcome.detail.lower()
    assert not tls_server.media.seen  # no request was sent over the unverified connection


def test_https_to_a_server_that_does_not_speak_tls_is_transient(
    server: MisbehavingServer, tmp_path: Path
) -> None:
    assert_transient(server.url("/video.mp4").replace("http://", "https://"), tmp_path)


def test_cookies_are_sent_but_never_shown(
    server: MisbehavingServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOG.name)
    jar = tmp_path / "SECRET-jar" / "cookies.txt"
    jar.parent.mkdir()
    jar.write_text(
        "# Netscape HTTP Cookie File\n"
        "127.0.0.1\tFALSE\t/\tFALSE\t2147483647\tsp_test\tSECRET-value-4b1e\n"
    )
    before = jar.read_bytes()
    opts = options(cookies_file=jar)
    outcome, target = fetch(server.url("/cookie.mp4"), tmp_path, opts)
    assert_video(outcome, target)
    dead, tomb = fetch(server.url("/gone404.mp4"), tmp_path, opts)
    assert dead.reason == "http_404"
    assert jar.read_bytes() == before  # yt-dlp saves its jar on close: never onto ours
    shown = caplog.text + tomb.read_bytes().decode("utf-8", "replace") + json.dumps(dead.__dict__)
    assert "SECRET" not in shown and caplog.text  # neither the jar's path nor its value


def test_a_broken_cookies_file_is_reported_without_its_path(
    server: MisbehavingServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """yt-dlp names the jar in its error; the message and the log say `<cookies>` instead."""
    caplog.set_level(logging.DEBUG, logger=LOG.name)
    jar = tmp_path / "SECRET-jar" / "cookies.txt"
    jar.parent.mkdir()
    jar.write_text("not a cookies file\n")
    message = assert_transient(server.url("/video.mp4"), tmp_path, options(cookies_file=jar))
    assert "'<cookies>' does not look like a Netscape format cookies file" in message
    assert "SECRET" not in message + caplog.text and "<cookies>" in caplog.text


def test_missing_cookies_file_is_a_config_error(server: MisbehavingServer, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        fetch(server.url("/video.mp4"), tmp_path, options(cookies_file=tmp_path / "nope.txt"))
    assert_nothing_left(target_for(tmp_path, server.url("/video.mp4")))


GOOD_JAR = ("# Netscape HTTP Cookie File\n# a comment\n\n"
            "#HttpOnly_.example.org\tTRUE\t/\tTRUE\t0\tsid\tv\n")  # fmt: skip


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "not a Netscape cookies file"),
        ('[{"name": "sid", "value": "SECRET"}]\n', "not a Netscape cookies file"),
        (GOOD_JAR + "example.org\tTRUE\t/\tSECRET\n", "line 5 has 4 tab-separated fields"),
        (
            GOOD_JAR + "example.org\tTRUE\t/\tTRUE\tsoon\tsid\tSECRET\n",
            "line 5: the expiry (field 5) is not a number",
        ),  # fmt: skip
        (None, "the file cannot be read (No such file or directory)"),
    ],
)
def test_a_broken_cookies_file_is_one_line_without_its_path_or_values(tmp_path, text, problem):
    jar = tmp_path / "SECRET-dir" / "cookies.txt"
    jar.parent.mkdir()
    if text is not None:
        jar.write_text(text)
    with pytest.raises(ValueError) as err:
        check_cookies_file(jar)
    message = str(err.value)
    assert message.startswith("download.cookies_file: ") and problem in message
    assert "SECRET" not in message and "\n" not in message


def test_a_netscape_cookies_file_passes_the_check(tmp_path):
    jar = tmp_path / "cookies.txt"
    jar.write_text(GOOD_JAR + "127.0.0.1\tFALSE\t/\tFALSE\t2147483647\tsp\tvalue\n")
    check_cookies_file(jar)
    check_cookies_file(None)


def test_rate_limit_and_sleep_slow_the_download(server: MisbehavingServer, tmp_path: Path) -> None:
    size = len(server.media.mp4)
    start = time.monotonic()
    outcome, target = fetch(
        server.url("/video.mp4"), tmp_path, options(rate_limit=size, sleep_s=0.3)
    )
    assert_video(outcome, target)
    # about 1 s of transfer at the limit (the first block is free) plus the sleep
    assert time.monotonic() - start >= 0.8


# ---------------------------------------------------------------------------------------------
# options


def test_options_defaults_and_config() -> None:
    local = {"allow_local_files": False, "local_root": None}
    assert DownloadOptions.from_config({}, **local) == DownloadOptions.from_config(None, **local)
    assert DownloadOptions.from_config(None, **local).max_bytes == 500_000_000
    opts = DownloadOptions.from_config(
        {
            "format": "b",
            "max_bytes": 1000,
            "max_duration_s": 10,
            "rate_limit": 5000,
            "sleep_s": 1,
            "timeout_s": 5,
            "max_redirects": 0,
            "headers": {"aslpro.com": {"Referer": ASLPRO_REFERER}},
            "cookies_file": "cookies.txt",
            "allow_private_hosts": True,
        },
        allow_local_files=True,
        local_root="resources/demo",
    )
    assert opts.cookies_file == Path("cookies.txt") and opts.local_root == Path("resources/demo")
    assert opts.headers_for("www.aslpro.com") == {"Referer": ASLPRO_REFERER}
    assert opts.headers_for("aslpro.com") == {"Referer": ASLPRO_REFERER}
    assert opts.headers_for("notaslpro.com") == {}


def test_workflow_options_leave_out_what_steers_snakemake(tmp_path: Path) -> None:
    config = {
        "download": {"timeout_s": 5, "retries": 3, "backoff_s": 30, "max_parallel": 4,
                     "retry_reasons": ["http_403"]},
        "dataset": {"metadata": str(tmp_path / "meta" / "WLASL.json"), "allow_local_files": True},
    }  # fmt: skip
    opts = download.workflow_options(config)
    local_root = tmp_path / "meta"
    expected = DownloadOptions.from_config(
        {"timeout_s": 5}, allow_local_files=True, local_root=local_root
    )
    assert opts == expected


def test_remove_tombstones_deletes_only_the_chosen_reasons(media_dir: Path, tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    good = sources / "good.mp4"
    good.write_bytes((media_dir / "clip.mp4").read_bytes())
    for name, reason in (("forbidden", "http_403"), ("gone", "http_404")):
        tombstone.write(sources / f"{name}.mp4", tombstone.Tombstone("download", reason))
    assert download.remove_tombstones(sources, ["http_403"]) == [sources / "forbidden.mp4"]
    assert sorted(os.listdir(sources)) == ["gone.mp4", "good.mp4"]
    assert good.read_bytes() == (media_dir / "clip.mp4").read_bytes()
    with pytest.raises(ValueError, match="retry_reasons is empty"):
        download.remove_tombstones(sources, [])


def test_more_specific_header_suffix_wins() -> None:
    opts = options(headers={"example.org": {"A": "1", "B": "1"}, "v.example.org": {"B": "2"}})
    assert opts.headers_for("cdn.v.example.org") == {"A": "1", "B": "2"}


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"max_byte": 5}, "max_byte"),
        ({"max_bytes": "5"}, "max_bytes"),
        ({"max_redirects": True}, "max_redirects"),
        ({"headers": {"aslpro.com": "Referer: x"}}, "headers"),
        ({"allow_local_files": "yes"}, "allow_local_files"),
        ({"timeout_s": 0}, "timeout_s"),
    ],
)
def test_bad_config_is_rejected_by_name(config: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        DownloadOptions.from_config(config, allow_local_files=False, local_root=None)


# ---------------------------------------------------------------------------------------------
# yt-dlp's error messages (YouTube cannot be reached offline: its messages are replayed)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("[youtube] abc: Video unavailable", "unavailable"),
        (
            "[youtube] abc: Video unavailable. This video has been removed by the uploader",
            "removed",
        ),
        (
            "[youtube] abc: Video unavailable. This video is no longer available because the "
            "YouTube account associated with this video has been terminated.",
            "removed",
        ),
        (
            "[youtube] abc: Private video. Sign in if you've been granted access to this video. "
            "Use --cookies-from-browser or --cookies for the authentication.",
            "private",
        ),
        (
            "[youtube] abc: Sign in to confirm your age. This video may be inappropriate",
            "age_restricted",
        ),
        ("[youtube] abc: Join this channel to get access to members-only content", "members_only"),
        (
            "[youtube] abc: The uploader has not made this video available in your country",
            "geo_blocked",
        ),
        ("[youtube] abc: Sign in to confirm you\u2019re not a bot. Use --cookies", None),
        ("[youtube] abc: This content isn't available, try again later.", None),
        ("[youtube] abc: Requested format is not available. Use --list-formats", None),
        ("[youtube] abc: Something new that nobody has seen yet", None),
    ],
)
def test_youtube_messages_are_classified(message: str, reason: str | None) -> None:
    from yt_dlp.utils import DownloadError, ExtractorError

    cause = ExtractorError(message, expected=True)
    err = DownloadError(f"ERROR: {message}", (type(cause), cause, None))
    url = "https://www.youtube.com/watch?v=abcdefghijk"
    verdict = classify(err, url, Scrubber(None))
    if reason is None:
        assert isinstance(verdict, TransientDownloadError)
    else:
        assert isinstance(verdict, Dead) and verdict.reason == reason


@pytest.mark.parametrize("status", [403, 404])
def test_youtube_stream_http_errors_are_transient(status: int) -> None:
    # dead YouTube videos are reported in messages; an HTTP error from its video servers is
    # an expired stream URL
    from yt_dlp.networking import Response
    from yt_dlp.networking.exceptions import HTTPError
    from yt_dlp.utils import DownloadError

    cause = HTTPError(
        Response(fp=None, url="https://r1.googlevideo.com/x", headers={}, status=status)
    )
    err = DownloadError(
        f"ERROR: unable to download video data: {cause}", (type(cause), cause, None)
    )
    youtube = "https://youtu.be/abcdefghijk"
    verdict = classify(err, youtube, Scrubber(None))
    assert isinstance(verdict, TransientDownloadError)
    other = classify(err, "http://aslsignbank.example/a.mp4", Scrubber(None))
    assert isinstance(other, Dead) and other.reason == f"http_{status}"


# ---------------------------------------------------------------------------------------------
# source ids


VIDEO = "dQw4w9WgXcQ"


@pytest.mark.parametrize(
    "url",
    [
        f"https://www.youtube.com/watch?v={VIDEO}",
        f"http://www.youtube.com/watch?v={VIDEO}&feature=youtu.be&t=12",
        f"https://www.youtube.com/watch?feature=player_embedded&v={VIDEO}",
        f"https://m.youtube.com/watch?v={VIDEO}",
        f"https://youtube.com/watch?v={VIDEO}#t=3",
        f"https://youtu.be/{VIDEO}",
        f"https://youtu.be/{VIDEO}?t=42",
        f"https://www.youtube.com/shorts/{VIDEO}",
        f"https://www.youtube.com/embed/{VIDEO}?start=3&end=9",
        f"https://www.youtube-nocookie.com/embed/{VIDEO}",
        f"https://www.youtube.com/v/{VIDEO}",
        f"www.youtube.com/watch?v={VIDEO}",
        f"  https://WWW.YouTube.com/watch?v={VIDEO}  ",
    ],
)
def test_youtube_url_forms_give_one_id(url: str) -> None:
    assert youtube_id(url) == VIDEO
    assert source_id(url) == VIDEO


@pytest.mark.parametrize(
    "url",
    [
        "http://www.aslpro.com/main/a/about.swf",
        "https://www.youtube.com/watch?v=short",
        f"https://www.youtube.com/watch?v={VIDEO}x",  # 12 id characters is not an id
        f"https://notyoutube.com/watch?v={VIDEO}",
        f"https://www.youtube.com/channel/{VIDEO}",
        f"ftp://youtube.com/watch?v={VIDEO}",
        "",
    ],
)
def test_non_youtube_urls_have_no_youtube_id(url: str) -> None:
    assert youtube_id(url) is None


def test_other_urls_get_a_stable_hash() -> None:
    url = "http://www.aslpro.com/main/a/about.swf"
    # `printf %s URL | sha256sum`, cut to 16 digits: file names an earlier version wrote must
    # still be found, so the name is pinned, not recomputed here
    assert source_id(url) == source_id(f" {url}\n") == "3bb4a252da5275c2"
    assert source_id(url) != source_id(url.replace("about", "above"))


def test_planning_time_imports_stay_light() -> None:
    code = (
        "import sys, signpose.sites, signpose.download;"
        "heavy = {'yt_dlp', 'cv2', 'numpy'} & set(sys.modules);"
        "assert not heavy, heavy"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(download.__file__).parents[2])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


# ---------------------------------------------------------------------------------------------
# one request per attempt, the whole-attempt deadline, per-host pauses


def test_a_direct_file_costs_one_request(server: MisbehavingServer, tmp_path: Path) -> None:
    url = server.unique("/video.mp4")
    outcome, target = fetch(url, tmp_path)
    assert_video(outcome, target)
    assert server.media.hits[request_target(url)] == 1  # no probe before the download


def test_a_trickling_server_is_cut_off_at_the_deadline(
    server: MisbehavingServer, tmp_path: Path
) -> None:
    # one byte every 0.3 s never trips the 1 s socket timeout; only the deadline ends it
    server.media.trickle_s = 0.3
    start = time.monotonic()
    message = assert_transient(server.url("/trickle.mp4"), tmp_path, options(deadline_s=2))
    assert 2 <= time.monotonic() - start < 5
    assert "deadline_s" in message


def _fetch_in_child(url: str, target: str, pause_s: float) -> None:
    opts = options(host_pause_s={"127.0.0.1": pause_s})
    fetch_source(url, Path(target), opts, LOG)


def test_the_per_host_pause_holds_across_parallel_jobs(
    server: MisbehavingServer, tmp_path: Path
) -> None:
    import multiprocessing

    pause_s = 0.6
    urls = [server.unique("/video.mp4") for _ in range(4)]
    sources = tmp_path / "sources"
    context = multiprocessing.get_context("fork")
    jobs = [context.Process(target=_fetch_in_child, args=(url, str(sources / f"{i}.mp4"), pause_s))
            for i, url in enumerate(urls)]  # fmt: skip
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(60)
        assert job.exitcode == 0
    starts = sorted(t for t, target in server.media.times if target in map(request_target, urls))
    assert len(starts) == 4
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= pause_s - 0.05, gaps
    assert (sources / ".pace" / "127.0.0.1").is_file()


def test_the_pause_matches_the_most_specific_suffix() -> None:
    opts = options(host_pause_s={"youtube.com": 4, "www.youtube.com": 6, "other.org": 1})
    assert opts.pause_for("m.youtube.com") == ("youtube.com", 4.0)
    assert opts.pause_for("www.youtube.com") == ("www.youtube.com", 6.0)
    assert opts.pause_for("notyoutube.com") == ("", 0.0)


# ---------------------------------------------------------------------------------------------
# HLS with holes, and a duration that does not match the site's


@pytest.fixture(scope="session")
def hls_media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("hls")
    subprocess.run(
        [FFMPEG, "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=4:size=160x120:rate=25",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "25", "-f", "hls", "-hls_time", "1",
         "-hls_list_size", "0", "-hls_segment_filename", str(folder / "seg%d.ts"),
         str(folder / "index.m3u8")],
        check=True,
    )  # fmt: skip
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_whole_hls_stream_is_a_source(
    server: MisbehavingServer, tmp_path: Path, hls_media: dict[str, bytes]
) -> None:
    server.media.hls = hls_media
    outcome, target = fetch(server.url("/hls/ok/index.m3u8"), tmp_path)
    assert outcome.status == "ok", outcome
    assert decoded_frames(target) == 100


@pytest.mark.parametrize("variant", ["missing", "short"])
def test_hls_with_a_hole_is_incomplete_never_a_source(
    server: MisbehavingServer, tmp_path: Path, hls_media: dict[str, bytes], variant: str
) -> None:
    server.media.hls = hls_media
    url = server.url(f"/hls/{variant}/index.m3u8")
    target = target_for(tmp_path, url)
    with pytest.raises(TransientDownloadError) as caught:
        fetch_source(url, target, options(), LOG)
    assert caught.value.final_reason == "incomplete", caught.value
    assert_nothing_left(target)
    assert f"/hls/{variant}/seg1.ts" in server.media.hits


def test_a_duration_short_of_the_reported_one_is_incomplete(
    media_dir: Path, tmp_path: Path
) -> None:
    from signpose.download import media

    target = tmp_path / "sources" / "x.mp4"
    raw = tmp_path / "raw.mp4"
    raw.write_bytes((media_dir / "clip.mp4").read_bytes())  # 2 s decoded
    with pytest.raises(TransientDownloadError) as caught:
        media.normalise(raw, target, options(), 5.0, "download")
    assert caught.value.final_reason == "incomplete"
    assert "2.00 s decoded" in str(caught.value) and not target.exists()
    # within a second of what the site said: a good source, its frames counted by decoding
    raw.write_bytes((media_dir / "clip.mp4").read_bytes())
    outcome = media.normalise(raw, target, options(), 2.5, "download")
    assert (outcome.status, outcome.frames) == ("ok", 50)


# ---------------------------------------------------------------------------------------------
# the JavaScript runtime YouTube needs


def test_the_runtime_is_the_deno_package_binary_and_is_named() -> None:
    import deno
    import yt_dlp_ejs

    from signpose.download import ytdlp

    line, runtime = ytdlp.environment_line(options())
    assert runtime.name == "deno" and runtime.path == deno.find_deno_bin()
    assert runtime.version == "2.9.8"
    assert f"JavaScript runtime: deno 2.9.8 ({runtime.path})" in line
    assert line.startswith("yt-dlp 2026.10.26;") and f"yt-dlp-ejs {yt_dlp_ejs.version}" in line


def test_a_missing_runtime_fails_the_machine_not_the_video(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOG.name)
    opts = options(js_runtime="node", js_runtime_path=str(tmp_path / "no-node"))
    url = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    target = target_for(tmp_path, url)
    with pytest.raises(download.MachineError, match="JavaScript runtime node .* is missing"):
        fetch_source(url, target, opts, LOG)
    assert_nothing_left(target)
    assert "JavaScript runtime: node MISSING" in caplog.text


# ---------------------------------------------------------------------------------------------
# the job: every source ends; the machine's failures never become tombstones


def job_config(tmp_path: Path, mirror: dict | None = None, **download_changes: object) -> dict:
    from signpose.config import with_defaults

    dataset: dict[str, object] = {"name": "t", "metadata": str(tmp_path / "meta.json")}
    if mirror is not None:
        dataset["mirror"] = mirror
    section = {"allow_private_hosts": True, "timeout_s": TIMEOUT_S, "backoff_s": 0,
               "retries": 2, **download_changes}  # fmt: skip
    return with_defaults({"dataset": dataset, "download": section})


def test_a_source_still_failing_after_the_last_retry_is_a_gave_up_tombstone(
    server: MisbehavingServer, tmp_path: Path
) -> None:
    from signpose.download.job import download_job

    url = server.unique("/truncated.mp4")
    target = target_for(tmp_path, url)
    config = job_config(tmp_path)
    for attempt in (1, 2):  # retries: 2, so attempts 1 and 2 fail the job
        with pytest.raises(TransientDownloadError):
            download_job(url, str(target), config, attempt, None)
        assert_nothing_left(target)
    download_job(url, str(target), config, 3, None)
    tomb = tombstone.read(target)
    assert (tomb.stage, tomb.reason) == ("download", "gave_up")
    assert tomb.detail.startswith("after 3 attempts, the last: ") and url in tomb.detail
    assert server.media.hits[request_target(url)] == 3
    assert_only(target)


def test_an_incomplete_source_ends_as_an_incomplete_tombstone(
    server: MisbehavingServer, tmp_path: Path, hls_media: dict[str, bytes]
) -> None:
    from signpose.download.job import download_job

    server.media.hls = hls_media
    url = server.url("/hls/missing/index.m3u8")
    target = target_for(tmp_path, url)
    download_job(url, str(target), job_config(tmp_path, retries=0), 1, None)
    assert tombstone.read(target).reason == "incomplete"


def test_the_bot_check_waits_long_says_how_to_pass_and_leaves_a_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from signpose.download import job
    from signpose.download.failures import classify

    message = "ERROR: [youtube] abc: Sign in to confirm you\u2019re not a bot. Use --cookies"

    def bot_check(url: str, *args: object, **kwargs: object) -> None:
        raise classify(RuntimeError(message), url, lambda text: text)

    monkeypatch.setattr(job, "fetch_source", bot_check)
    caplog.set_level(logging.INFO, logger="signpose")
    url = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    target = target_for(tmp_path, url)
    config = job_config(tmp_path, bot_check_backoff_s=0.5)
    started = time.monotonic()
    with pytest.raises(download.TransientDownloadError, match="not a bot"):
        job.download_job(url, str(target), config, 1, None)  # not the last attempt
    assert time.monotonic() - started >= 0.5  # the long back-off, before Snakemake's retry
    assert "set download.cookies_file to a cookies.txt" in caplog.text
    assert_nothing_left(target)


def test_no_dns_fails_every_attempt_and_never_buries_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from signpose.download.job import download_job

    def no_dns(host: str, *args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    caplog.set_level(logging.INFO, logger="signpose")
    url = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    target = target_for(tmp_path, url)
    config = job_config(tmp_path, allow_private_hosts=False)
    with pytest.raises(download.MachineError, match="no DNS on this machine"):
        download_job(url, str(target), config, 3, None)  # the last attempt
    assert_nothing_left(target)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "transient failure of this machine, not of the source" in errors[0]
    assert "JavaScript runtime: deno 2.9.8" in caplog.text  # named before the first request


def test_a_sources_mirror_stands_in_for_the_download(
    server: MisbehavingServer, media_dir: Path, tmp_path: Path
) -> None:
    from signpose.download import mirror as mirrors
    from signpose.download.job import download_job

    mirror = tmp_path / "raw_videos"
    mirror.mkdir()
    (mirror / "v7.mkv").write_bytes((media_dir / "clip.mkv").read_bytes())
    (mirror / "dQw4w9WgXcQ.webm").write_bytes((media_dir / "clip.webm").read_bytes())
    before = {p.name: p.read_bytes() for p in mirror.iterdir()}
    config = job_config(tmp_path, mirror={"dir": str(mirror), "fallback": "none"})
    url, other = server.unique("/video.mp4"), server.unique("/video.mp4")
    youtube = "https://youtu.be/dQw4w9WgXcQ"
    urls = {"v6": url, "v7": url, "v8": other, "v9": youtube}
    found = mirrors.mirrored(mirrors.Mirror.from_config(config["dataset"]), urls)
    # start_kit's names: non-YouTube sources by a video_id, YouTube ones by their id
    assert found == {"v6": mirror / "v7.mkv", "v7": mirror / "v7.mkv",
                     "v9": mirror / "dQw4w9WgXcQ.webm"}  # fmt: skip
    for source_url, vid in ((url, "v6"), (youtube, "v9")):
        target = target_for(tmp_path, source_url)
        download_job(source_url, str(target), config, 1, str(found[vid]))
        assert decoded_frames(target) == 50 and codec_of(target) == "h264"
    assert request_target(url) not in server.media.hits  # no request at all
    assert {p.name: p.read_bytes() for p in mirror.iterdir()} == before  # read, never changed
    download_job(other, str(target_for(tmp_path, other)), config, 1, None)
    assert tombstone.read(target_for(tmp_path, other)).reason == "not_in_mirror"
    assert request_target(other) not in server.media.hits


def test_no_route_out_is_the_machine_s_fault() -> None:
    import errno

    from yt_dlp.networking.exceptions import TransportError
    from yt_dlp.utils import DownloadError

    # what requests raises when connect() finds no route: the errno deep in the chain
    try:
        try:
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        except OSError as low:
            raise TransportError(cause=low) from low
    except TransportError as cause:
        err = DownloadError("ERROR: Unable to download webpage", (type(cause), cause, None))
    verdict = classify(err, "https://www.youtube.com/watch?v=abcdefghijk", Scrubber(None))
    assert isinstance(verdict, download.MachineError) and "no route" in str(verdict)
