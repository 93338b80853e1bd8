"""pose-format==0.15.0 internals: its per-frame conversion of MediaPipe Holistic results, and
its header cache.

`pose_format.utils.holistic.load_holistic` holds every frame of a clip and builds a graph per
call; signpose streams frames through one graph per process, and to stay byte for byte what
`load_holistic` writes it converts each frame with the same private function.

`Pose.read` returns the same `PoseHeader` object for every file whose header bytes equal those
of the file read before it (`pose_format.pose_header.PoseHeaderCache`): every Holistic pose of a
540x720 video shares one header. pose-format's and pose-anonymization's own functions change a
header in place (`normalize_pose_size` sets its width and height to 512), so in a process that
reads many poses (a fork-server worker, a lexicon job) cleaning one clip would change the width
the next clip's depth is scaled by. `read_pose_bytes` gives every pose a header of its own.
tests/test_compat_pose_format.py pins both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pose_format import Pose

PIN = "pose-format==0.15.0"


def extract_frame_data(results, width: int, height: int, extra_face: int):
    """(points, 3) coordinates and (points,) confidences of one frame's Holistic results."""
    from pose_format.utils.holistic import _extract_frame_data

    return _extract_frame_data(results, width, height, extra_face)


def read_pose_bytes(data: bytes) -> Pose:
    """`Pose.read(data)` with a header no other pose shares (one header parse, under 1 ms)."""
    from pose_format import Pose
    from pose_format.pose_header import PoseHeaderCache

    PoseHeaderCache.clear_cache()
    return Pose.read(data)
