"""signpose.layout's face mirror map, derived again from MediaPipe's own face mesh.

MediaPipe's face mesh is drawn symmetric: its mirror image is a map of the 468 points onto
themselves that takes the tessellation onto itself, the left eye onto the right eye and the lips
and nose onto themselves. It is rebuilt here from the tessellation alone, seeded by the nose
bridge (an edge on the midline), and layout's pairs must be exactly its restriction to the
points the features hold.
"""

from __future__ import annotations

import collections
import csv
from pathlib import Path

import numpy as np
import pytest

from signpose import layout
from signpose.compat.mediapipe import PIN, face_mesh_connections
from signpose.training import augment, data

# MediaPipe's nose bridge: two points on the face's midline joined by an edge of FACEMESH_NOSE.
NOSE_BRIDGE = (168, 6)
PARTS = ("LIPS", "LEFT_EYE", "RIGHT_EYE", "LEFT_EYEBROW", "RIGHT_EYEBROW", "NOSE")


def edges(name: str) -> set[frozenset[int]]:
    return {frozenset(e) for e in getattr(face_mesh_connections(), f"FACEMESH_{name}")}


def mesh_mirror() -> dict[int, int]:
    """The tessellation's mirror image: each pair of triangles across a mapped edge maps onto
    the pair across the image edge. A few of MediaPipe's triangles are not drawn symmetric
    (12 of 1,322 edges), so every point takes the image most of its triangles vote for."""
    mesh = edges("TESSELATION")
    near = collections.defaultdict(set)
    for a, b in map(tuple, mesh):
        near[a].add(b)
        near[b].add(a)
    a, b = NOSE_BRIDGE
    c, d = sorted(near[a] & near[b])
    image = {a: a, b: b, c: d, d: c}
    triangles = {frozenset((u, v, w)) for u, v in map(tuple, mesh) for w in near[u] & near[v]}
    for _ in range(len(triangles)):  # until nothing changes; each round maps a ring more
        votes: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
        for tri in map(tuple, triangles):
            for k in range(3):
                u, v, w = tri[k], tri[(k + 1) % 3], tri[(k + 2) % 3]
                if not {u, v, w} <= image.keys():
                    continue
                across = near[u] & near[v] - {w}
                across_image = near[image[u]] & near[image[v]] - {image[w]}
                if len(across) == 1 and len(across_image) == 1:
                    votes[across.pop()][across_image.pop()] += 1
        new = {p: count.most_common(1)[0][0] for p, count in votes.items()}
        if all(image.get(p) == q for p, q in new.items()):
            break
        image |= new
    return image


@pytest.fixture(scope="module")
def mirror_of() -> dict[int, int]:
    return mesh_mirror()


def test_the_mesh_mirror_takes_mediapipes_parts_onto_their_partners(mirror_of):
    # 102 and 331 (beside the nostrils) sit only on triangles that are not drawn symmetric.
    unmapped = set(range(layout.FACE_MESH_POINTS)) - mirror_of.keys()
    assert unmapped == {102, 331}, f"{PIN}: the tessellation changed"
    assert all(mirror_of[mirror_of[p]] == p for p in mirror_of)
    mirrored = (("LEFT_EYE", "RIGHT_EYE"), ("LEFT_EYEBROW", "RIGHT_EYEBROW"), ("LIPS", "LIPS"),
                ("NOSE", "NOSE"), ("FACE_OVAL", "FACE_OVAL"))  # fmt: skip
    for left, right in mirrored:
        mapped = {frozenset(mirror_of[p] for p in e) for e in edges(left)}
        assert mapped == edges(right), f"{PIN}: FACEMESH_{left} no longer mirrors {right}"


def test_the_layouts_face_pairs_are_the_mesh_mirror_on_the_points_the_features_hold(mirror_of):
    held = set(layout.FACE_INDICES)
    closed = {p for p in held if mirror_of.get(p) in held}
    pairs = {(p, mirror_of[p]) for p in closed if p < mirror_of[p]}
    assert set(layout.FACE_LEFT_RIGHT) == pairs
    assert set(layout.FACE_MIDLINE) == {p for p in closed if mirror_of[p] == p}
    in_parts = {p for name in PARTS for e in edges(name) for p in e}
    assert set(layout.FACE_PARTS) == closed & in_parts
    assert list(layout.FACE_PARTS) == sorted(layout.FACE_PARTS)


def test_mirroring_twice_is_the_identity_and_closes_the_face_parts():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 7, layout.N_FEATURES)).astype(np.float32)
    x[0, 2, layout.RIGHT_HAND] = np.nan
    np.testing.assert_array_equal(augment.mirror(augment.mirror(x)), x)
    perm = np.asarray(layout.mirror_permutation())
    np.testing.assert_array_equal(perm[perm], np.arange(layout.N_FEATURES))
    parts = layout.face_columns(layout.FACE_PARTS)
    assert set(perm[parts]) == set(parts)  # the model's face reads only its own partners


def mean_abs_z(rows: np.ndarray, stats: data.Stats, columns: list[int]) -> float:
    z = (rows - stats.mean) * stats.inv_std
    return float(np.nanmean(np.abs(z[:, columns])))


def train_features(results: Path) -> np.ndarray:
    with open(results / "tables" / "instances.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "train" and r["status"] == "kept"]
    return np.concatenate([np.load(results / "tables" / r["features_file"]) for r in rows])


@pytest.mark.slow
def test_mirrored_face_columns_keep_the_train_distribution(demo):
    """On the demo's real train features and statistics: the model's face columns, mirrored,
    are as far from the train mean as they are unmirrored (mean |z| within 10%), x alone too.
    The every-5th face, whose points mostly have no partner, is shown to be far off."""
    rows = train_features(demo)
    stats = data.load_stats(demo / "stats" / "global_stats.npz", std_floor=0.1)
    mirrored = augment.mirror(rows)
    parts = layout.face_columns(layout.FACE_PARTS)
    for columns in (parts, parts[0::3]):
        before, after = mean_abs_z(rows, stats, columns), mean_abs_z(mirrored, stats, columns)
        assert abs(after - before) <= 0.1 * before, (before, after)
    every5_x = layout.face_columns(layout.FACE_INDICES)[0::3]
    assert mean_abs_z(mirrored, stats, every5_x) > 1.5 * mean_abs_z(rows, stats, every5_x)
