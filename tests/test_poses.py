"""MediaPipe Holistic on real video: the .pose equals pose-format's own, without TensorFlow."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import SAMPLE, VIDEO
from signpose import tombstone
from signpose.holistic import HolisticOptions, MissingModel, check_model, estimate
from signpose.posefile import write_pose


def read_pose(path: Path):
    from pose_format import Pose

    return Pose.read(path.read_bytes())


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """What pose-format's own CLI writes for the same video and options."""
    out = tmp_path_factory.mktemp("ref") / "ref.pose"
    cli = Path(sys.executable).parent / "video_to_pose"
    subprocess.run([str(cli), "-i", str(VIDEO), "-o", str(out), "--format", "mediapipe",
                    "--additional-config", "model_complexity=1"],
                   check=True, capture_output=True)  # fmt: skip
    return out


def test_pose_file_is_interchangeable_with_pose_formats_own(tmp_path, reference):
    ours = tmp_path / "ours.pose"
    write_pose(estimate(VIDEO, HolisticOptions()), ours)
    a, b = read_pose(ours), read_pose(reference)
    assert a.header.components == b.header.components
    assert sum(len(c.points) for c in a.header.components) == 576
    assert (a.header.dimensions.width, a.header.dimensions.height) == (540, 720)
    assert a.body.fps == pytest.approx(b.body.fps, abs=0.01)
    assert a.body.data.shape == b.body.data.shape == (58, 1, 576, 3)
    # Same detections; coordinates within a pixel (the two readers decode the same frames).
    np.testing.assert_array_equal(a.body.confidence > 0, b.body.confidence > 0)
    seen = (a.body.confidence > 0) & (b.body.confidence > 0)
    diff = np.abs(a.body.data.filled(0) - b.body.data.filled(0))[seen]
    assert np.median(diff) < 0.5 and np.percentile(diff, 99) < 3.0


def test_refined_face_gives_586_points(tmp_path):
    pose = estimate(SAMPLE, HolisticOptions(refine_face_landmarks=True))
    assert sum(len(c.points) for c in pose.header.components) == 586


def run_pose_job(target: Path, first: str = "", last: str = "") -> None:
    """A pose job on VIDEO in a fresh process, as the workflow runs it."""
    code = f"import sys\n{first}\nfrom signpose.jobs.pose import pose_job\n"
    code += f"pose_job(*sys.argv[1:], {{}})\n{last}"
    subprocess.run([sys.executable, "-c", code, str(VIDEO), str(target)],
                   check=True, capture_output=True)  # fmt: skip


def test_pose_job_imports_only_what_holistic_needs_and_gives_the_same_poses(tmp_path):
    lean, full = tmp_path / "lean.pose", tmp_path / "full.pose"
    heavy = "{'tensorflow', 'matplotlib', 'mediapipe.tasks'}"
    run_pose_job(lean, last=f"assert not {heavy} & set(sys.modules), {heavy} & set(sys.modules)")
    # The same job after a plain `import mediapipe` (TensorFlow blocked, or it would load).
    run_pose_job(full, first="from signpose.compat.mediapipe import tensorflow_blocked\n"
                             "with tensorflow_blocked(): import mediapipe")  # fmt: skip
    a, b = read_pose(lean), read_pose(full)
    assert a.header.components == b.header.components
    np.testing.assert_array_equal(a.body.data.filled(0), b.body.data.filled(0))
    np.testing.assert_array_equal(a.body.confidence, b.body.confidence)


def test_a_clip_without_frames_is_a_tombstone(tmp_path):
    from signpose.video import ffmpeg_exe

    blank = tmp_path / "blank.mp4"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i",
                    "color=c=gray:s=128x128:d=1:r=10", "-pix_fmt", "yuv420p", str(blank)],
                   check=True)  # fmt: skip
    result = estimate(blank, HolisticOptions())
    assert isinstance(result, tombstone.Tombstone) and result.reason == "no_person"


def test_missing_models_are_named():
    check_model(1)
    with pytest.raises(MissingModel, match="pose_landmark_heavy.tflite"):
        check_model(2)


def pose_bytes(pose) -> bytes:
    buffer = io.BytesIO()
    pose.write(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("refine", [False, True])
def test_poses_are_load_holistics_bytes_also_from_a_reused_graph(refine):
    """The graph is reset between clips, not rebuilt: nothing of one clip reaches the next."""
    from pose_format.utils.holistic import load_holistic

    from signpose.video import probe, rgb_frames

    opts = HolisticOptions(refine_face_landmarks=refine)
    for clip in (VIDEO, SAMPLE, VIDEO):  # the second and third run on the graph of the first
        frames = list(rgb_frames(clip))
        height, width = frames[0].shape[:2]
        reference = load_holistic(frames, fps=probe(clip, count_frames=False).fps, width=width,
                                  height=height, additional_holistic_config=opts.as_mediapipe(),
                                  reuse=False)  # fmt: skip
        assert pose_bytes(estimate(clip, opts)) == pose_bytes(reference)


def test_a_clip_that_fails_midway_leaves_no_state_for_the_next():
    """A failed clip's graph is dropped, not reset: the next clip gets a new one."""
    from signpose.holistic import holistic_pose
    from signpose.video import rgb_frames

    def broken():
        frames = rgb_frames(VIDEO)
        yield next(frames)
        yield next(frames)
        raise OSError("the disk went away")

    opts = HolisticOptions()
    expected = pose_bytes(estimate(VIDEO, opts))
    with pytest.raises(OSError, match="disk went away"):
        holistic_pose(broken(), 30.0, opts)
    assert pose_bytes(estimate(VIDEO, opts)) == expected
