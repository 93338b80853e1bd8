"""Clips: trim a source video by time and crop it to the signer, one clip per instance.

WLASL's frame numbers are counted at the metadata's fps (25), whatever the source's real rate
(many YouTube sources are 30 fps), so trimming is by time: start = (frame_start-1)/fps,
end = frame_end/fps. Re-encoding makes the cut frame-accurate; the clip keeps the source's
own frame timestamps (no frame is duplicated or dropped to reach a nominal rate).
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from signpose import tombstone, video
from signpose.files import atomic_path
from signpose.tombstone import Tombstone

# A frame whose timestamp equals a cut point must land on the right side of it despite
# rounding: both cut points move 1 ms earlier (far less than any frame interval), so a frame
# exactly at the start is kept and one exactly at the end is dropped.
EDGE_S = 1e-3
# Input seeking stops this long before the start; the trim filter then cuts exactly.
PREROLL_S = 1.0


@dataclass(frozen=True)
class ClipOptions:
    crop: str = "bbox_margin"  # off | bbox | bbox_margin
    margin: float = 0.15
    max_side: int | None = 720
    crf: int = 18
    # superfast: half of veryfast's CPU time at equal SSIM, 30% larger files (config/README.md)
    preset: str = "superfast"


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int


def crop_box(
    bbox: tuple[float, float, float, float] | None,
    width: int,
    height: int,
    mode: str,
    margin: float,
) -> Box | None:
    """The crop rectangle in frame pixels: the bbox (+ margin) clamped to the frame, even sized.

    None means "no crop": cropping is off, there is no bbox, or the box covers the frame.
    """
    if mode == "off" or bbox is None:
        return None
    x0, y0, x1, y1 = bbox
    if mode == "bbox_margin":
        mx, my = (x1 - x0) * margin, (y1 - y0) * margin
        x0, y0, x1, y1 = x0 - mx, y0 - my, x1 + mx, y1 + my
    x0, x1 = max(0, int(x0)), min(width, int(round(x1)))
    y0, y1 = max(0, int(y0)), min(height, int(round(y1)))
    w, h = (x1 - x0) // 2 * 2, (y1 - y0) // 2 * 2
    if w < 16 or h < 16 or (w >= width - 1 and h >= height - 1):
        return None  # a box outside or covering the frame is no hint at all
    return Box(x0, y0, w, h)


def scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """Even output size, downscaled so the longer side is at most `max_side`."""
    factor = 1.0 if not max_side else min(1.0, max_side / max(width, height))
    return max(2, int(width * factor) // 2 * 2), max(2, int(height * factor) // 2 * 2)


def ffmpeg_args(
    src: Path, dst: Path, start_s: float, end_s: float | None, box: Box | None,
    size: tuple[int, int], opts: ClipOptions, threads: int = 1,
) -> list[str]:  # fmt: skip
    seek = max(0.0, start_s - PREROLL_S)
    trim = f"trim=start={max(0.0, start_s - seek - EDGE_S):.6f}"
    if end_s is not None:
        trim += f":end={end_s - seek - EDGE_S:.6f}"
    filters = [trim, "setpts=PTS-STARTPTS"]
    if box:
        filters.append(f"crop={box.w}:{box.h}:{box.x}:{box.y}")
    filters.append(f"scale={size[0]}:{size[1]}")
    # ffmpeg would start threads for every core; the job was given `threads` of them
    args = [video.ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    args += ["-threads", str(threads), "-filter_threads", str(threads)]
    args += ["-ss", f"{seek:.6f}", "-i", os.fspath(src)]
    args += ["-map", "0:v:0", "-an", "-sn", "-dn", "-vf", ",".join(filters)]
    args += ["-fps_mode", "passthrough", "-threads", str(threads)]
    args += ["-c:v", "libx264", "-preset", opts.preset]
    args += ["-crf", str(opts.crf), "-pix_fmt", "yuv420p", "-movflags", "+faststart"]
    return [*args, os.fspath(dst)]


@dataclass(frozen=True)
class ClipResult:
    info: video.VideoInfo
    source: video.VideoInfo


def make_clip(
    src: Path,
    dst: Path,
    start_s: float,
    end_s: float | None,
    bbox: tuple[float, float, float, float] | None,
    opts: ClipOptions,
    threads: int = 1,
) -> ClipResult | Tombstone:
    """Write the clip at `dst`, or a tombstone saying why there is none."""
    dead = tombstone.read(src)
    if dead is not None:
        return dead  # the source's own fate, passed on unchanged
    try:
        source = video.probe(src, count_frames=False)
    except video.UnreadableVideo as e:
        return Tombstone("clip", "undecodable_source", str(e))
    if source.fps > 0 and source.frames > 0 and start_s >= source.duration_s:
        detail = f"starts at {start_s:.2f} s, source lasts {source.duration_s:.2f} s"
        return Tombstone("clip", "trim_out_of_range", detail)
    box = crop_box(bbox, source.width, source.height, opts.crop, opts.margin)
    size = scaled_size(box.w if box else source.width, box.h if box else source.height,
                       opts.max_side)  # fmt: skip
    try:
        with atomic_path(dst) as tmp:
            encode(ffmpeg_args(src, tmp, start_s, end_s, box, size, opts, threads), src)
            info = written_clip(tmp)
            if info is None:
                raise EmptyClip(f"no frame between {start_s:.2f} s and {end_s} s")
    except EmptyClip as e:
        return Tombstone("clip", "trim_out_of_range", str(e))
    return ClipResult(info=info, source=source)


def written_clip(path: Path) -> video.VideoInfo | None:
    """The clip ffmpeg just wrote, or None when it holds no frame.

    The container's frame count of a fresh ffmpeg file is exact, so no decoding pass is needed;
    ffmpeg writes a clip without frames as a bare header that no decoder opens.
    """
    try:
        info = video.probe(path, count_frames=False)
    except video.UnreadableVideo:
        return None
    return info if info.frames > 0 else None


class EmptyClip(Exception):
    """The trim range holds no frame; caught inside make_clip so no empty clip is renamed."""


def encode(args: list[str], src: Path) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        if proc.returncode < 0:  # the OOM killer (SIGKILL), a file size limit (SIGXFSZ)
            last = f"killed by {signal.Signals(-proc.returncode).name}"
        raise RuntimeError(f"{src}: ffmpeg failed ({proc.returncode}): {last}")
