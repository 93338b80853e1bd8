"""Media normalisation: whatever arrived (mp4, mov, webm, swf, mkv, HLS transport streams)
becomes a verified H.264 mp4 at the target, or a verdict.

ffmpeg and the probes are signpose.video's, the same every stage uses.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from signpose import video
from signpose.download.failures import Dead, TransientDownloadError
from signpose.download.options import DownloadOptions
from signpose.download.stage import Outcome
from signpose.files import atomic_path

_HTML_START = (b"<!doctype html", b"<html", b"<head", b"<?xml")
# Decoded and reported durations may differ by rounding and a last partial frame; more than
# this is a hole in the video (a skipped fragment, a cut-off stream)
DURATION_TOLERANCE_S = 1.0


def normalise(
    raw: Path, target: Path, opts: DownloadOptions, reported_s: float | None, origin: str
) -> Outcome:
    """Turn the raw file into a verified mp4 at `target`, atomically.

    `reported_s` is the duration the site announced; a decoded video that falls short of it
    (or runs over) by more than DURATION_TOLERANCE_S is incomplete, never a good source.
    """
    if raw.stat().st_size == 0:
        raise Dead("empty", "the source is an empty file")
    if _looks_like_html(raw):
        raise Dead("not_video", "got an HTML page instead of a video")
    header = _header(raw)
    if header.duration_s is not None and header.duration_s > opts.max_duration_s:
        raise Dead("too_long", f"{header.duration_s:.1f} s > max_duration_s {opts.max_duration_s}")
    with atomic_path(target) as tmp:
        if header.codec == "h264" and _is_mp4_brand(raw):
            os.replace(raw, tmp)  # already what we want: keep the bytes
        elif header.codec == "h264":
            _remux_or_transcode(raw, tmp, header, opts)
        else:
            _transcode(raw, tmp, header, opts)
        outcome = _verify(tmp, opts, reported_s, origin)
    return outcome


def _header(path: Path) -> video.StreamHeader:
    header = video.stream_header(path)
    if header.codec is None:
        raise Dead("undecodable", f"no video stream: {header.last_line}")
    return header


def _looks_like_html(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(1024).lstrip().lower()
    return head.startswith(_HTML_START) or b"<html" in head


def _is_mp4_brand(path: Path) -> bool:
    # QuickTime (.mov) shares ffmpeg's demuxer with mp4; its ftyp brand is "qt  " or missing
    with open(path, "rb") as f:
        head = f.read(12)
    return head[4:8] == b"ftyp" and head[8:12] != b"qt  "


# fmt: off
_REMUX = ["-map", "0:v:0", "-c:v", "copy", "-an", "-sn", "-dn"]
_ENCODE = [
    "-map", "0:v:0", "-an", "-sn", "-dn",
    "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
    # x264 with yuv420p needs even sides; crop at most one pixel rather than rescale
    "-vf", "crop=trunc(iw/2)*2:trunc(ih/2)*2",
]
# fmt: on


def _remux_or_transcode(
    raw: Path, out: Path, header: video.StreamHeader, opts: DownloadOptions
) -> None:
    if _run_ffmpeg(raw, out, _REMUX, header, opts) != 0:
        # h264 in a container that does not carry cleanly into mp4 (odd timestamps in flv):
        # decoding and encoding again always works where the stream itself is sound
        _transcode(raw, out, header, opts)


def _transcode(raw: Path, out: Path, header: video.StreamHeader, opts: DownloadOptions) -> None:
    if _run_ffmpeg(raw, out, _ENCODE, header, opts) != 0:
        raise Dead("undecodable", f"ffmpeg could not decode the {header.codec} stream")


def _run_ffmpeg(
    raw: Path, out: Path, args: list[str], header: video.StreamHeader, opts: DownloadOptions
) -> int:
    command = [video.ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", "-i", str(raw)]
    command += [*args, "-movflags", "+faststart", "-f", "mp4", str(out)]
    # generous: a stuck ffmpeg must end, a slow machine must not tombstone good videos
    limit = 120 + 4 * (header.duration_s or opts.max_duration_s)
    try:
        run = subprocess.run(command, capture_output=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired as err:
        raise TransientDownloadError(f"ffmpeg took over {limit:.0f} s on {raw.name}") from err
    return run.returncode


def _verify(path: Path, opts: DownloadOptions, reported_s: float | None, origin: str) -> Outcome:
    """The outcome for a finished mp4, or a verdict when it does not decode, is out of range
    or is shorter (or longer) than the site said."""
    header = _header(path)
    try:
        # decoding every frame costs a pass over the video: paid only where there is a
        # reported duration to hold it against
        info = video.probe(path, count_frames=reported_s is not None)
    except video.UnreadableVideo as err:
        raise Dead("undecodable", "no frame could be decoded") from err
    decodes = info.frames > 0 if reported_s is not None else _first_frame_decodes(path)
    if not decodes:
        raise Dead("undecodable", "no frame could be decoded")
    duration = info.duration_s if reported_s is not None else header.duration_s
    if duration is None:
        duration = info.duration_s
    if not duration or duration <= 0:
        raise Dead("undecodable", "the video has no duration")
    if duration > opts.max_duration_s:
        raise Dead("too_long", f"{duration:.1f} s > max_duration_s {opts.max_duration_s}")
    if reported_s is not None and abs(duration - reported_s) > DURATION_TOLERANCE_S:
        raise TransientDownloadError(
            f"incomplete: {duration:.2f} s decoded, the site reported {reported_s:.2f} s",
            final_reason="incomplete",
        )
    return Outcome(
        status="ok",
        bytes=path.stat().st_size,
        duration_s=round(duration, 3),
        fps=info.fps,
        width=info.width,
        height=info.height,
        frames=info.frames,
        origin=origin,
    )


def _first_frame_decodes(path: Path) -> bool:
    return next(video.rgb_frames(path), None) is not None
