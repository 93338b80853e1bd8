"""The synthetic signing of benchmarks/ablation.py is what its docstring says, and the harness
runs end to end through the workflow's own training and evaluation jobs."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from signpose import layout
from signpose.config import with_defaults
from signpose.features import FeatureOptions, extract
from signpose.training.augment import mirror

sys.path.insert(0, str(ROOT / "benchmarks"))
import ablation  # noqa: E402

SIZES = ablation.Sizes(classes=4, signers=6, reps=2, val_signers=1, test_signers=2)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    return root, ablation.write_dataset(root, SIZES)


def test_splits_are_by_signer_and_every_split_has_a_left_dominant_signer(synthetic):
    root, described = synthetic
    df = pd.read_csv(root / "tables" / "instances.csv")
    signers = {s: set(df.loc[df["split"] == s, "signer_id"]) for s in ("train", "val", "test")}
    assert [len(v) for v in signers.values()] == [3, 1, 2]
    assert not (signers["train"] & signers["val"] or signers["train"] & signers["test"]
                or signers["val"] & signers["test"])  # fmt: skip
    left = {s for s, d in described["signers"].items() if d["left_dominant"]}
    assert left & signers["train"] and left & signers["test"]
    # every clip made it through the features stage's QC and has its features file
    assert (df["status"] == "kept").all() and described["kept"] == len(df) == 4 * 6 * 2
    for path in df["features_file"]:
        assert np.load(root / "tables" / path).shape[1] == layout.N_FEATURES
    with np.load(root / "stats" / "global_stats.npz") as stats:
        assert stats["mean"].shape == (layout.N_FEATURES,)
        assert len(stats["lengths"]) == (df["split"] == "train").sum()


def test_the_dominant_hand_is_missing_at_the_stated_rate(synthetic):
    root, described = synthetic
    df = pd.read_csv(root / "tables" / "instances.csv")
    lost = frames = 0
    for row in df.itertuples():
        left = described["signers"][row.signer_id]["left_dominant"]
        x = np.load(root / "tables" / row.features_file)
        hand = x[:, layout.LEFT_HAND if left else layout.RIGHT_HAND]
        # a hand is lost whole (every column NaN) or seen whole
        assert (np.isnan(hand).all(axis=1) == np.isnan(hand).any(axis=1)).all()
        lost += int(np.isnan(hand).all(axis=1).sum())
        frames += len(x)
    assert abs(lost / frames - SIZES.missing_hand) < 0.05, lost / frames


def test_a_left_dominant_signer_signs_the_mirror_image_with_the_same_face():
    rng = np.random.default_rng(3)
    motion = ablation.make_classes(4, rng)[0]  # one-handed
    right = ablation.make_signers(1, rng, camera=False)[0]
    left = dataclasses.replace(right, left_dominant=True)
    options = FeatureOptions.from_config(with_defaults({}, "features"))
    feats = []
    for signer in (right, left):
        points = ablation.clip_points(motion, signer, np.random.default_rng(7), 0.15)
        feats.append(extract(ablation.to_pose(points, signer.camera), options)[0])
    a, b = feats
    body = slice(0, layout.FACE.start)
    np.testing.assert_allclose(mirror(a)[:, body], b[:, body], atol=1e-5)
    # The face is the signer's own, not its mirror image (up to the jitter of the torso centre
    # it is measured from, which the mirrored body moves)
    face = layout.FACE
    assert np.abs(a[:, face] - b[:, face]).max() < 0.02
    assert np.abs(mirror(a)[:, face] - b[:, face]).max() > 0.1
    # and a different clip: the hand that moves (travels furthest) is the other one

    def travel(x, hand):
        return np.nanstd(x[:, hand], axis=0).sum()

    assert travel(a, layout.RIGHT_HAND) > 3 * travel(a, layout.LEFT_HAND)
    assert travel(b, layout.LEFT_HAND) > 3 * travel(b, layout.RIGHT_HAND)


def test_classes_in_a_group_differ_only_in_the_order_of_events():
    path, back, swapped, both = ablation.make_classes(4, np.random.default_rng(0))
    np.testing.assert_array_equal(back.path, path.path[::-1])
    assert swapped.shapes == path.shapes[::-1] and both.two_handed and not path.two_handed


@pytest.mark.slow
def test_the_harness_trains_and_tests_through_the_workflow_jobs(tmp_path):
    target = tmp_path / "ablation.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ablation.py"), "--classes", "4",
         "--signers", "5", "--reps", "1", "--val-signers", "1", "--test-signers", "1",
         "--epochs", "2", "--seq-len", "16", "--dim", "32", "--seeds", "2",
         "--variants", "0", "--threads", "2", "--out", str(tmp_path / "work"),
         "--json", str(target)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(target.read_text())
    assert result["benchmark"] == "ablation" and result["commit"]
    full = result["figures"]["ablation"][ablation.FULL]
    assert [r["test_n"] for r in full["runs"]] == [4, 4]
    tops = [r["test_top1"] for r in full["runs"]]
    assert all(0 <= t <= 1 for t in tops)
    assert full["test_top1_mean"] == pytest.approx(np.mean(tops))
    assert full["test_top1_sd"] == pytest.approx(np.std(tops, ddof=1))
    # each run wrote the workflow's metrics file
    assert (tmp_path / "work" / "runs" / "v00_s0" / "metrics.json").is_file()
