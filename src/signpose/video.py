"""Reading videos: properties, frame counts by decoding, streamed RGB frames.

Container metadata lies (WLASL: 64 frames claimed, 62 decodable), so frame counts come from
decoding. Rotation flags are applied, as ffmpeg does when it cuts the clip, so sizes, bboxes and
frames are those of the video as displayed.
"""

from __future__ import annotations

import functools
import os
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
