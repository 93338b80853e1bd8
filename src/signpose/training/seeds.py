"""One model trained once per seed (`train.seeds`): which run to keep, and how far test top-1
moves between seeds and between test sets.

Pure NumPy over the files each run's evaluation wrote (metrics.json, predictions.csv), so the
job that summarises the seeds needs no TensorFlow.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

# Resamples of the bootstrap interval and its seed: fixed, so a rerun reports the same interval.
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
LEVEL = 0.95
# Resamples drawn at once: WLASL2000's test split (2,878 instances) stays a few MB a chunk.
_CHUNK = 200


def bootstrap_interval(
    hits: np.ndarray,
    level: float = LEVEL,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float] | None:
    """Percentile interval of top-1 averaged over seeds, resampling the test instances.

    `hits` is (seeds, instances), 1 where a seed's model got an instance right. Each resample
    draws instances with replacement, the same draw for every seed (the runs are paired: they
    saw the same test set), so the interval says how much the seed-averaged top-1 would move
    on another test set of the same size. None without instances.
    """
    hits = np.atleast_2d(np.asarray(hits, dtype=np.float64))
    n = hits.shape[1]
    if n == 0 or hits.shape[0] == 0:
        return None
    # The mean over seeds of each resample's top-1 is the resample's mean of these.
    per_instance = hits.mean(axis=0)
    rng = np.random.default_rng(seed)
    means = np.concatenate([
        per_instance[rng.integers(0, n, size=(min(_CHUNK, resamples - start), n))].mean(axis=1)
        for start in range(0, resamples, _CHUNK)
    ])  # fmt: skip
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def mean_sd(values: Sequence[float]) -> dict[str, float | None]:
    """Mean and sample standard deviation (None with fewer than two values)."""
    if not values:
        return {"mean": None, "sd": None}
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return {"mean": float(np.mean(values)), "sd": sd}


def top1_hits(rows: Iterable[Mapping[str, str]], split: str) -> dict[str, bool]:
    """video id -> whether its first-ranked prediction is its gloss, from predictions.csv rows."""
    return {
        r["video_id"]: r["prediction"] == r["gloss"]
        for r in rows
        if r["split"] == split and r["rank"] == "1"
    }


def read_predictions(path: str) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def hits_matrix(hits: Sequence[Mapping[str, bool]], where: Sequence[str]) -> np.ndarray:
    """(seeds, instances) of each run's hits, the instances in one order. Every run scored the
    same instances (same split, same features); `where` names each run for the error."""
    ids = sorted(hits[0]) if hits else []
    for run, name in zip(hits, where, strict=True):
        if sorted(run) != ids:
            raise ValueError(f"{name}: scored other instances than {where[0]}")
    return np.array([[run[i] for i in ids] for run in hits], dtype=bool).reshape(len(hits), -1)


def best_seed(val: Mapping[int, Mapping[str, Any]]) -> int:
    """The seed whose run did best on val (the selection split): the highest top-1, then the
    lowest loss, then the first seed listed. With val unscored everywhere, the first seed."""

    def key(seed: int) -> tuple[float, float]:
        top1, loss = val[seed].get("top1"), val[seed].get("loss")
        return (-math.inf if top1 is None else top1, -math.inf if loss is None else -loss)

    seeds = list(val)
    return max(seeds, key=lambda s: (key(s), -seeds.index(s)))


def summarise(
    seeds: Sequence[int],
    metrics: Sequence[Mapping[str, Any]],
    test_hits: np.ndarray,
    split: str = "test",
) -> dict[str, Any]:
    """seeds.json: each seed's figures, the one kept (best on val), and over the seeds the
    `split`'s top-1 and top-1 over every listed instance as mean ± sd with a bootstrap interval.

    `test_hits` is `hits_matrix` over the scored `split` instances; for top1_all, the listed
    instances no run could score join as misses.
    """
    per_seed = {}
    for seed, m in zip(seeds, metrics, strict=True):
        splits = m["splits"]
        per_seed[str(seed)] = {
            f"{name}_{key}": splits.get(name, {}).get(key)
            for name in ("val", split)
            for key in ("top1", "top1_all", "loss")
        }
    kept = best_seed({s: m["splits"].get("val", {}) for s, m in zip(seeds, metrics, strict=True)})
    listed = metrics[0]["splits"].get(split, {}).get("n_listed", test_hits.shape[1])
    unscored = np.zeros((len(seeds), max(0, listed - test_hits.shape[1])), dtype=bool)
    figures = {}
    for key, hits in (("top1", test_hits), ("top1_all", np.hstack([test_hits, unscored]))):
        values = [per_seed[str(s)][f"{split}_{key}"] for s in seeds]
        values = [v for v in values if v is not None]
        interval = bootstrap_interval(hits)
        figures[key] = mean_sd(values) | {"ci95": None if interval is None else list(interval)}
    return {
        "seeds": list(seeds),
        "kept_seed": kept,
        "kept_by": "top-1 on val, the selection split (then the lower val loss)",
        "split": split,
        split: figures,
        "bootstrap": {
            "resamples": BOOTSTRAP_RESAMPLES,
            "seed": BOOTSTRAP_SEED,
            "level": LEVEL,
            "over": f"{split} instances, the same draw for every seed (paired); the interval "
            "is of top-1 averaged over the seeds",
        },
        "per_seed": per_seed,
    }
