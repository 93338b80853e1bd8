"""The feature column layout, written down once.

A feature row holds 540 float32 values per frame, torso-centred and scaled (see
`signpose.features`); a part that MediaPipe did not detect in a frame is NaN, never 0.

    columns   0-131  pose 33 landmarks x (x, y, z, visibility)
    columns 132-194  left hand 21 landmarks x (x, y, z)
    columns 195-257  right hand 21 landmarks x (x, y, z)
    columns 258-539  face: every 5th of the 468 face-mesh landmarks (94) x (x, y, z)

"left"/"right" are MediaPipe's (the signer's own hands, as pose-format names them).
"""

from __future__ import annotations

POSE_POINTS = 33
HAND_POINTS = 21
FACE_STEP = 5
FACE_MESH_POINTS = 468
FACE_INDICES = tuple(range(0, FACE_MESH_POINTS, FACE_STEP))  # 94 points

POSE = slice(0, POSE_POINTS * 4)
LEFT_HAND = slice(POSE.stop, POSE.stop + HAND_POINTS * 3)
RIGHT_HAND = slice(LEFT_HAND.stop, LEFT_HAND.stop + HAND_POINTS * 3)
FACE = slice(RIGHT_HAND.stop, RIGHT_HAND.stop + len(FACE_INDICES) * 3)
N_FEATURES = FACE.stop  # 540

# MediaPipe Pose landmark pairs (left, right) used for mirroring.
POSE_LEFT_RIGHT = (
    (1, 4), (2, 5), (3, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 18),
    (19, 20), (21, 22), (23, 24), (25, 26), (27, 28), (29, 30), (31, 32),
)  # fmt: skip


def column_names() -> list[str]:
    """One name per column, e.g. 'pose_11_x', 'right_hand_8_y', 'face_235_z'."""
    names = [f"pose_{i}_{a}" for i in range(POSE_POINTS) for a in "xyzv"]
    for hand in ("left_hand", "right_hand"):
        names += [f"{hand}_{i}_{a}" for i in range(HAND_POINTS) for a in "xyz"]
    names += [f"face_{i}_{a}" for i in FACE_INDICES for a in "xyz"]
    assert len(names) == N_FEATURES
    return names


def x_columns() -> list[int]:
    """Indices of every x coordinate (negate these to mirror a row horizontally)."""
    return [i for i, n in enumerate(column_names()) if n.endswith("_x")]


def mirror_permutation() -> list[int]:
    """Column permutation that swaps left and right body parts (pair it with x negation).

    Hands swap whole blocks and pose landmarks swap pairs; face columns stay in place, since
    the every-5th subsample of the face mesh is not closed under its left/right symmetry.
    """
    perm = list(range(N_FEATURES))
    for a, b in POSE_LEFT_RIGHT:
        for k in range(4):
            perm[a * 4 + k], perm[b * 4 + k] = b * 4 + k, a * 4 + k
    left = range(LEFT_HAND.start, LEFT_HAND.stop)
    right = range(RIGHT_HAND.start, RIGHT_HAND.stop)
    for i, j in zip(left, right, strict=True):
        perm[i], perm[j] = j, i
    return perm
