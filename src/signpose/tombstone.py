"""Tombstones: a per-instance target that holds nothing, and says why.

A dead link or an unreadable video is data, not an error: the stage still writes its target so
that Snakemake sees the job as done, later dry-runs stay clean, and every later stage (and the
tables) can tell the instance's fate. The target is a valid file of its own format that holds
nothing (an mp4 whose one video track has no frame, an `.npy` of shape (0, 540), a `.pose`
with its header and no frame), so every reader of that format opens it; the reason follows the
data as a trailer that the formats' readers skip: an MP4 `free` box, which `.npy` and `.pose`
readers never reach because they stop after the (zero) frames their header announces.

    <empty file of the format> <size:u32be> b"free" <JSON> <len(JSON):u32be> TAIL

Reading a tombstone costs one read of the last bytes of a file. Results written before this
format (a bare JSON document saved under the data file's name, starting with LEGACY) are still
recognised, and `upgrade` rewrites them in the new form.
"""

from __future__ import annotations

import functools
import io
import json
import os
import struct
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from signpose.files import write_bytes_atomic

TAIL = b"signpose-tombstone-v2"
LEGACY = b'{"signpose_tombstone"'
_LEN = struct.Struct(">I")


@dataclass(frozen=True)
class Tombstone:
    stage: str  # the stage that gave up: download, clip, pose, features, clean
    reason: str  # short machine-friendly class, e.g. "http_404", "no_frames"
    detail: str = ""  # one human line: the error message, never secrets


def write(path: str | os.PathLike, tomb: Tombstone, empty: bytes | None = None) -> None:
    """Write `tomb` at `path`: `empty` (default: the empty file of the path's suffix), trailer."""
    if empty is None:
        empty = empty_file(path)
    doc = {"signpose_tombstone": 2, "stage": tomb.stage, "reason": tomb.reason,
           "detail": tomb.detail}  # fmt: skip
    write_bytes_atomic(path, empty + trailer(json.dumps(doc, ensure_ascii=False).encode()))


def trailer(payload: bytes) -> bytes:
    body = payload + _LEN.pack(len(payload)) + TAIL
    return _LEN.pack(8 + len(body)) + b"free" + body


def read(path: str | os.PathLike) -> Tombstone | None:
    """The tombstone at `path`, or None when `path` holds real data."""
    with open(path, "rb") as f:
        if f.read(len(LEGACY)) == LEGACY:
            return _tombstone(json.loads(LEGACY + f.read()))
        size = f.seek(0, os.SEEK_END)
        end = _LEN.size + len(TAIL)
        if size < end:
            return None
        f.seek(size - end)
        tail = f.read(end)
        if not tail.endswith(TAIL):
            return None
        n = _LEN.unpack(tail[: _LEN.size])[0]
        f.seek(size - end - n)
        return _tombstone(json.loads(f.read(n)))


def _tombstone(doc: dict) -> Tombstone:
    return Tombstone(stage=doc["stage"], reason=doc["reason"], detail=doc.get("detail", ""))


def is_legacy(path: str | os.PathLike) -> bool:
    """True for a tombstone of the old form: a JSON document that no reader of the format opens."""
    with open(path, "rb") as f:
        return f.read(len(LEGACY)) == LEGACY


def upgrade(path: str | os.PathLike, empty: bytes | None = None) -> bool:
    """Rewrite an old-form tombstone in the current form (`empty` as in `write`), keeping its
    time stamps.

    Snakemake decides what is stale by modification times, so an upgraded result reruns nothing.
    Returns whether `path` was upgraded.
    """
    if not is_legacy(path):
        return False
    tomb, stat = read(path), os.stat(path)
    write(path, tomb, empty)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return True


def upgrade_all(folders, empty_pose: bytes | None = None) -> list[Path]:
    """`upgrade` every old-form tombstone in `folders` (their .mp4, .pose, .npy files); a `.pose`
    gets `empty_pose` (the header of the run's pose options) or the default Holistic one."""
    paths = sorted(p for d in map(Path, folders) if d.is_dir() for p in d.iterdir()
                   if p.suffix in EMPTY and p.is_file())  # fmt: skip
    return [p for p in paths if upgrade(p, empty_pose if p.suffix == ".pose" else None)]


# ---------------------------------------------------------------- empty files of each format


def empty_file(path: str | os.PathLike) -> bytes:
    suffix = Path(path).suffix
    if suffix not in EMPTY:
        raise ValueError(f"{path}: no empty form is known for {suffix!r} files")
    return EMPTY[suffix]()


def empty_npy() -> bytes:
    """An array of shape (0, 540), float32: a feature file without frames."""
    import numpy as np

    from signpose import layout

    out = io.BytesIO()
    np.save(out, np.zeros((0, layout.N_FEATURES), dtype=np.float32))
    return out.getvalue()


def empty_holistic_pose() -> bytes:
    """A MediaPipe Holistic `.pose` (default options: 576 points) with no frame."""
    from signpose import holistic

    return holistic.empty_pose_bytes(holistic.HolisticOptions())


@functools.cache
def empty_mp4() -> bytes:
    """An H.264 mp4 with one 16x16 video track and no frame.

    ffmpeg writes no track at all for zero frames, which no reader opens; so one black frame is
    encoded and its sample tables, durations and media data are emptied. OpenCV opens the result
    (0 frames) and ffmpeg reads its stream and copies it (tests/test_tombstones.py).
    """
    from signpose import video

    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one.mp4"
        args = [video.ffmpeg_exe(), "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                "color=black:s=16x16:r=25", "-frames:v", "1", "-c:v", "libx264", "-pix_fmt",
                "yuv420p", "-movflags", "+faststart", os.fspath(one)]  # fmt: skip
        subprocess.run(args, check=True, capture_output=True)
        return b"".join(_emptied(t, p) for t, p in _boxes(one.read_bytes()))


_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"dinf"}
_DURATION_AT = {b"mvhd": 16, b"tkhd": 20, b"mdhd": 16}  # offset of a version-0 box's duration


def _boxes(data: bytes):
    i = 0
    while i < len(data):
        size, kind = struct.unpack_from(">I4s", data, i)
        yield kind, data[i + 8 : i + size]
        i += size


def _box(kind: bytes, payload: bytes) -> bytes:
    return _LEN.pack(8 + len(payload)) + kind + payload


def _emptied(kind: bytes, payload: bytes) -> bytes:
    if kind in _CONTAINERS:
        kept = (_emptied(k, p) for k, p in _boxes(payload) if k not in (b"edts", b"stss"))
        return _box(kind, b"".join(kept))
    if kind in (b"stts", b"stsc", b"stco", b"ctts"):
        return _box(kind, payload[:4] + _LEN.pack(0))  # version/flags, no entry
    if kind == b"stsz":
        return _box(kind, payload[:4] + _LEN.pack(0) + _LEN.pack(0))
    if kind == b"mdat":
        return _box(kind, b"")
    if kind in _DURATION_AT:
        if payload[0] != 0:
            raise ValueError(f"ffmpeg wrote a version-{payload[0]} {kind.decode()} box")
        at = _DURATION_AT[kind]
        return _box(kind, payload[:at] + _LEN.pack(0) + payload[at + 4 :])
    return _box(kind, payload)


EMPTY: dict[str, Callable[[], bytes]] = {
    ".mp4": empty_mp4,
    ".npy": empty_npy,
    ".pose": empty_holistic_pose,
}
