"""Reading videos: properties, frame counts by decoding, streamed RGB frames, and the one
ffmpeg binary and header probe every stage uses.

Container metadata lies (WLASL: 64 frames claimed, 62 decodable), so frame counts come from
decoding. Rotation flags are applied, as ffmpeg does when it cuts the clip, so sizes, bboxes and
frames are those of the video as displayed.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import cv2


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    width: int
    height: int
    frames: int  # decodable frames, or the container's claim when not counted

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps if self.fps > 0 else 0.0


class UnreadableVideo(ValueError):
    """OpenCV cannot open the file as a video."""


def open_capture(path: str | os.PathLike) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(os.fspath(path))
    if not cap.isOpened():
        cap.release()
        raise UnreadableVideo(f"{path}: no decoder can open it as a video")
    # OpenCV's FFmpeg backend ignores the display matrix by default: a phone video with a
    # rotation flag would be probed sideways while ffmpeg's clip comes out upright.
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


def probe(path: str | os.PathLike, count_frames: bool = True) -> VideoInfo:
    """Frame rate and size from the container; the frame count by decoding when asked."""
    cap = open_capture(path)
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if count_frames:
            frames = 0
            while cap.grab():
                frames += 1
        else:
            frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
    return VideoInfo(fps=float(fps), width=width, height=height, frames=frames)


def rgb_frames(path: str | os.PathLike) -> Iterator:
    """Every decodable frame as an RGB uint8 array, one at a time (memory stays bounded)."""
    cap = open_capture(path)
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


@functools.cache
def ffmpeg_exe() -> str:
    """The ffmpeg binary that imageio-ffmpeg ships: no system ffmpeg needed."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class StreamHeader:
    codec: str | None  # codec of the first video stream, e.g. "h264"; None when there is none
    duration_s: float | None  # from the container; None when it does not say (swf)
    last_line: str  # ffmpeg's last line: what to show when there is no video stream


_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_VIDEO_STREAM = re.compile(r"Stream #0:\d+.*?: Video: (\w+)")


def stream_header(path: str | os.PathLike, timeout_s: float = 120) -> StreamHeader:
    """Codec and duration as ffmpeg reads them from the headers (no decoding)."""
    # -i with no output makes ffmpeg print the stream list and exit 1; that is the probe
    run = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", os.fspath(path)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout_s,
        check=False,
    )
    stream = _VIDEO_STREAM.search(run.stderr)
    duration = _DURATION.search(run.stderr)
    seconds = None
    if duration is not None:
        h, m, s = duration.groups()
        seconds = int(h) * 3600 + int(m) * 60 + float(s)
    last = (run.stderr.strip().splitlines() or ["no output"])[-1]
    return StreamHeader(stream.group(1) if stream else None, seconds, last)
