from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import VIDEO
from signpose import layout, tombstone
from signpose.config import with_defaults
from signpose.features import (
    FeatureOptions,
    Parts,
    QCThresholds,
    ema,
    extract,
    failed_checks,
    feature_matrix,
    nonempty_span,
    trim,
)
from signpose.jobs.features import features_job, features_shard
from signpose.posefile import PoseFileError


def synthetic_parts(frames: int = 10) -> Parts:
    rng = np.random.default_rng(0)
    body = rng.normal(200, 5, (frames, 33, 3)).astype(np.float32)
    body[:, 11] = [100, 100, 0]  # shoulders 100 px apart, hips 100 px below: scale 100
    body[:, 12] = [200, 100, 0]
    body[:, 23] = [100, 200, 0]
    body[:, 24] = [200, 200, 0]
    hands = rng.normal(150, 5, (frames, 21, 3)).astype(np.float32)
    found = {k: np.ones(frames, bool) for k in ("body", "face", "left_hand", "right_hand")}
    found["right_hand"][3:6] = False
    face = rng.normal(150, 5, (frames, len(layout.FACE_INDICES), 3)).astype(np.float32)
    return Parts(body, np.full((frames, 33), 0.9, np.float32), hands, hands + 10, face, found)


def test_torso_centre_and_scale():
    feats = feature_matrix(synthetic_parts())
    assert feats.shape == (10, layout.N_FEATURES) and feats.dtype == np.float32
    pose = feats[:, layout.POSE].reshape(10, 33, 4)
    np.testing.assert_allclose(pose[:, 11, :2], [[-0.5, -0.5]] * 10, atol=1e-6)
    np.testing.assert_allclose(pose[:, 24, :2], [[0.5, 0.5]] * 10, atol=1e-6)
    np.testing.assert_allclose(pose[:, :, 3], 0.9, atol=1e-6)  # visibility kept as is


def test_missing_parts_are_nan_and_interior_frames_stay():
    parts = synthetic_parts()
    feats = feature_matrix(parts)
    right = feats[:, layout.RIGHT_HAND]
    assert np.isnan(right[3:6]).all() and not np.isnan(right[:3]).any()
    assert not np.isnan(feats[:, layout.LEFT_HAND]).any()
    assert nonempty_span(parts) == slice(0, 10)


def test_empty_ends_are_trimmed_but_not_gaps():
    parts = synthetic_parts()
    for key in ("body", "left_hand", "right_hand"):
        parts.found[key][[0, 1, 5, 9]] = False
    span = nonempty_span(parts)
    assert span == slice(2, 9)
    assert len(trim(parts, span).body) == 7  # frame 5 (interior) kept


def test_ema_restarts_after_gaps():
    x = np.array([[0.0], [10.0], [np.nan], [10.0], [20.0]], np.float32)
    out = ema(x, 0.2)
    np.testing.assert_allclose(out[:, 0], [0, 2, np.nan, 10, 12])


def test_quality_thresholds_name_what_failed():
    metrics = {"frames": 5, "body_ratio": 1.0, "hand_ratio": 0.1, "mean_visibility": 0.9}
    assert failed_checks(metrics, QCThresholds()) == ["min_frames", "min_hand_ratio"]


@pytest.fixture(scope="module")
def real_pose():
    from signpose.holistic import HolisticOptions, estimate

    return estimate(VIDEO, HolisticOptions())


def test_real_pose_features_and_qc(real_pose):
    feats, qc = extract(real_pose, FeatureOptions())
    assert feats.shape[1] == 540 and feats.dtype == np.float32
    assert qc["frames_raw"] == 58 and qc["frames"] <= 58
    # The signer's left hand is never seen in this clip (a known hard case).
    assert qc["left_hand_ratio"] == 0.0 and np.isnan(feats[:, layout.LEFT_HAND]).all()
    assert 0.5 < qc["body_ratio"] <= 1 and qc["right_hand_ratio"] > 0.3
    assert qc["motion_p95"] >= qc["motion_p50"] > 0
    assert qc["status"] == "kept" and qc["failed"] == []
    strict = FeatureOptions(qc=QCThresholds(min_frames=100))
    assert extract(real_pose, strict)[1]["status"] == "low_quality"


