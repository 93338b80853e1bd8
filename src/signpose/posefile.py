"""Reading and writing `.pose` files (pose-format), checked and crash-safe."""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING

from signpose.files import atomic_path

if TYPE_CHECKING:
    from pose_format import Pose

# The Holistic components features are built from, with their point counts (the face has 478
# points when the iris is refined); POSE_WORLD_LANDMARKS is not used.
REQUIRED_COMPONENTS = {"POSE_LANDMARKS": (33,), "FACE_LANDMARKS": (468, 478),
                       "LEFT_HAND_LANDMARKS": (21,), "RIGHT_HAND_LANDMARKS": (21,)}  # fmt: skip


class PoseFileError(ValueError):
    """A .pose file that is cut short or not MediaPipe Holistic; the message names the file."""


def read_pose(path: str | os.PathLike) -> Pose:
    """The pose-format file at `path`, checked to be complete and to hold Holistic components.

    pose-format's own errors for a cut-off file are a TypeError or struct.error about buffer
    sizes; a 20,000-file run needs the file's name and what to do instead.
    """
    from signpose.compat.pose_format import read_pose_bytes

    with open(path, "rb") as f:
        data = f.read()
    try:
        pose = read_pose_bytes(data)
    except Exception as e:  # noqa: BLE001 - any parse failure means the same thing here
        raise PoseFileError(
            f"{path}: not a complete pose-format file ({type(e).__name__}: {e}); "
            "delete it and rerun to recompute it"
        ) from None
    points = {c.name: len(c.points) for c in pose.header.components}
    wrong = [n for n, sizes in REQUIRED_COMPONENTS.items() if points.get(n) not in sizes]
    if wrong:
        raise PoseFileError(
            f"{path}: not a MediaPipe Holistic pose: component {wrong[0]} missing or of the "
            f"wrong size (components: {', '.join(f'{n}[{k}]' for n, k in points.items())})"
        )
    return pose


def empty_body(header):
    """No frame, for `header`'s points. Its rate is any positive one: readers divide by it."""
    import numpy as np
    from pose_format.numpy.pose_body import NumPyPoseBody

    n = sum(len(c.points) for c in header.components)
    return NumPyPoseBody(fps=25.0, data=np.zeros((0, 1, n, 3), np.float32),
                         confidence=np.zeros((0, 1, n), np.float32))  # fmt: skip


def pose_bytes(pose: Pose) -> bytes:
    out = io.BytesIO()
    pose.write(out)
    return out.getvalue()


def write_pose(pose: Pose, target: str | os.PathLike) -> None:
    with atomic_path(target) as tmp, open(tmp, "wb") as f:
        pose.write(f)
