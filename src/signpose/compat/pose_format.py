"""pose-format==0.15.0 internals: its per-frame conversion of MediaPipe Holistic results.

`pose_format.utils.holistic.load_holistic` holds every frame of a clip and builds a graph per
call; signpose streams frames through one graph per process, and to stay byte for byte what
`load_holistic` writes it converts each frame with the same private function
(tests/test_compat_pose_format.py pins its signature and output).
"""

from __future__ import annotations

PIN = "pose-format==0.15.0"


def extract_frame_data(results, width: int, height: int, extra_face: int):
    """(points, 3) coordinates and (points,) confidences of one frame's Holistic results."""
    from pose_format.utils.holistic import _extract_frame_data

    return _extract_frame_data(results, width, height, extra_face)
