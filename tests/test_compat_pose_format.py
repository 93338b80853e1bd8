"""What signpose.compat.pose_format relies on in pose-format==0.15.0; an upgrade fails here."""

from __future__ import annotations

import importlib.metadata
import inspect
from types import SimpleNamespace

import numpy as np

from signpose.compat import pose_format as pf_compat
from signpose.compat.mediapipe import import_mediapipe

PIN = pf_compat.PIN


def test_the_installed_version_is_the_pin():
    version = importlib.metadata.version("pose-format")
    assert f"pose-format=={version}" == PIN, f"{PIN} is pinned, {version} is installed"


def test_the_per_frame_conversion_keeps_its_signature():
    import_mediapipe()
    from pose_format.utils.holistic import _extract_frame_data

    params = list(inspect.signature(_extract_frame_data).parameters)
    assert params[:4] == ["results", "w", "h", "additional_face_points"], (
        f"{PIN} changed pose_format.utils.holistic._extract_frame_data: {params}"
    )


def landmarks(n: int, value: float):
    points = [SimpleNamespace(x=value, y=value, z=value, visibility=0.5) for _ in range(n)]
    return SimpleNamespace(landmark=points)


def test_a_frame_converts_to_576_points_in_holistic_order():
    import_mediapipe()
    nobody = SimpleNamespace(pose_landmarks=None, face_landmarks=None, left_hand_landmarks=None,
                             right_hand_landmarks=None, pose_world_landmarks=None)  # fmt: skip
    data, conf = pf_compat.extract_frame_data(nobody, 100, 50, 0)
    assert data.shape == (576, 3) and conf.shape == (576,), f"{PIN} changed the frame layout"
    assert not conf.any()
    hand = SimpleNamespace(**{**vars(nobody), "right_hand_landmarks": landmarks(21, 0.5)})
    data, conf = pf_compat.extract_frame_data(hand, 100, 50, 0)
    right = slice(33 + 468 + 21, 33 + 468 + 42)  # pose, face, left hand, right hand, world
    assert conf[right].all() and conf.sum() == 21, f"{PIN} changed the component order"
    # x, y in pixels; z as MediaPipe gives it (signpose.features scales it by the width)
    np.testing.assert_allclose(data[right][0], [50, 25, 0.5], err_msg=PIN)


def holistic_pose_bytes(width: int, height: int) -> bytes:
    from pose_format import Pose

    from signpose.holistic import holistic_header
    from signpose.posefile import empty_body, pose_bytes

    header = holistic_header(width, height, 0)
    return pose_bytes(Pose(header, empty_body(header)))


def test_pose_read_shares_one_header_between_equal_files():
    """Why read_pose_bytes exists: if this fails, pose-format dropped its header cache."""
    from pose_format import Pose
    from pose_format.pose_header import PoseHeaderCache

    data = holistic_pose_bytes(540, 720)
    assert Pose.read(data).header is Pose.read(data).header, f"{PIN} no longer caches headers"
    assert callable(PoseHeaderCache.clear_cache), f"{PIN} changed PoseHeaderCache"


def test_a_header_changed_in_place_does_not_reach_the_next_read():
    from pose_format.utils.generic import normalize_pose_size

    data = holistic_pose_bytes(540, 720)
    first = pf_compat.read_pose_bytes(data)
    normalize_pose_size(first)  # what pose-anonymization's remove_appearance ends with
    assert first.header.dimensions.width == 512
    second = pf_compat.read_pose_bytes(data)
    assert second.header is not first.header
    assert (second.header.dimensions.width, second.header.dimensions.height) == (540, 720)
