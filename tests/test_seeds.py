"""signpose.training.seeds: one model per seed, the run kept, and the spread of test top-1."""

from __future__ import annotations

import numpy as np
import pytest

from signpose.training import seeds


def test_the_bootstrap_interval_is_fixed_by_its_seed_and_holds_the_mean():
    rng = np.random.default_rng(1)
    hits = rng.random((3, 400)) < 0.6
    low, high = seeds.bootstrap_interval(hits)
    assert low < hits.mean() < high
    # one seed: a binomial proportion over 400 instances, half-width about 1.96 * sqrt(pq/n)
    one_low, one_high = seeds.bootstrap_interval(hits[0])
    p = hits[0].mean()
    assert (one_high - one_low) / 2 == pytest.approx(1.96 * np.sqrt(p * (1 - p) / 400), rel=0.1)
    assert seeds.bootstrap_interval(hits) == (low, high)  # the same draw every time
    assert seeds.bootstrap_interval(hits, seed=7) != (low, high)
    assert seeds.bootstrap_interval(np.zeros((2, 0))) is None


def test_the_bootstrap_resamples_instances_the_same_way_for_every_seed():
    # two seeds that err on complementary instances: the seed-average is 0.5 on every
    # instance, so every resample gives exactly 0.5 (unpaired draws would spread it)
    a = np.arange(200) % 2 == 0
    assert seeds.bootstrap_interval(np.stack([a, ~a])) == (0.5, 0.5)
    assert seeds.bootstrap_interval(a)[0] < 0.45  # one seed alone does spread


def test_mean_and_sample_sd():
    assert seeds.mean_sd([0.5, 0.7]) == {"mean": 0.6, "sd": pytest.approx(np.sqrt(0.02))}
    assert seeds.mean_sd([0.5]) == {"mean": 0.5, "sd": None}
    assert seeds.mean_sd([]) == {"mean": None, "sd": None}


def test_the_run_kept_is_the_best_on_val_then_the_lower_loss_then_the_first():
    val = {1: {"top1": 0.5, "loss": 1.0}, 2: {"top1": 0.7, "loss": 2.0},
           3: {"top1": 0.7, "loss": 1.5}, 4: {"top1": 0.7, "loss": 1.5}}  # fmt: skip
    assert seeds.best_seed(val) == 3
    assert seeds.best_seed({5: {"top1": None, "loss": None}, 6: {"top1": None}}) == 5


def predictions(hits: dict[str, bool]) -> list[dict[str, str]]:
    rows = []
    for vid, hit in hits.items():
        first, second = ("a", "b") if hit else ("b", "a")
        rows += [{"split": "test", "video_id": vid, "gloss": "a", "rank": "1", "prediction": first},
                 {"split": "test", "video_id": vid, "gloss": "a", "rank": "2",
                  "prediction": second}]  # fmt: skip
    rows.append({"split": "val", "video_id": "x", "gloss": "a", "rank": "1", "prediction": "a"})
    return rows


def test_hits_are_read_from_the_predictions_and_aligned_over_seeds():
    one = seeds.top1_hits(predictions({"v2": True, "v1": False}), "test")
    two = seeds.top1_hits(predictions({"v1": True, "v2": True}), "test")
    assert one == {"v1": False, "v2": True}
    np.testing.assert_array_equal(seeds.hits_matrix([one, two], ["1", "2"]),
                                  [[False, True], [True, True]])  # fmt: skip
    with pytest.raises(ValueError, match="2: scored other instances than 1"):
        seeds.hits_matrix([one, {"v1": True}], ["1", "2"])


def test_the_summary_gives_each_seed_the_kept_one_and_the_spread():
    def metrics(val_top1, test_top1, test_all):
        return {"splits": {"val": {"top1": val_top1, "loss": 1.0},
                           "test": {"top1": test_top1, "top1_all": test_all, "top5": None,
                                    "loss": 1.0, "n_listed": 5}}}  # fmt: skip

    hits = np.array([[1, 1, 0, 0], [1, 1, 1, 0]], dtype=bool)  # 4 scored of 5 listed
    out = seeds.summarise([7, 8], [metrics(0.6, 0.5, 0.4), metrics(0.5, 0.75, 0.6)], hits)
    assert out["kept_seed"] == 7  # the better val, not the better test
    assert out["per_seed"]["8"]["test_top1"] == 0.75 and out["per_seed"]["7"]["val_top1"] == 0.6
    assert out["test"]["top1"]["mean"] == 0.625
    assert out["test"]["top1"]["sd"] == pytest.approx(np.std([0.5, 0.75], ddof=1))
    assert out["test"]["top1_all"]["mean"] == pytest.approx(0.5)
    low, high = out["test"]["top1"]["ci95"]
    assert 0 <= low <= 0.625 <= high <= 1
    # the fifth, unscored instance is a miss for every seed: the interval of top1_all is lower
    assert out["test"]["top1_all"]["ci95"][1] <= high
    assert out["bootstrap"]["resamples"] == seeds.BOOTSTRAP_RESAMPLES
