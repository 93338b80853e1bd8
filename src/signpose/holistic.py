"""MediaPipe Holistic over every decoded frame of a clip, written as a pose-format file.

The file is built from pose-format's own header and per-frame conversion, so it is byte for byte
what `pose_format.utils.holistic.load_holistic` writes (components, point names and order, 576
or 586 points, confidence semantics; tested), while frames are streamed, not held in memory.
mediapipe is imported lean (signpose.compat.mediapipe says why and how).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from signpose import tombstone, video
from signpose.compat import mediapipe as mp_compat
from signpose.compat.pose_format import extract_frame_data
from signpose.tombstone import Tombstone

if TYPE_CHECKING:
    from pose_format import Pose


@dataclass(frozen=True)
class HolisticOptions:
    model_complexity: int = 1
    refine_face_landmarks: bool = False
    smooth_landmarks: bool = True
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5

    def as_mediapipe(self) -> dict:
        return {
            "static_image_mode": False,
            "model_complexity": self.model_complexity,
            "refine_face_landmarks": self.refine_face_landmarks,
            "smooth_landmarks": self.smooth_landmarks,
            "min_detection_confidence": self.min_detection_confidence,
            "min_tracking_confidence": self.min_tracking_confidence,
        }


class MissingModel(RuntimeError):
    """The model file for the requested model_complexity is not in the mediapipe wheel."""


def check_model(model_complexity: int) -> None:
    model = mp_compat.pose_model_path(model_complexity)
    if model is None:
        raise MissingModel("mediapipe is not installed")
    if not model.exists():
        raise MissingModel(
            f"pose.model_complexity {model_complexity} needs {model}, which mediapipe 0.10.21 "
            "does not ship; download it from MediaPipe's model storage and copy it there "
            "(see config/README.md), or use model_complexity 1"
        )


def estimate(clip: str | os.PathLike, opts: HolisticOptions) -> Pose | Tombstone:
    """The clip's poses, or a tombstone when there is no frame or nobody in any frame."""
    dead = tombstone.read(clip)
    if dead is not None:
        return dead
    check_model(opts.model_complexity)
    try:
        info = video.probe(clip, count_frames=False)
        frames = video.rgb_frames(clip)
        first = next(frames, None)
    except video.UnreadableVideo as e:
        return Tombstone("pose", "undecodable_clip", str(e))
    if first is None:
        return Tombstone("pose", "no_frames", f"{clip}: no decodable frame")
    pose = holistic_pose(_chain(first, frames), info.fps, opts)
    if not pose.body.confidence.any():
        n = pose.body.data.shape[0]
        return Tombstone("pose", "no_person", f"nobody detected in any of {n} frames")
    return pose


def holistic_pose(frames: Iterator, fps: float, opts: HolisticOptions) -> Pose:
    """What `pose_format.utils.holistic.load_holistic` returns for these frames, byte for byte.

    Its own header and per-frame conversion are used; only the graph differs: one per process
    and options, reset between clips (`reset()` restarts the graph run, so nothing of the last
    clip is tracked into the next), instead of a new graph per clip, which costs 80 ms more
    per clip in model set-up. Frames are streamed, not held.
    """
    from pose_format import Pose
    from pose_format.numpy.pose_body import NumPyPoseBody

    extra_face = 10 if opts.refine_face_landmarks else 0
    graph = _graph(opts)
    data, conf, height, width = [], [], 0, 0
    try:
        for frame in frames:
            height, width = frame.shape[:2]
            frame_data, frame_conf = extract_frame_data(graph.process(frame), width, height,
                                                        extra_face)  # fmt: skip
            data.append(frame_data)
            conf.append(frame_conf)
        graph.reset()
    except BaseException:
        _graph.cache_clear()  # a graph that failed mid-clip is not trusted with the next one
        with contextlib.suppress(Exception):
            graph.close()
        raise
    if not data:
        raise ValueError("no frames to estimate poses from")
    body = NumPyPoseBody(fps=fps, data=np.expand_dims(np.stack(data), axis=1),
                         confidence=np.expand_dims(np.stack(conf), axis=1))  # fmt: skip
    return Pose(holistic_header(width, height, extra_face), body)


def holistic_header(width: int, height: int, extra_face: int):
    """The header `load_holistic` writes: 576 points, or 586 with the refined face."""
    mp_compat.import_mediapipe()  # first: pose-format's holistic module imports mediapipe whole
    from pose_format.pose_header import PoseHeader, PoseHeaderDimensions
    from pose_format.utils.holistic import holistic_components

    return PoseHeader(version=0.2, dimensions=PoseHeaderDimensions(width, height, 0),
                      components=holistic_components("XYZC", extra_face))  # fmt: skip


def empty_pose_bytes(opts: HolisticOptions) -> bytes:
    """A `.pose` with the header these options give and no frame: a lost instance's pose."""
    from pose_format import Pose

    from signpose.posefile import empty_body, pose_bytes

    header = holistic_header(0, 0, 10 if opts.refine_face_landmarks else 0)
    return pose_bytes(Pose(header, empty_body(header)))


@functools.cache
def _graph(opts: HolisticOptions):
    return mp_compat.import_mediapipe().solutions.holistic.Holistic(**opts.as_mediapipe())


def _chain(first, rest):
    yield first
    yield from rest
