"""Pure-NumPy data side of training: labels, stats, loading, fixed length, batches.

Nothing here imports TensorFlow, so the workflow can use it (and tests can check it) cheaply.
A split is held in memory as one contiguous float32 "bank" of raw frames plus per-instance
offsets and lengths; a batch is built by computing fractional sample positions per instance
and gathering/interpolating frames from the bank in a few vectorised operations.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from signpose import layout, tombstone
from signpose.files import write_text_atomic
from signpose.training import augment
from signpose.training.config import TrainConfig

Item = tuple[str, str]  # (npy_path, gloss)

_MIN_STD = 1e-6
HAND_SHAPE_WIDTH = 2 * layout.HAND_POINTS * 3
# Middle-finger MCP: wrist to it is the hand's size, stable whatever the fingers do.
_MIDDLE_MCP = 9


# --- labels ------------------------------------------------------------------------------


def build_label_map(train_items: Iterable[Item]) -> list[str]:
    """Class names from the train split, sorted so that class ids do not depend on item order."""
    return sorted({gloss for _, gloss in train_items})


def drop_unseen_classes(split: Split, labels: Sequence[str]) -> list[str]:
    """Labels that kept at least one usable instance in `split`; its class ids are remapped.

    A gloss whose train instances are all tombstones would otherwise be a class the model can
    never learn; its val/test items then count as unknown glosses instead.
    """
    present = np.unique(split.labels)
    remap = np.full(len(labels), -1, dtype=np.int32)
    remap[present] = np.arange(len(present), dtype=np.int32)
    split.labels = remap[split.labels]
    split.n_classes = len(present)
    return [labels[i] for i in present]


def write_labels(path: str | os.PathLike, labels: Sequence[str]) -> None:
    """labels.json: a JSON list; a gloss's position is its class id (the model's output index)."""
    write_text_atomic(path, json.dumps(list(labels), ensure_ascii=False, indent=1) + "\n")


def read_labels(path: str | os.PathLike) -> list[str]:
    labels = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(labels, list) or not all(isinstance(g, str) for g in labels):
        raise ValueError(f"{path}: expected a JSON list of glosses")
    return labels


# --- normalisation -----------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    mean: np.ndarray  # (features,) float32, 0 where the train split never saw the column
    inv_std: np.ndarray  # (features,) float32, 1 where std is 0, tiny or NaN


def load_stats(
    path: str | os.PathLike, std_floor: float = 0.0, n_features: int = layout.N_FEATURES
) -> Stats:
    """Read global_stats.npz (`mean`, `std`), guarding columns the train split never saw.

    std below `std_floor` is raised to it (see `TrainConfig.std_floor`).
    """
    with np.load(path) as npz:
        mean = np.asarray(npz["mean"], dtype=np.float64)
        std = np.asarray(npz["std"], dtype=np.float64)
    if mean.shape != (n_features,) or std.shape != (n_features,):
        raise ValueError(
            f"{path}: mean/std must have shape ({n_features},), got {mean.shape}/{std.shape}"
        )
    mean = np.where(np.isfinite(mean), mean, 0.0)
    # A constant or never-seen column would divide by ~0 and blow up to inf: just centre it.
    std = np.where(np.isfinite(std) & (std > _MIN_STD), std, 1.0)
    std = np.maximum(std, std_floor)
    return Stats(mean.astype(np.float32), (1.0 / std).astype(np.float32))


# --- loading -----------------------------------------------------------------------------


@dataclass
class Split:
    """One split in memory. `counts` says how many items were given and why some were left out."""

    bank: np.ndarray  # (total_frames, features) float32, raw features with NaN
    offsets: np.ndarray  # (n,) int64 first row of each instance in bank
    lengths: np.ndarray  # (n,) int64 frames per instance (>= 1)
    labels: np.ndarray  # (n,) int32 class ids
    paths: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    n_classes: int = 1  # size of the label space the ids index (for one-hot labels)

    def __len__(self) -> int:
        return len(self.labels)


def load_split(items: Iterable[Item], label_index: Mapping[str, int]) -> Split:
    """Load every usable item of a split into one bank.

    Left out, and counted rather than fatal: glosses absent from the train label map
    (`n_excluded_unknown_gloss`), tombstones written at the .npy path by the features stage
    (`n_skipped_tombstone`) and arrays with no frames (`n_skipped_empty`). An array with the
    wrong number of columns is a real bug upstream and raises.
    """
    items = list(items)
    counts = {"n_items": len(items), "n_excluded_unknown_gloss": 0}
    counts |= {"n_skipped_tombstone": 0, "n_skipped_empty": 0}
    keep: list[tuple[str, int, int]] = []
    for path, gloss in items:
        if gloss not in label_index:
            counts["n_excluded_unknown_gloss"] += 1
        elif tombstone.read(path) is not None:
            counts["n_skipped_tombstone"] += 1
        else:
            # mmap reads only the header: sizes first, so the bank is allocated once.
            frames = _check_shape(path, np.load(path, mmap_mode="r").shape)
            if frames == 0:
                counts["n_skipped_empty"] += 1
            else:
                keep.append((str(path), label_index[gloss], frames))
    lengths = np.array([n for _, _, n in keep], dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    bank = np.empty((int(lengths.sum()), layout.N_FEATURES), dtype=np.float32)
    for (path, _, n), start in zip(keep, offsets, strict=True):
        bank[start : start + n] = np.load(path)
    labels = np.array([label for _, label, _ in keep], dtype=np.int32)
    counts["n_used"] = len(keep)
    n_classes = len(set(label_index.values()))
    return Split(bank, offsets, lengths, labels, [p for p, _, _ in keep], counts, n_classes)


def smooth(split: Split, alpha: float) -> None:
    """In place: the exponential moving average of `features.ema` over each instance's frames
    (train.input.ema_alpha, on top of the features' own smoothing); 1.0 leaves them as they are.

    Vectorised over instances: one step per frame position, up to the longest instance.
    """
    if alpha >= 1.0 or len(split) == 0:
        return
    for t in range(1, int(split.lengths.max())):
        rows = split.offsets[split.lengths > t] + t
        prev = split.bank[rows - 1]
        blend = alpha * split.bank[rows] + (1 - alpha) * prev
        split.bank[rows] = np.where(np.isnan(prev), split.bank[rows], blend)


def _check_shape(path: str, shape: tuple[int, ...]) -> int:
    if len(shape) != 2 or shape[1] != layout.N_FEATURES:
        raise ValueError(f"{path}: expected shape (frames, {layout.N_FEATURES}), got {shape}")
    return shape[0]


# --- fixed length ------------------------------------------------------------------------


def sample_positions(
    lengths: np.ndarray,
    seq_len: int,
    mode: str,
    rng: np.random.Generator | None = None,
    time_stretch: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Fractional source-frame positions (n, seq_len) and which of them are real (not padding).

    "resample" spreads seq_len samples evenly over each clip (linear interpolation over time);
    "crop_pad" takes seq_len frames at the clip's own speed, centred, and pads short clips at
    the end (right padding is what cuDNN's masked LSTM accepts). With `rng`, `time_stretch`
    changes the speed (crop_pad) and warps time within the clip (both modes).
    """
    n = len(lengths)
    last = (lengths - 1).astype(np.float64)[:, None]
    u = np.broadcast_to(np.linspace(0.0, 1.0, seq_len), (n, seq_len))
    if rng is not None and time_stretch > 0:
        u = augment.random_time_warp(u, rng, time_stretch)
    if mode == "resample":
        return u * last, np.ones((n, seq_len), dtype=bool)
    if mode != "crop_pad":
        raise ValueError(f"unknown length mode {mode!r}")
    speed = np.ones(n)
    if rng is not None and time_stretch > 0:
        speed = augment.random_speed(rng, n, time_stretch)
    span = ((seq_len - 1) * speed)[:, None]
    start = np.maximum(0.0, (last - span) / 2)
    pos = start + u * span
    return pos, pos <= last + 1e-6


def gather_frames(split: Split, idx: np.ndarray, pos: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Raw frames at fractional positions, linearly interpolated; padding rows are NaN.

    Where one neighbour is NaN (a hand lost in one frame) the nearer frame is taken instead of
    letting the NaN spread over both interpolated samples.
    """
    last = (split.lengths[idx] - 1)[:, None]
    p = np.clip(pos, 0.0, last)
    i0 = np.floor(p).astype(np.int64)
    i1 = np.minimum(i0 + 1, last)
    w = (p - i0).astype(np.float32)[..., None]
    base = split.offsets[idx][:, None]
    a, b = np.take(split.bank, base + i0, axis=0), np.take(split.bank, base + i1, axis=0)
    nearest = np.where(w < 0.5, a, b)
    out = b - a
    out *= w
    out += a
    np.copyto(out, nearest, where=np.isnan(out))
    out[~valid] = np.nan
    return out


def hand_shapes(x: np.ndarray) -> np.ndarray:
    """Hand shape, wherever the hand is and whichever hand signs: (..., frames, 126).

    Each hand's landmarks relative to its wrist, in units of its size, the left hand mirrored
    so that one shape reads the same on either hand; the hand seen in more frames of the
    sequence first (ties: the right). In the torso-centred features a hand shape is a few
    hundredths of a torso, buried under where the hand is and which hand signs: a small model
    on a small dataset learns those instead. NaN where the hand is not seen.
    """
    lead = x.shape[:-1]
    shapes = []
    for part, sign in ((layout.LEFT_HAND, -1.0), (layout.RIGHT_HAND, 1.0)):
        hand = x[..., part].reshape(*lead, layout.HAND_POINTS, 3) * np.float32([sign, 1, 1])
        hand -= hand[..., :1, :]
        size = np.linalg.norm(hand[..., _MIDDLE_MCP, :2], axis=-1)[..., None, None]
        # A collapsed hand (size ~0) is a tracking failure, not a shape.
        hand /= np.where(size > 1e-6, size, np.nan)
        shapes.append(hand.reshape(*lead, HAND_SHAPE_WIDTH // 2))
    left, right = shapes
    seen = [np.sum(~np.isnan(s[..., 0]), axis=-1) for s in shapes]  # frames with a shape
    left_first = (seen[0] > seen[1])[..., None, None]
    first, second = np.where(left_first, left, right), np.where(left_first, right, left)
    return np.concatenate([first, second], axis=-1)


@cache
def _selected_columns(face: str, use_z: bool) -> np.ndarray:
    """Columns of the features the model reads (train.input.face, train.input.use_z)."""
    points = layout.FACE_PARTS if face == "mirrorable" else layout.FACE_INDICES
    columns = [*range(layout.FACE.start), *layout.face_columns(points)]
    names = layout.column_names()
    return np.asarray([c for c in columns if use_z or not names[c].endswith("_z")])


def input_columns(cfg: TrainConfig) -> np.ndarray:
    """Indices of the feature columns in the model input, in the order they appear there."""
    return _selected_columns(cfg.input["face"], cfg.input["use_z"])


def _hand_shape_width(cfg: TrainConfig) -> int:
    if not cfg.hand_shape:
        return 0
    return HAND_SHAPE_WIDTH if cfg.input["use_z"] else HAND_SHAPE_WIDTH * 2 // 3


def input_width(cfg: TrainConfig) -> int:
    """Columns of the model input: the selected features, their velocity and acceleration when
    enabled, then the hand shapes when enabled."""
    knobs = cfg.input
    copies = 1 + int(knobs["velocity"]) + int(knobs["acceleration"])
    return len(input_columns(cfg)) * copies + _hand_shape_width(cfg)


def left_dominant(x: np.ndarray) -> np.ndarray:
    """(batch,) bool: the left hand is seen in more frames than the right (ties: the right)."""
    seen = [np.sum(~np.isnan(x[..., part.start]), axis=-1)
            for part in (layout.LEFT_HAND, layout.RIGHT_HAND)]  # fmt: skip
    return seen[0] > seen[1]


def canonical_hand(x: np.ndarray) -> None:
    """In place: mirror each sequence whose dominant hand is the left (the canonical hand)."""
    left = left_dominant(x)
    if left.any():
        x[left] = augment.mirror(x[left])


def _differences(x: np.ndarray) -> np.ndarray:
    """Frame-to-frame differences along time, 0 at the first frame (NaN where a side is NaN)."""
    out = np.zeros_like(x)
    np.subtract(x[:, 1:], x[:, :-1], out=out[:, 1:])
    return out


def model_features(x: np.ndarray, stats: Stats, cfg: TrainConfig) -> np.ndarray:
    """From raw (batch, frames, 540) frames (NaN where not seen) to the model input.

    The selected columns standardised, then their velocity and acceleration, then the hand
    shapes (already in hand-size units); NaN becomes 0 and everything is clipped to
    [-clip, clip], so one edge-on hand or a tracking glitch cannot dominate a batch.
    """
    knobs = cfg.input
    parts = []
    shapes = hand_shapes(x) if cfg.hand_shape else None
    columns = input_columns(cfg)
    z = (x[..., columns] - stats.mean[columns]) * stats.inv_std[columns]
    parts.append(z)
    if knobs["velocity"] or knobs["acceleration"]:
        velocity = _differences(z)
        if knobs["velocity"]:
            parts.append(velocity)
        if knobs["acceleration"]:
            parts.append(_differences(velocity))
    if shapes is not None:
        if not knobs["use_z"]:
            shapes = shapes.reshape(*shapes.shape[:-1], -1, 3)[..., :2]
            shapes = shapes.reshape(*shapes.shape[:-2], -1)
        parts.append(shapes)
    out = np.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
    np.copyto(out, 0.0, where=np.isnan(out))
    np.clip(out, -knobs["clip"], knobs["clip"], out=out)
    return out


def make_batch(
    split: Split,
    idx: np.ndarray,
    stats: Stats,
    cfg: TrainConfig,
    rng: np.random.Generator | None = None,
    flip: bool = False,
) -> np.ndarray:
    """Model input (len(idx), seq_len, input_width) float32; augmented when `rng` is given.

    The frames at fixed length, the dominant hand made the right one (cfg.input), augmented or
    (`flip`, test-time augmentation) mirrored, then `model_features`.
    """
    knobs = cfg.augment
    stretch = knobs["time_stretch"] if rng is not None else 0.0
    pos, valid = sample_positions(split.lengths[idx], cfg.seq_len, cfg.length_mode, rng, stretch)
    x = gather_frames(split, idx, pos, valid)
    if cfg.input["canonical_hand"]:
        canonical_hand(x)
    if rng is not None:
        augment.augment_frames(x, rng, knobs, valid)
    if flip:
        x = augment.mirror(x)
    return model_features(x, stats, cfg)


def make_inputs(
    split: Split, stats: Stats, cfg: TrainConfig, chunk: int = 256, flip: bool = False
) -> np.ndarray:
    """Every instance of a split as un-augmented model input, in split order (`flip`: mirrored)."""
    out = np.empty((len(split), cfg.seq_len, input_width(cfg)), dtype=np.float32)
    for start in range(0, len(split), chunk):
        idx = np.arange(start, min(start + chunk, len(split)))
        out[idx] = make_batch(split, idx, stats, cfg, flip=flip)
    return out


def predict_split(
    predict: Callable[[np.ndarray], np.ndarray], split: Split, stats: Stats, cfg: TrainConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(un-flipped inputs, class probabilities) of every instance of a split.

    With cfg.tta_flip the probabilities are the mean of those of each clip and of its mirror
    image (flip test-time augmentation); `predict` maps a batch of inputs to probabilities.
    """
    inputs = make_inputs(split, stats, cfg)
    probs = np.asarray(predict(inputs))
    if cfg.tta_flip:
        probs = (probs + np.asarray(predict(make_inputs(split, stats, cfg, flip=True)))) / 2
    return inputs, probs


def resample(seq: np.ndarray, seq_len: int) -> np.ndarray:
    """One (frames, features) sequence linearly resampled to seq_len frames."""
    return _one(seq, seq_len, "resample")


def crop_pad(seq: np.ndarray, seq_len: int) -> np.ndarray:
    """One sequence centre-cropped or end-padded (with NaN) to seq_len frames."""
    return _one(seq, seq_len, "crop_pad")


def _one(seq: np.ndarray, seq_len: int, mode: str) -> np.ndarray:
    split = split_of([seq])
    pos, valid = sample_positions(split.lengths, seq_len, mode)
    return gather_frames(split, np.zeros(1, dtype=np.int64), pos, valid)[0]


def split_of(seqs: Sequence[np.ndarray]) -> Split:
    """Sequences already in memory (e.g. the features of new videos) as an unlabelled split."""
    seqs = [np.asarray(seq, dtype=np.float32) for seq in seqs]
    for seq in seqs:
        if seq.ndim != 2 or len(seq) == 0:
            raise ValueError(f"expected a (frames >= 1, features) array, got shape {seq.shape}")
    lengths = np.array([len(seq) for seq in seqs], dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    n = len(seqs)
    return Split(np.concatenate(seqs), offsets, lengths, np.zeros(n, np.int32), [""] * n)


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    return np.eye(n_classes, dtype=np.float32)[labels]


def top_k(probs: np.ndarray, k: int = 5) -> np.ndarray:
    """Class ids of the k most probable classes of each row, most probable first.

    A stable sort on -p: equal probabilities keep class-id order, so every caller (evaluate,
    `signpose recognise`) ranks ties the same way.
    """
    return np.argsort(-probs, axis=-1, kind="stable")[..., : min(k, probs.shape[-1])]


def class_counts(split: Split, n_classes: int) -> np.ndarray:
    return np.bincount(split.labels, minlength=n_classes)


def describe(split: Split) -> dict[str, Any]:
    """Counts plus frame-length figures, for summaries."""
    out: dict[str, Any] = dict(split.counts)
    if len(split):
        out["frames_median"] = float(np.median(split.lengths))
        out["frames_min"], out["frames_max"] = int(split.lengths.min()), int(split.lengths.max())
    return out
