"""Training-time augmentation in NumPy, vectorised over a batch of (batch, frames, features).

Geometric changes act on the raw torso-centred coordinates (before normalisation), where a
rotation or a flip about the body's midline means what it says. NaN (undetected) stays NaN.
Every function takes an explicit `np.random.Generator`, so a batch is a pure function of its
seed and runs are repeatable whatever order tf.data's parallel workers finish in.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from signpose import layout


@cache
def coordinate_columns() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column indices of x, y and z of every landmark (pose visibility is left out)."""
    names = layout.column_names()
    xs = np.asarray(layout.x_columns())
    for offset, axis in ((1, "y"), (2, "z")):
        if not all(names[i + offset].endswith(f"_{axis}") for i in xs):
            raise AssertionError(f"layout: {axis} does not follow x at offset {offset}")
    return xs, xs + 1, xs + 2


def _xyz_views(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(…, points, 3) views of the pose and of the hands+face coordinates of x (no copies).

    Pose points are (x, y, z, visibility) and the rest (x, y, z), so two reshaped views cover
    every coordinate; writing through them is much faster than fancy-indexed columns.
    """
    lead = x.shape[:-1]
    pose = x[..., layout.POSE].reshape(*lead, layout.POSE_POINTS, 4)[..., :3]
    rest = x[..., layout.POSE.stop :].reshape(*lead, -1, 3)
    return pose, rest


@cache
def _mirror_permutation() -> np.ndarray:
    return np.asarray(layout.mirror_permutation())


def mirror(x: np.ndarray) -> np.ndarray:
    """Horizontal flip of (..., features): negate every x, then swap left and right parts."""
    out = x[..., _mirror_permutation()]
    out[..., coordinate_columns()[0]] *= -1.0
    return out


def random_mirror(x: np.ndarray, rng: np.random.Generator, prob: float) -> None:
    """Flip each sequence of the batch (in place) with probability `prob`."""
    chosen = rng.random(len(x)) < prob
    if chosen.any():
        x[chosen] = mirror(x[chosen])


def random_affine(
    x: np.ndarray, rng: np.random.Generator, rotate_deg: float, scale: float, shift: float,
    shear: float,
) -> None:  # fmt: skip
    """Rotate, shear, scale and shift each sequence (in place) in the x-y plane about the torso
    centre. Shear is x += kx y, y += ky x with kx, ky in [-shear, shear].

    z is scaled with x and y so that the hand's depth stays in proportion. NaN stays NaN.
    """
    n = len(x)
    theta = np.deg2rad(rng.uniform(-rotate_deg, rotate_deg, n))
    s = rng.uniform(1.0 - scale, 1.0 + scale, n)
    tx, ty = rng.uniform(-shift, shift, (2, n))
    kx, ky = rng.uniform(-shear, shear, (2, n))
    cos, sin = s * np.cos(theta), s * np.sin(theta)
    # The 2x2 matrix rotation-and-scale times shear, per sequence, broadcast over (frames, points).
    m = [[cos + (-sin) * ky, cos * kx - sin], [sin + cos * ky, sin * kx + cos]]
    (a, b), (c, d) = ((v.astype(np.float32)[:, None, None] for v in row) for row in m)
    s, tx, ty = (v.astype(np.float32)[:, None, None] for v in (s, tx, ty))
    for xyz in _xyz_views(x):
        px, py = xyz[..., 0].copy(), xyz[..., 1].copy()
        xyz[..., 0] = a * px + b * py + tx
        xyz[..., 1] = c * px + d * py + ty
        xyz[..., 2] *= s


def random_frame_dropout(x: np.ndarray, rng: np.random.Generator, prob: float) -> None:
    """Blank whole frames (in place) as if the tracker had lost the signer in them."""
    dropped = rng.random(x.shape[:2]) < prob
    x[dropped] = np.nan


def random_temporal_mask(
    x: np.ndarray, rng: np.random.Generator, prob: float, valid: np.ndarray
) -> None:
    """Blank (in place) one run of up to a quarter of the real frames of chosen sequences.

    `valid` (batch, frames) marks the real (not padding) frames; the run lies within them.
    """
    chosen = np.flatnonzero(rng.random(len(x)) < prob)
    real = valid.sum(axis=1)
    for i in chosen:
        width = int(rng.integers(1, max(1, real[i] // 4) + 1))
        start = int(rng.integers(0, real[i] - width + 1))
        x[i, start : start + width] = np.nan


# Body parts that spatial masking hides as a whole (pose keeps its visibility column hidden too).
_PARTS = (layout.POSE, layout.LEFT_HAND, layout.RIGHT_HAND, layout.FACE)


def random_spatial_mask(x: np.ndarray, rng: np.random.Generator, prob: float) -> None:
    """Hide (in place) one body part in every frame of chosen sequences, as if never detected."""
    chosen = np.flatnonzero(rng.random(len(x)) < prob)
    for i, part in zip(chosen, rng.integers(0, len(_PARTS), len(chosen)), strict=True):
        x[i, :, _PARTS[part]] = np.nan


def mixup(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mix each (input, one-hot label) of a batch with another of the same batch, weight drawn
    from Beta(alpha, alpha); mixed labels still sum to 1."""
    lam = rng.beta(alpha, alpha, len(x)).astype(np.float32)
    other = rng.permutation(len(x))
    mixed_x = lam[:, None, None] * x + (1 - lam)[:, None, None] * x[other]
    mixed_y = lam[:, None] * y + (1 - lam)[:, None] * y[other]
    return mixed_x.astype(np.float32), mixed_y.astype(np.float32)


def random_speed(rng: np.random.Generator, n: int, strength: float) -> np.ndarray:
    """Per-sequence playback speed in [1 - strength, 1 + strength] (frames per output frame)."""
    return rng.uniform(1.0 - strength, 1.0 + strength, n)


def random_time_warp(u: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Monotone piecewise-linear warp of normalised time u in [0, 1], per row of u.

    The midpoint moves to c in [0.5 - strength/2, 0.5 + strength/2]: one half of the sign is
    played faster and the other slower. Unlike a global speed change this survives resampling
    to a fixed length, so "resample" mode gets a real time augmentation too.
    """
    c = rng.uniform(0.5 - strength / 2, 0.5 + strength / 2, (len(u), 1))
    return np.where(u < 0.5, u * 2 * c, c + (u - 0.5) * 2 * (1 - c))


def augment_frames(
    x: np.ndarray, rng: np.random.Generator, knobs: dict[str, Any], valid: np.ndarray
) -> None:
    """Apply the per-frame augmentations (in place) to a raw (batch, frames, features) array;
    `valid` marks its real (not padding) frames."""
    if knobs["mirror_prob"] > 0:
        random_mirror(x, rng, knobs["mirror_prob"])
    if any(knobs[k] > 0 for k in ("rotate_deg", "scale", "shift", "shear")):
        random_affine(x, rng, knobs["rotate_deg"], knobs["scale"], knobs["shift"], knobs["shear"])
    if knobs["frame_dropout"] > 0:
        random_frame_dropout(x, rng, knobs["frame_dropout"])
    if knobs["temporal_mask"] > 0:
        random_temporal_mask(x, rng, knobs["temporal_mask"], valid)
    if knobs["spatial_mask"] > 0:
        random_spatial_mask(x, rng, knobs["spatial_mask"])
