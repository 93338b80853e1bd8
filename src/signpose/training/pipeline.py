"""tf.data pipelines over in-memory splits, and a throughput probe for the input side.

Training batches are built by NumPy (`data.make_batch`) inside `tf.numpy_function`, mapped in
parallel and prefetched, so the next batches are prepared while the model steps. Each batch gets
its own seed from a per-epoch plan, which keeps runs repeatable regardless of worker timing.
Evaluation batches are deterministic, so they are computed once and cached.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from signpose.training import augment, data, rgb
from signpose.training.config import TrainConfig
from signpose.training.data import Split, Stats, input_width, make_batch
from signpose.training.epochs import EpochPlan


def _options(cfg: TrainConfig) -> tf.data.Options:
    options = tf.data.Options()
    # tf.data has its own pool, sized by the machine's cores unless told (see cfg.threads).
    options.threading.private_threadpool_size = cfg.threads
    return options


def _with_shapes(cfg: TrainConfig, n_classes: int):
    def set_shapes(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x.set_shape([None, cfg.seq_len, input_width(cfg)])
        y.set_shape([None, n_classes])
        return x, y

    return set_shapes


def train_dataset(
    split: Split,
    stats: Stats,
    cfg: TrainConfig,
    overlap: bool = True,
    batch_fn: Callable[[np.ndarray, np.random.Generator | None], np.ndarray] | None = None,
    first_epoch: int = 0,
) -> tf.data.Dataset:
    """Shuffled, (when enabled) freshly augmented batches every epoch, from `first_epoch` on;
    one-hot labels, mixed with the inputs when cfg.augment.mixup_alpha > 0.

    `overlap` False builds batches one at a time, only when the model asks for them (no
    parallel map, no prefetch); `batch_fn(idx, rng)` replaces the batch maker. Both exist for
    benchmarks/training_input.py, which measures what overlapping and the in-memory bank buy.
    """
    augmenting = bool(cfg.augment["enabled"])
    if batch_fn is None:

        def batch_fn(idx: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
            return make_batch(split, idx, stats, cfg, rng)

    alpha = cfg.augment["mixup_alpha"] if augmenting else 0.0

    def build(idx: np.ndarray, seed: np.int64) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(int(seed)) if augmenting else None
        x, y = batch_fn(idx, rng), data.one_hot(split.labels[idx], split.n_classes)
        if rng is not None and alpha > 0:
            x, y = augment.mixup(x, y, rng, alpha)
        return x, y

    def batch(idx: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.numpy_function(build, [idx, seed], (tf.float32, tf.float32))

    plan = EpochPlan(len(split), cfg.batch_size, cfg.seed, shuffle=True, first_epoch=first_epoch)
    signature = (tf.TensorSpec([None], tf.int64), tf.TensorSpec([], tf.int64))
    ds = tf.data.Dataset.from_generator(plan, output_signature=signature)
    if overlap:
        ds = ds.map(batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        ds = ds.map(batch)
    ds = ds.map(_with_shapes(cfg, split.n_classes)).apply(
        tf.data.experimental.assert_cardinality(math.ceil(len(split) / cfg.batch_size))
    )
    if overlap:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds.with_options(_options(cfg))


def eval_dataset(split: Split, stats: Stats, cfg: TrainConfig) -> tf.data.Dataset:
    """Un-augmented batches in split order (one-hot labels), computed on first use and then
    cached."""

    def build(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return make_batch(split, idx, stats, cfg), data.one_hot(split.labels[idx], split.n_classes)

    ds = tf.data.Dataset.range(len(split)).batch(cfg.batch_size)
    ds = ds.map(
        lambda idx: tf.numpy_function(build, [idx], (tf.float32, tf.float32)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return (
        ds.map(_with_shapes(cfg, split.n_classes))
        .cache()
        .prefetch(tf.data.AUTOTUNE)
        .with_options(_options(cfg))
    )


# --- one interface over both kinds of input: landmark features and RGB frames ------------------


is_rgb = rgb.is_rgb


def load_split(items, label_index, cfg: TrainConfig, stats: Stats) -> Split | rgb.ClipSplit:
    """Items are (npy, gloss) for landmark models and (clip, gloss) for cnn_lstm_rgb; landmark
    frames get the model's own smoothing (train.input.ema_alpha) instead of the features'."""
    if is_rgb(cfg):
        return rgb.load_clip_split(items, label_index)
    split = data.load_split(items, label_index)
    data.resmooth(split, stats.features_ema_alpha, cfg.input["ema_alpha"])
    return split


def training_data(split, stats: Stats, cfg: TrainConfig, first_epoch: int = 0) -> tf.data.Dataset:
    """The training batches, epoch after epoch from `first_epoch` (a resumed training's)."""
    if is_rgb(cfg):
        k = cfg.knobs
        return rgb.clip_dataset(split, k["frames"], k["image_size"], cfg.batch_size, cfg.seed,
                                cfg.threads, first_epoch)  # fmt: skip
    return train_dataset(split, stats, cfg, first_epoch=first_epoch)


def evaluation_data(split, stats: Stats, cfg: TrainConfig) -> tf.data.Dataset:
    """Un-augmented batches in split order (RGB frames are decoded again on every pass: a
    split's frames do not fit in memory at WLASL size)."""
    if is_rgb(cfg):
        k = cfg.knobs
        return rgb.clip_dataset(split, k["frames"], k["image_size"], cfg.batch_size, None,
                                cfg.threads)  # fmt: skip
    return eval_dataset(split, stats, cfg)


def describe(split) -> dict:
    return dict(split.counts) if isinstance(split, rgb.ClipSplit) else data.describe(split)
