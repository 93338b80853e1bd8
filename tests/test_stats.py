from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signpose.aggregates import stats_job
from signpose.stats import NOTEBOOK_NAMES, RunningStats, global_stats, write_stats


def test_streaming_matches_one_big_nan_aware_computation():
    rng = np.random.default_rng(1)
    chunks = [rng.normal(3, 2, (rng.integers(5, 40), 7)) for _ in range(12)]
    for c in chunks[::3]:
        c[:4, 2:5] = np.nan  # undetected part
    acc = RunningStats(7)
    for c in chunks:
        acc.update(c)
    whole = np.concatenate(chunks)
    np.testing.assert_allclose(acc.mean, np.nanmean(whole, axis=0), rtol=1e-10)
    np.testing.assert_allclose(acc.std, np.nanstd(whole, axis=0, ddof=1), rtol=1e-10)
    np.testing.assert_array_equal(acc.count, (~np.isnan(whole)).sum(axis=0))


def test_stats_use_the_train_split_only(tmp_path):
    rng = np.random.default_rng(0)
    features = tmp_path / "features"
    features.mkdir()
    rows = []
    for i, (split, status) in enumerate(
        [("train", "kept")] * 4 + [("train", "low_quality"), ("val", "kept"), ("test", "kept")]
    ):
        np.save(features / f"v{i}.npy", rng.normal(size=(20, 540)).astype(np.float32))
        rows.append({"video_id": f"v{i}", "gloss": "g", "split": split, "status": status,
                     "features_file": str(features / f"v{i}.npy")})  # fmt: skip
    table = tmp_path / "instances.csv"
    pd.DataFrame(rows).to_csv(table, index=False)

    def stats() -> dict:
        out = tmp_path / "stats.npz"
        stats_job(str(table), str(out), 0.2)
        return dict(np.load(out))

    before = stats()
    assert list(before["lengths"]) == [20] * 4  # kept train clips only
    assert list(before["video_ids"]) == ["v0", "v1", "v2", "v3"]
    for changed in ("v4", "v5", "v6"):  # low-quality train, val, test
        np.save(features / f"{changed}.npy", np.full((9, 540), 1e6, np.float32))
    after = stats()
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])
    np.save(features / "v0.npy", np.full((20, 540), 5.0, np.float32))
    assert not np.allclose(stats()["mean"], before["mean"])


def test_the_notebook_names_are_the_same_arrays_with_the_clip_ids(tmp_path):
    rng = np.random.default_rng(2)
    clips = {}
    for vid, frames in (("a", 12), ("one_frame", 1), ("b", 30)):
        clips[vid] = tmp_path / f"{vid}.npy"
        np.save(clips[vid], rng.normal(size=(frames, 6)).astype(np.float32))
    target = tmp_path / "global_stats.npz"
    write_stats(global_stats(clips, 6, 0.2), target)
    with np.load(target) as z:  # no pickle: plain arrays a notebook can open
        for notebook, ours in NOTEBOOK_NAMES.items():
            np.testing.assert_array_equal(z[notebook], z[ours])
        assert dict(zip(z["video_ids"], z["seq_lengths"], strict=True)) == {
            "a": 12, "one_frame": 1, "b": 30}  # fmt: skip
        assert list(z["motion_video_ids"]) == ["a", "b"]  # one frame has no motion
        assert len(z["motion_means"]) == 2 and z["feature_mean"].shape == (6,)
        assert z["feature_std"].dtype == np.float32
        assert float(z["features_ema_alpha"]) == 0.2  # what a model's own smoothing undoes


def test_stats_without_the_features_smoothing_are_refused_in_one_line(tmp_path):
    from signpose.training import data

    old = tmp_path / "global_stats.npz"
    np.savez(old, mean=np.zeros(540, np.float32), std=np.ones(540, np.float32))
    with pytest.raises(ValueError, match=r"global_stats.npz: no features_ema_alpha .*rerun"):
        data.load_stats(old)
