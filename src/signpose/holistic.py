"""MediaPipe Holistic over every decoded frame of a clip, written as a pose-format file.

The file is built from pose-format's own header and per-frame conversion, so it is byte for byte
what `pose_format.utils.holistic.load_holistic` writes (components, point names and order, 576
or 586 points, confidence semantics; tested), while frames are streamed, not held in memory.

A pose job's fixed cost is paid 20,000 times in a WLASL run, so mediapipe is imported lean:
`import mediapipe` loads every solution and task, matplotlib (for a drawing helper) and, when
it is installed, TensorFlow (3 s and 700 MB per process, only to reach a docs helper and an
optional file opener). Here only the framework bindings and the legacy solutions load, and
TensorFlow is blocked while they do.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import importlib.util
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from signpose import tombstone, video
from signpose.files import atomic_path
from signpose.tombstone import Tombstone

if TYPE_CHECKING:
    from pose_format import Pose

# Holistic's pose landmark model per model_complexity; only "full" ships in the wheel.
POSE_MODELS = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite",
               2: "pose_landmark_heavy.tflite"}  # fmt: skip
# mediapipe/python/solutions/__init__.py of mediapipe 0.10.21, minus drawing_styles and
# drawing_utils (matplotlib).
SOLUTIONS = ("face_detection", "face_mesh", "face_mesh_connections", "hands", "hands_connections",
             "holistic", "objectron", "pose", "selfie_segmentation")  # fmt: skip


class _BlockTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):  # noqa: ARG002 - MetaPathFinder protocol
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None


@contextlib.contextmanager
def tensorflow_blocked() -> Iterator[None]:
    """While active, `import tensorflow` fails; mediapipe then falls back without it.

    Only mediapipe's own import needs it, so the block is lifted afterwards and a process that
    trains later (a test run, a notebook) can still import TensorFlow.
    """
    finder = _BlockTensorFlow()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


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


def import_mediapipe():
    """The mediapipe package with its legacy solutions loaded, and nothing more.

    The `__init__` of `mediapipe` and of `mediapipe.python.solutions` import the tasks API,
    the drawing helpers and through them matplotlib: 0.7 s of a pose job's start. Both
    packages are registered without running them and the solutions are imported one by one,
    all but the drawing helpers: Holistic's graph needs the calculator options that the other
    solutions register (face_mesh's landmark refinement, pose's smoothing), so the graph and
    its results are exactly those of a plain `import mediapipe`. Anything else can still be
    imported by name. A mediapipe imported earlier is used as it is.
    """
    if "mediapipe" in sys.modules:
        return sys.modules["mediapipe"]
    with tensorflow_blocked():
        mediapipe = _unexecuted_package("mediapipe")
        mediapipe.solutions = _unexecuted_package("mediapipe.python.solutions")
        mediapipe.python.solutions = mediapipe.solutions
        for name in SOLUTIONS:
            importlib.import_module(f"mediapipe.python.solutions.{name}")
    return mediapipe


def _unexecuted_package(name: str):
    """Package `name` in sys.modules without its `__init__` having run."""
    module = importlib.util.module_from_spec(importlib.util.find_spec(name))
    sys.modules[name] = module
    return module


class MissingModel(RuntimeError):
    """The model file for the requested model_complexity is not in the mediapipe wheel."""


def check_model(model_complexity: int) -> None:
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or spec.origin is None:
        raise MissingModel("mediapipe is not installed")
    model = Path(spec.origin).parent / "modules" / "pose_landmark" / POSE_MODELS[model_complexity]
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
    import_mediapipe()
    from pose_format import Pose
    from pose_format.numpy.pose_body import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderDimensions
    from pose_format.utils.holistic import _extract_frame_data, holistic_components

    extra_face = 10 if opts.refine_face_landmarks else 0
    graph = _graph(opts)
    data, conf, height, width = [], [], 0, 0
    try:
        for frame in frames:
            height, width = frame.shape[:2]
            frame_data, frame_conf = _extract_frame_data(graph.process(frame), width, height,
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
    header = PoseHeader(version=0.2, dimensions=PoseHeaderDimensions(width, height, 0),
                        components=holistic_components("XYZC", extra_face))  # fmt: skip
    body = NumPyPoseBody(fps=fps, data=np.expand_dims(np.stack(data), axis=1),
                         confidence=np.expand_dims(np.stack(conf), axis=1))  # fmt: skip
    return Pose(header, body)


@functools.cache
def _graph(opts: HolisticOptions):
    return import_mediapipe().solutions.holistic.Holistic(**opts.as_mediapipe())


def _chain(first, rest):
    yield first
    yield from rest


def write_pose(pose: Pose, target: str | os.PathLike) -> None:
    with atomic_path(target) as tmp, open(tmp, "wb") as f:
        pose.write(f)
