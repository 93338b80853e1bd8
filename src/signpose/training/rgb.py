"""The RGB side of `cnn_lstm_rgb`: frames sampled from the clips, decoded in the input pipeline.

Frames are decoded from the workflow's clips (`clips/<video_id>.mp4`) by tf.data's parallel
workers while the model steps, rather than stored as a per-instance frames target: that would
add a job per instance to a 20,000-instance DAG and, at 30 frames of 224x224, 4.5 MB per clip
(benchmarks/README.md has the measured figures). Frames are sampled evenly over the clip,
resized to a square, and kept as uint8 until the model's own rescaling layer.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from signpose import video
from signpose.training import data
from signpose.training.epochs import EpochPlan

Item = tuple[str, str]  # (clip path, gloss)

# Keras' own MobileNetV2 weight files (keras/src/applications/mobilenet_v2.py).
IMAGENET_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
IMAGENET_SIZES = (96, 128, 160, 192, 224)
_DOWNLOAD_TIMEOUT_S = 30


RGB_MODEL_TYPE = "cnn_lstm_rgb"


def is_rgb(cfg) -> bool:
    """Whether the model reads frames of the clips (cnn_lstm_rgb) instead of landmark features."""
    return cfg.model_type == RGB_MODEL_TYPE


def sample_indices(count: int, n: int) -> np.ndarray:
    """n frame indices spread evenly over `count` frames, first and last included."""
    return np.rint(np.linspace(0, max(count - 1, 0), n)).astype(np.int64)


def sample_frames(path: str | os.PathLike, n: int, size: int) -> np.ndarray:
    """(n, size, size, 3) uint8: n frames sampled evenly over the clip, resized to a square.

    Frames are decoded once, in order, and only the sampled ones are kept (after resizing), so
    memory stays at n small frames. A clip that cannot be decoded, or has no frame, is black.
    """
    out = np.zeros((n, size, size, 3), dtype=np.uint8)
    try:
        count = video.probe(path, count_frames=False).frames
    except video.UnreadableVideo:
        return out
    # Container frame counts can be off by a few; frames past the real end repeat the last one.
    wanted = sample_indices(count, n)
    last = None
    for i, frame in enumerate(video.rgb_frames(path)):
        if i > wanted[-1]:
            break
        hits = wanted == i
        if hits.any():
            last = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
            out[hits] = last
    if last is not None:
        out[wanted > i] = last
    return out


@dataclass
class ClipSplit:
    """One split of clips: paths and class ids; frames are decoded when a batch asks."""

    paths: list[str]
    labels: np.ndarray  # (n,) int32
    counts: dict[str, int]

    def __len__(self) -> int:
        return len(self.paths)


def load_clip_split(items: Sequence[Item], label_index: dict[str, int]) -> ClipSplit:
    """The usable items (`data.usable_items`): glosses in the label map, clips that are not
    tombstones."""
    usable, counts = data.usable_items(items, label_index)
    counts["n_used"] = len(usable)
    labels = np.asarray([label for _, label in usable], dtype=np.int32)
    return ClipSplit([path for path, _ in usable], labels, counts)


def clip_items(feature_items: Sequence[tuple[str, str]], clips_dir: str) -> list[Item]:
    """The clips of (features/<video_id>.npy, gloss) items: the same instances, same split."""
    return [(f"{clips_dir}/{Path(npy).stem}.mp4", gloss) for npy, gloss in feature_items]


def imagenet_file(alpha: float, size: int) -> str:
    """Keras' file name of the MobileNetV2 ImageNet weights without the top (224's for sizes
    Keras has no weights of)."""
    rows = size if size in IMAGENET_SIZES else 224
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}_no_top.h5"


class BackboneWeightsError(RuntimeError):
    """The backbone's weights cannot be had; the message is one line saying what to do."""


def backbone_weights(weights: str, alpha: float, size: int) -> str | None:
    """What `keras.applications.MobileNetV2(weights=...)` gets: "imagenet", a path or None.

    Checked at the start of the train job, before any data is read: "imagenet" is fetched
    into Keras' cache now (or found there), so an offline machine fails at once with a line
    that says how to provide the file, not after an epoch of data loading.
    """
    if weights == "none":
        return None
    if weights != "imagenet":
        if not Path(weights).is_file():
            raise BackboneWeightsError(
                f"train.model.cnn_lstm_rgb.weights: {weights}: no such file (give a MobileNetV2 "
                "weights file without the top, 'imagenet' or 'none')"
            )
        return weights
    import keras

    name = imagenet_file(alpha, size)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(_DOWNLOAD_TIMEOUT_S)
    try:
        keras.utils.get_file(name, IMAGENET_URL + name, cache_subdir="models")
    except Exception as e:  # noqa: BLE001 - any failure to fetch means the same to the user
        raise BackboneWeightsError(
            f"train.model.cnn_lstm_rgb.weights: imagenet: cannot download {IMAGENET_URL + name}"
            f" ({type(e).__name__}); download it where there is internet and set weights to its"
            " path, or copy it into Keras' cache (~/.keras/models/, or $KERAS_HOME/models/)"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)
    return "imagenet"


def clip_dataset(
    split: ClipSplit, frames: int, size: int, batch_size: int, seed: int | None,
    threads: int = 0, first_epoch: int = 0,
):  # fmt: skip
    """Batches of (frames uint8 (b, frames, size, size, 3), labels), decoded in parallel.

    With `seed`, the order is shuffled afresh (and repeatably) every epoch, epoch k's order a
    function of the seed and k (a resumed training starts at `first_epoch`); without, it is
    the split's order.
    """
    import tensorflow as tf

    def load(i: np.ndarray) -> np.ndarray:
        return sample_frames(split.paths[int(i)], frames, size)

    ds = tf.data.Dataset.range(len(split))
    if seed is not None:
        plan = EpochPlan(
            len(split), max(len(split), 1), seed, shuffle=True, first_epoch=first_epoch
        )
        ds = tf.data.Dataset.from_generator(
            plan.examples, output_signature=tf.TensorSpec([], tf.int64)
        )

    def decode(i):
        x = tf.numpy_function(load, [i], tf.uint8)
        x.set_shape([frames, size, size, 3])
        return x, tf.gather(split.labels, i)

    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size).apply(
        tf.data.experimental.assert_cardinality(math.ceil(len(split) / batch_size))
    )
    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)