def test_a_job_does_not_depend_on_the_jobs_its_process_ran_before(tmp_path, real_pose):
    """A features job cleans a whole shard in one process (and a fork-server worker runs many
    jobs); cleaning one pose (pose-anonymization resizes its header to 512 in place) once
    changed the depth scale of the next clip whose header bytes were the same (pose-format
    hands equal headers out as one object)."""
    pose = tmp_path / "a.pose"
    with open(pose, "wb") as f:
        real_pose.write(f)
    opts = with_defaults({}, "features")

    def run(name: str) -> bytes:
        out = [str(tmp_path / f"{name}.{ext}") for ext in ("npy", "clean.pose")]
        features_job(str(pose), *out, name, opts)
        return (tmp_path / f"{name}.npy").read_bytes()

    first = run("first")
    assert run("second") == first and run("third") == first


def assert_named_and_nothing_written(pose_path, problem: str) -> None:
    """The features job refuses `pose_path` with one line naming it; no .npy or QC appears."""
    out = pose_path.parent / "out"
    with pytest.raises(PoseFileError) as err:
        features_job(str(pose_path), str(out / "x.npy"), str(out / "x.pose"), "x",
                     with_defaults({}, "features"))  # fmt: skip
    message = str(err.value)
    assert message.startswith(f"{pose_path}: ") and problem in message and "\n" not in message
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize("keep", [0, 100, 0.5, -1])
def test_a_pose_file_cut_short_is_named(tmp_path, real_pose, keep):
    whole = tmp_path / "whole.pose"
    with open(whole, "wb") as f:
        real_pose.write(f)
    data = whole.read_bytes()
    cut = tmp_path / "cut.pose"
    cut.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    assert_named_and_nothing_written(cut, "not a complete pose-format file")


def test_a_pose_without_the_face_is_named(tmp_path, real_pose):
    path = tmp_path / "noface.pose"
    other = real_pose.get_components(["POSE_LANDMARKS", "LEFT_HAND_LANDMARKS",
                                      "RIGHT_HAND_LANDMARKS"])  # fmt: skip
    with open(path, "wb") as f:
        other.write(f)
    assert_named_and_nothing_written(path, "component FACE_LANDMARKS missing")


def test_an_openpose_file_is_named(tmp_path):
    from pose_format import Pose
    from pose_format.numpy.pose_body import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderDimensions
    from pose_format.utils.openpose import OpenPose_Components

    points = sum(len(c.points) for c in OpenPose_Components)
    body = NumPyPoseBody(fps=25, data=np.ones((5, 1, points, 2), np.float32),
                         confidence=np.ones((5, 1, points), np.float32))  # fmt: skip
    header = PoseHeader(0.2, PoseHeaderDimensions(640, 480, 0), OpenPose_Components)
    path = tmp_path / "openpose.pose"
    with open(path, "wb") as f:
        Pose(header, body).write(f)
    assert_named_and_nothing_written(path, "component POSE_LANDMARKS missing")


def test_one_unreadable_pose_loses_only_its_own_instance_of_the_shard(tmp_path, real_pose, caplog):
    good = tmp_path / "poses" / "good.pose"
    good.parent.mkdir()
    with open(good, "wb") as f:
        real_pose.write(f)
    bad = tmp_path / "poses" / "bad.pose"
    bad.write_bytes(good.read_bytes()[:1000])  # cut short, as a full disk or a killed copy would
    instances = [(vid, str(tmp_path / "poses" / f"{vid}.pose"), str(tmp_path / f"{vid}.npy"),
                  str(tmp_path / f"{vid}.clean.pose")) for vid in ("bad", "good")]  # fmt: skip
    qc = tmp_path / "qc" / "shards" / "000.jsonl"
    with caplog.at_level("ERROR", logger="signpose"):
        records = features_shard(instances, str(qc), with_defaults({}, "features"))
    assert [json.loads(line) for line in qc.read_text().splitlines()] == records
    lost, kept = records
    assert (lost["video_id"], lost["status"], lost["stage"], lost["reason"]) == (
        "bad", "dead", "pose", "unreadable_pose")  # fmt: skip
    assert lost["detail"].startswith(f"{bad}: not a complete pose-format file")
    (line,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert str(bad) in line and "\n" not in line
    # its files are tombstones that say why; the other instance is whole
    for path in (tmp_path / "bad.npy", tmp_path / "bad.clean.pose"):
        assert tombstone.read(path).reason == "unreadable_pose"
    assert np.load(tmp_path / "bad.npy").shape == (0, 540)
    assert kept["video_id"] == "good" and kept["status"] == "kept"
    assert np.load(tmp_path / "good.npy").shape[1] == 540
