"""The order of every epoch's training examples, as a function of the seed and the epoch."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np


class EpochPlan:
    """Callable generator factory: each call is one epoch of (batch indices, batch seed).

    Epoch k's order and seeds are a function of the seed and k alone, so a training resumed at
    epoch k (`first_epoch`) sees the batches an uninterrupted one would. Keras makes one pass
    over the training data per epoch.
    """

    def __init__(self, n: int, batch_size: int, seed: int, shuffle: bool,
                 first_epoch: int = 0) -> None:  # fmt: skip
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.epoch = first_epoch

    def __call__(self) -> Iterator[tuple[np.ndarray, np.int64]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        order = rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        seeds = rng.integers(0, 2**62, size=math.ceil(self.n / self.batch_size))
        for k, start in enumerate(range(0, self.n, self.batch_size)):
            yield order[start : start + self.batch_size].astype(np.int64), np.int64(seeds[k])

    def examples(self) -> Iterator[np.int64]:
        """One epoch's example indices in order, for a pipeline that batches them itself."""
        for batch, _ in self():
            yield from batch
