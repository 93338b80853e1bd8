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
    x: np.ndarray, rng: np.random.Generator, rotate_deg: float, scale: float, shift: float
) -> None:
    """Rotate, scale and shift each sequence (in place) in the x-y plane about the torso centre.

    z is scaled with x and y so that the hand's depth stays in proportion.
    """
    n = len(x)
    theta = np.deg2rad(rng.uniform(-rotate_deg, rotate_deg, n))
    s = rng.uniform(1.0 - scale, 1.0 + scale, n)
    tx, ty = rng.uniform(-shift, shift, (2, n))
    # Per-sequence parameters broadcast over (frames, points).
    cos, sin, s, tx, ty = (v.astype(np.float32)[:, None, None] for v in (
        s * np.cos(theta), s * np.sin(theta), s, tx, ty
    ))  # fmt: skip
    for xyz in _xyz_views(x):
        px, py = xyz[..., 0].copy(), xyz[..., 1].copy()
        xyz[..., 0] = cos * px - sin * py + tx
        xyz[..., 1] = sin * px + cos * py + ty
        xyz[..., 2] *= s


def random_frame_dropout(x: np.ndarray, rng: np.random.Generator, prob: float) -> None:
    """Blank whole frames (in place) as if the tracker had lost the signer in them."""
    dropped = rng.random(x.shape[:2]) < prob
    x[dropped] = np.nan


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


def augment_frames(x: np.ndarray, rng: np.random.Generator, knobs: dict[str, Any]) -> None:
    """Apply the per-frame augmentations (in place) to a raw (batch, frames, features) array."""
    if knobs["mirror_prob"] > 0:
        random_mirror(x, rng, knobs["mirror_prob"])
    if knobs["rotate_deg"] > 0 or knobs["scale"] > 0 or knobs["shift"] > 0:
        random_affine(x, rng, knobs["rotate_deg"], knobs["scale"], knobs["shift"])
    if knobs["frame_dropout"] > 0:
        random_frame_dropout(x, rng, knobs["frame_dropout"])
