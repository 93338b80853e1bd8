"""Train-only feature statistics, accumulated file by file (never one giant array).

Computed over the TRAIN split's kept instances only: statistics over every split leak the
test set into training. NaN (an undetected part) is skipped per column.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from signpose.files import atomic_path


class RunningStats:
    """Per-column count, mean and M2 (Chan et al.'s parallel update), in float64."""

    def __init__(self, n_features: int) -> None:
        self.count = np.zeros(n_features)
        self.mean = np.zeros(n_features)
        self.m2 = np.zeros(n_features)

    def update(self, x: np.ndarray) -> None:
        seen = ~np.isnan(x)
        n = seen.sum(axis=0)
        if not n.any():
            return
        with np.errstate(invalid="ignore", divide="ignore"):
            batch_mean = np.where(n > 0, np.where(seen, x, 0).sum(axis=0) / n, 0)
            batch_m2 = np.where(seen, (x - batch_mean) ** 2, 0).sum(axis=0)
        total = self.count + n
        delta = batch_mean - self.mean
        safe = np.maximum(total, 1)
        self.mean = self.mean + delta * n / safe
        self.m2 = self.m2 + batch_m2 + delta**2 * self.count * n / safe
        self.count = total

    @property
    def std(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 1, np.sqrt(self.m2 / np.maximum(self.count - 1, 1)), 0)


# Code written for the notebook reads these names; they are the same arrays, written twice.
NOTEBOOK_NAMES = {"feature_mean": "mean", "feature_std": "std", "seq_lengths": "lengths",
                  "motion_means": "motion"}  # fmt: skip


def global_stats(
    clips: Mapping[str, str | os.PathLike], n_features: int, features_ema_alpha: float
) -> dict[str, np.ndarray]:
    """mean/std/count per column plus sequence-length and motion distributions of `clips`
    (video id -> features file), with the ids each distribution's entries belong to:
    `video_ids` for `lengths`, `motion_video_ids` for `motion` (a one-frame clip has no motion).
    The notebook's names (NOTEBOOK_NAMES) are written beside ours. `features_ema_alpha`, the
    smoothing the features were written with (features.ema_alpha), is kept with them: a model
    that reads its own smoothing (train.input.ema_alpha) undoes it (training.data.resmooth)."""
    acc = RunningStats(n_features)
    lengths, motion, motion_ids = [], [], []
    for video_id, path in clips.items():
        x = np.load(path).astype(np.float64)
        acc.update(x)
        lengths.append(len(x))
        if len(x) > 1:
            step = np.abs(np.diff(x, axis=0))
            motion.append(float(np.nanmean(step)) if np.isfinite(step).any() else 0.0)
            motion_ids.append(video_id)
    out = {
        "mean": acc.mean.astype(np.float32),
        "std": acc.std.astype(np.float32),
        "count": acc.count.astype(np.int64),
        "lengths": np.asarray(lengths, dtype=np.int64),
        "motion": np.asarray(motion, dtype=np.float32),
        "video_ids": np.asarray(list(clips), dtype=str),
        "motion_video_ids": np.asarray(motion_ids, dtype=str),
        "features_ema_alpha": np.float64(features_ema_alpha),
    }
    return out | {name: out[ours] for name, ours in NOTEBOOK_NAMES.items()}


def write_stats(stats: dict[str, np.ndarray], target: str | os.PathLike) -> None:
    with atomic_path(target) as tmp, open(tmp, "wb") as f:
        np.savez(f, **stats)
