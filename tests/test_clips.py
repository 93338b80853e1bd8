"""Trimming is by time at the metadata's fps and frame-accurate, at 25 and 30 fps sources."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from signpose import tombstone, video
from signpose.clips import ClipOptions, crop_box, make_clip, scaled_size
from signpose.tombstone import Tombstone

BITS = 8
CELL = 16


def draw_index(i: int) -> np.ndarray:
    """A 128x32 frame whose 8 cells spell the frame index in binary (survives x264)."""
    frame = np.zeros((2 * CELL, BITS * CELL, 3), np.uint8)
    for b in range(BITS):
        if i >> b & 1:
            frame[:, b * CELL : (b + 1) * CELL] = 255
    return frame


def read_index(frame: np.ndarray) -> int:
    cells = frame[CELL // 2 : CELL + CELL // 2].reshape(CELL, BITS, CELL, 3).mean(axis=(0, 2, 3))
    return sum(1 << b for b in range(BITS) if cells[b] > 127)


def write_video(path: Path, fps: int, frames: int) -> Path:
    h, w = 2 * CELL, BITS * CELL
    cmd = [video.ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", str(fps), "-i", "-", "-c:v", "libx264", "-g", "50",
           "-pix_fmt", "yuv420p", str(path)]  # fmt: skip
    data = b"".join(draw_index(i).tobytes() for i in range(frames))
    subprocess.run(cmd, input=data, check=True)
    return path


def indices(path: Path) -> list[int]:
    return [read_index(f) for f in video.rgb_frames(path)]


def expected(src_fps: int, n: int, frame_start: int, frame_end: int) -> list[int]:
    """Source frames whose timestamps fall in [(start-1)/25, end/25)."""
    t0 = (frame_start - 1) / 25
    t1 = math.inf if frame_end == -1 else frame_end / 25
    return [k for k in range(n) if t0 - 1e-9 <= k / src_fps < t1 - 1e-9]


@pytest.mark.parametrize("src_fps", [25, 30])
@pytest.mark.parametrize("frame_start, frame_end", [(1, -1), (1, 10), (5, 20), (13, 13), (40, -1),
                                                     (26, 50)])  # fmt: skip
def test_clip_starts_and_ends_on_the_right_frames(tmp_path, src_fps, frame_start, frame_end):
    n = 90
    src = write_video(tmp_path / "src.mp4", src_fps, n)
    dst = tmp_path / "clip.mp4"
    start_s = (frame_start - 1) / 25
    end_s = None if frame_end == -1 else frame_end / 25
    result = make_clip(src, dst, start_s, end_s, None, ClipOptions(crop="off"))
    assert not isinstance(result, Tombstone)
    got = indices(dst)
    assert got == expected(src_fps, n, frame_start, frame_end)
    assert result.info.frames == len(got)
    assert result.info.fps == pytest.approx(src_fps, rel=0.01)  # the source's real rate


def test_trim_outside_the_video_is_a_tombstone(tmp_path):
    src = write_video(tmp_path / "src.mp4", 25, 30)
    result = make_clip(src, tmp_path / "c.mp4", 5.0, 6.0, None, ClipOptions())
    assert isinstance(result, Tombstone) and result.reason == "trim_out_of_range"
    assert not (tmp_path / "c.mp4").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["src.mp4"]


def test_a_dead_source_passes_its_reason_on(tmp_path):
    src = tmp_path / "src.mp4"
    tombstone.write(src, Tombstone("download", "http_404", "gone"))
    result = make_clip(src, tmp_path / "c.mp4", 0, None, None, ClipOptions())
    assert result == Tombstone("download", "http_404", "gone")


def test_crop_is_clamped_even_and_optional():
    assert crop_box((10, 20, 110, 220), 640, 480, "off", 0.1) is None
    assert crop_box(None, 640, 480, "bbox", 0.1) is None
    box = crop_box((10, 20, 111, 221), 640, 480, "bbox", 0.0)
    assert (box.x, box.y, box.w, box.h) == (10, 20, 100, 200)
    wide = crop_box((-50, -50, 700, 300), 640, 480, "bbox_margin", 0.1)
    assert wide.x == 0 and wide.y == 0 and wide.w <= 640 and wide.w % 2 == 0
    assert crop_box((0, 0, 640, 480), 640, 480, "bbox", 0.0) is None  # covers the frame
    assert scaled_size(1920, 1080, 720) == (720, 404)
    assert scaled_size(301, 201, None) == (300, 200)


def test_crop_reaches_the_output(tmp_path):
    src = write_video(tmp_path / "src.mp4", 25, 10)
    result = make_clip(src, tmp_path / "c.mp4", 0, None, (0, 0, 64, 32), ClipOptions(crop="bbox"))
    assert (result.info.width, result.info.height) == (64, 32)
