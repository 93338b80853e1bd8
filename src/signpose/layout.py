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


# The face mesh's mirror image, among the points the features hold: (left, right) pairs of
# face-mesh indices whose partner is also a multiple of FACE_STEP, and the points on the midline
# (their own partner). Taken from MediaPipe's own mesh (tests/test_layout.py derives it from
# the tessellation and the connection sets of mediapipe's face_mesh_connections).
FACE_LEFT_RIGHT = (
    (20, 250), (25, 255), (30, 260), (35, 265), (40, 270), (45, 275), (50, 280), (55, 285),
    (60, 290), (65, 295), (70, 300), (75, 305), (80, 310), (85, 315), (90, 320), (170, 395),
    (205, 425), (210, 430), (215, 435), (220, 440), (225, 445), (230, 450), (235, 455),
    (240, 460), (245, 465),
)  # fmt: skip
FACE_MIDLINE = (0, 5, 10, 15, 175, 195, 200)
# The mirrorable points of the lips, eyes, eyebrows and nose (MediaPipe's FACEMESH_LIPS,
# _LEFT_EYE, _RIGHT_EYE, _LEFT_EYEBROW, _RIGHT_EYEBROW, _NOSE): the face the model reads
# by default (train.input.face: mirrorable). No eye point of the every-5th subsample has its
# partner in it, so the eyes are absent.
FACE_PARTS = (0, 5, 40, 45, 55, 65, 70, 80, 195, 220, 270, 275, 285, 295, 300, 310, 440)


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

    Hands swap whole blocks, pose landmarks and face points swap pairs (FACE_LEFT_RIGHT); the
    face points without a partner in the every-5th subsample stay in place, x negated only
    (which is why the model reads only FACE_PARTS by default).
    """
    perm = list(range(N_FEATURES))
    for a, b in POSE_LEFT_RIGHT:
        for k in range(4):
            perm[a * 4 + k], perm[b * 4 + k] = b * 4 + k, a * 4 + k
    left = range(LEFT_HAND.start, LEFT_HAND.stop)
    right = range(RIGHT_HAND.start, RIGHT_HAND.stop)
    for i, j in zip(left, right, strict=True):
        perm[i], perm[j] = j, i
    face = {point: FACE.start + 3 * k for k, point in enumerate(FACE_INDICES)}
    for a, b in FACE_LEFT_RIGHT:
        for k in range(3):
            perm[face[a] + k], perm[face[b] + k] = face[b] + k, face[a] + k
    return perm


def face_columns(points: tuple[int, ...]) -> list[int]:
    """Feature columns (x, y, z) of the given face-mesh points, in the order given."""
    return [FACE.start + 3 * FACE_INDICES.index(p) + k for p in points for k in range(3)]
