"""The per-epoch order of training examples that makes a resumed training exact."""

from __future__ import annotations

import numpy as np

from signpose.training.epochs import EpochPlan


def epochs(plan: EpochPlan, n: int) -> list[list[tuple[list[int], int]]]:
    return [[(batch.tolist(), int(seed)) for batch, seed in plan()] for _ in range(n)]


def test_a_plan_started_at_epoch_k_gives_the_batches_of_an_uninterrupted_one():
    whole = epochs(EpochPlan(10, 4, seed=3, shuffle=True), 5)
    assert epochs(EpochPlan(10, 4, seed=3, shuffle=True, first_epoch=2), 3) == whole[2:]
    for epoch in whole:
        assert sorted(i for batch, _ in epoch for i in batch) == list(range(10))
        assert [len(batch) for batch, _ in epoch] == [4, 4, 2]
    assert whole[0] != whole[1]  # shuffled afresh every epoch
    assert epochs(EpochPlan(10, 4, seed=4, shuffle=True), 1) != whole[:1]


def test_unshuffled_keeps_the_order_and_examples_flatten_the_batches():
    assert [b.tolist() for b, _ in EpochPlan(5, 2, 0, shuffle=False)()] == [[0, 1], [2, 3], [4]]
    by_batch = np.concatenate([b for b, _ in EpochPlan(7, 3, 1, shuffle=True)()])
    assert list(EpochPlan(7, 3, 1, shuffle=True).examples()) == by_batch.tolist()
    # the RGB pipeline's order (one batch of all) is the landmark models' permutation
    assert list(EpochPlan(7, 7, 1, shuffle=True).examples()) == by_batch.tolist()
