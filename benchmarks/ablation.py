"""Training recipe ablation (issue #19) on synthetic signing, since real WLASL is out of reach.

    .venv/bin/python benchmarks/ablation.py [--classes 16] [--signers 12] [--reps 2]
        [--epochs 20] [--seeds 3] [--variants INDEX ...] [--list] [--threads 2] [--out DIR]
        [--demo RESULTS_DIR] [--json FILE]

The data: MediaPipe Holistic landmarks of a synthetic signer (pose 33, face 468, both hands 21,
in image pixels), turned into the published features by the features stage's own code
(`signpose.features.extract`: trimming, torso centring and scaling, NaN for an undetected part,
the notebook's EMA) and written as `features/<video_id>.npy` with the QC records; then
`tables/instances.csv` (`signpose.tables`) and the train-only `stats/global_stats.npz`
(`signpose.aggregates.stats_job`), so training and evaluation run through the workflow's own jobs
(`signpose.aggregates.train_job` / `evaluate_job`).

A class is a motion: the dominant hand's path through signing space (a cubic Bezier), a change
of handshape at a class-specific moment and a turn of the palm. Classes come in groups of four
sharing one path: the path, the path played backwards, the path with the two handshapes in the
other order, and the path signed with both hands (the other hand mirroring it), so that where
the hands go is not enough: the order of events is the sign. The nuisances real data carries:
- signers of different build (shoulder and hip widths, arm reach, hand size) and handedness: a
  left-dominant signer's body and hands are mirrored (the face is not: a face is a face);
- speed: each signer has a tempo (0.7-1.4x), each clip its own (0.8-1.25x) and an uneven
  timing within the sign (a random monotone time warp);
- missing hands: the dominant hand is not detected in `--missing-hand` of the frames, in bursts;
  a resting non-dominant hand is seen in a quarter of the frames;
- camera: each signer's camera has its own position, zoom, roll (+-8 deg) and yaw (+-15 deg),
  with landmark jitter on every frame.
Splits are by signer: test and val signers are never seen in training (each split has a
left-dominant signer with the default sizes).

The ablation trains a small transformer for a fixed budget of epochs once per seed for the full
recipe (the schema's defaults), each recipe part switched off in turn, and today's behaviour
(every switch at its old value), and reports test top-1 mean +- sd. A variant whose keys the
schema does not have is reported as not run. `--demo` trains the embedded demo's features
(a results folder of `make demo`: its tables and stats) with the demo's config under the new
defaults and under today's behaviour, the same seeds.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from provenance import ROOT, git, save

from signpose import aggregates, layout, metadata, tables
from signpose.config import schema, with_defaults

FPS = 25.0
WIDTH, HEIGHT = 640, 480
FACE_POINTS = 468
# Holistic's point order in a .pose body: pose, face, left hand, right hand, pose world.
N_POINTS = layout.POSE_POINTS + FACE_POINTS + 2 * layout.HAND_POINTS + layout.POSE_POINTS

# --- the recipe parts and their old values ----------------------------------------------------

# Each part of the recipe: what switches it off (dotted train keys). The full recipe is the
# schema's defaults.
PARTS: dict[str, dict[str, Any]] = {
    "optimizer adam (no weight decay)": {"optimizer": "adam"},
    "lr_schedule plateau": {"lr_schedule": "plateau"},
    "label_smoothing 0": {"label_smoothing": 0.0},
    "rotation off": {"augment.rotate_deg": 0},
    "scale off": {"augment.scale": 0.0},
    "shear off": {"augment.shear": 0.0},
    "time_stretch off": {"augment.time_stretch": 0.0},
    "temporal_mask off": {"augment.temporal_mask": 0.0},
    "spatial_mask off": {"augment.spatial_mask": 0.0},
    "mixup off": {"augment.mixup_alpha": 0.0},
    "tta_flip off": {"tta_flip": False},
    "velocity off": {"input.velocity": False},
    "canonical_hand off": {"input.canonical_hand": False},
    "face every5": {"input.face": "every5"},
    "input.ema_alpha 0.2 (the features' own smoothing)": {"input.ema_alpha": 0.2},
}
# Today's behaviour before issue #19: every switch at its old value (the model read the
# features as they are, with their own EMA of 0.2).
TODAY: dict[str, Any] = {
    "input.ema_alpha": 0.2,
    "optimizer": "adam",
    "lr_schedule": "plateau",
    "label_smoothing": 0.0,
    "augment.rotate_deg": 10,
    "augment.scale": 0.1,
    "augment.shear": 0.0,
    "augment.time_stretch": 0.2,
    "augment.temporal_mask": 0.0,
    "augment.spatial_mask": 0.0,
    "augment.mixup_alpha": 0.0,
    "tta_flip": False,
    "input.velocity": False,
    "input.acceleration": False,
    "input.canonical_hand": False,
    "input.face": "every5",
    "input.clip": 1e9,  # no clipping
}
FULL, OLD = "full recipe (the defaults)", "today's behaviour (every switch at its old value)"


def variants() -> dict[str, dict[str, Any]]:
    return {FULL: {}, OLD: TODAY, **PARTS}


def has_key(dotted: str) -> bool:
    """Whether config/schema.yaml's `train` section has the (dotted) key."""
    node = schema()["properties"]["train"]
    for part in dotted.split("."):
        node = node.get("properties", {}).get(part)
        if node is None:
            return False
    return True


def known(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The overrides whose keys the schema has."""
    return {k: v for k, v in overrides.items() if has_key(k)}


def nested(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`base` (a train section) with dotted `overrides` set in it."""
    out = copy.deepcopy(dict(base))
    for dotted, value in overrides.items():
        *path, last = dotted.split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return out


# --- the synthetic signer ---------------------------------------------------------------------

# Right hand, palm to the camera, fingers up, in units of the wrist-to-middle-MCP length.
_MCP = np.array([[0.35, -0.2], [0.3, -0.95], [0.0, -1.0], [-0.25, -0.95], [-0.48, -0.85]])
_SEGMENTS = np.array([[0.3, 0.25, 0.22], [0.45, 0.28, 0.22], [0.5, 0.3, 0.24],
                      [0.45, 0.28, 0.22], [0.36, 0.22, 0.2]])  # fmt: skip
_SPREAD = np.array([0.75, 0.12, 0.0, -0.12, -0.25])  # finger direction's x slope when open


def hand_points(curl: np.ndarray) -> np.ndarray:
    """(frames, 21, 3) right-hand landmarks in hand units for per-frame finger curls (frames, 5).

    A curled finger bends towards the camera and down at each joint; the thumb folds across the
    palm.
    """
    n = len(curl)
    out = np.zeros((n, layout.HAND_POINTS, 3))
    for f in range(5):
        base = np.array([_MCP[f, 0], _MCP[f, 1], 0.0])
        joint = np.broadcast_to(base, (n, 3)).copy()
        out[:, 1 + 4 * f] = joint
        open_dir = np.array([_SPREAD[f], -1.0, 0.0]) / math.hypot(_SPREAD[f], 1.0)
        for k, bend in enumerate((1.2, 1.5, 1.0)):
            a = curl[:, f] * bend * (k + 1) / 2
            if f == 0:  # the thumb folds in the palm's plane, towards the little finger
                d = np.stack([open_dir[0] * np.cos(a) - np.sin(a), open_dir[1] * np.cos(a),
                              -0.3 * np.sin(a)], axis=1)  # fmt: skip
            else:
                d = np.stack([open_dir[0] * np.cos(a), open_dir[1] * np.cos(a), -np.sin(a)], 1)
            joint = joint + d * _SEGMENTS[f, k]
            out[:, 2 + 4 * f + k] = joint
    return out


def bezier(ctrl: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Points (len(u), 3) of the cubic Bezier curve with control points ctrl (4, 3)."""
    u = u[:, None]
    return ((1 - u) ** 3 * ctrl[0] + 3 * (1 - u) ** 2 * u * ctrl[1]
            + 3 * (1 - u) * u**2 * ctrl[2] + u**3 * ctrl[3])  # fmt: skip


@dataclass(frozen=True)
class Motion:
    """One class: the dominant (right) hand's path, handshapes and palm turn over sign time."""

    path: np.ndarray  # (4, 3) Bezier control points, body units, signer's right hand
    shapes: tuple[np.ndarray, np.ndarray]  # finger curls (5,) before and after the change
    change_at: float  # sign time of the handshape change, in (0, 1)
    palm: tuple[float, float]  # palm rotation (rad) at the start and the end
    two_handed: bool


def make_classes(n: int, rng: np.random.Generator) -> list[Motion]:
    """n classes in groups of four around one path: itself, backwards, handshapes swapped,
    two-handed."""
    bank = np.array([[0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 1, 1, 1], [1, 0, 0, 1, 1],
                     [0, 1, 1, 1, 1], [1, 0, 0, 0, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 0],
                     [0.5, 0.5, 0.5, 0.5, 0.5], [1, 0, 0, 0, 1]], float)  # fmt: skip
    classes: list[Motion] = []
    while len(classes) < n:
        low, high = np.array([-0.75, -1.45, -0.35]), np.array([0.35, 0.15, 0.0])
        path = rng.uniform(low, high, (4, 3))
        a, b = rng.choice(len(bank), 2, replace=False)
        palm = tuple(rng.uniform(-0.7, 0.7, 2))
        change = float(rng.uniform(0.3, 0.7))
        shapes = (bank[a], bank[b])
        group = [
            Motion(path, shapes, change, palm, False),
            Motion(path[::-1].copy(), shapes, change, palm, False),
            Motion(path, shapes[::-1], change, palm, False),
            Motion(path, shapes, change, palm, True),
        ]
        classes += group[: n - len(classes)]
    return classes


@dataclass(frozen=True)
class Signer:
    signer_id: str
    left_dominant: bool
    shoulder: float  # shoulder span, body units (the torso height is 1)
    hip: float
    reach: float  # scales how far the hands move from the body centre
    hand: float  # hand size: wrist to middle MCP, body units
    tempo: float  # signing speed factor
    offset: np.ndarray  # (3,) the signer's own placement of signing space
    face: np.ndarray  # (468, 3) face mesh, body units relative to the head centre
    camera: tuple[float, float, float, float, float]  # x px, y px, zoom px/unit, roll, yaw


def make_signers(n: int, rng: np.random.Generator, camera: bool = True) -> list[Signer]:
    """n signers; every third (the 3rd, 6th, ...) is left-dominant."""
    base_face = _face_template(np.random.default_rng(1234))
    signers = []
    for i in range(n):
        roll, yaw = (rng.uniform(-0.14, 0.14), rng.uniform(-0.26, 0.26)) if camera else (0, 0)
        signers.append(Signer(
            signer_id=f"s{i:02d}",
            left_dominant=i % 3 == 2,
            shoulder=rng.uniform(0.85, 1.15),
            hip=rng.uniform(0.6, 0.8),
            reach=rng.uniform(0.8, 1.2),
            hand=rng.uniform(0.11, 0.15),
            tempo=rng.uniform(0.7, 1.4),
            offset=rng.normal(0, [0.06, 0.06, 0.03]),
            face=base_face * rng.uniform(0.9, 1.1, 3) + rng.normal(0, 0.01, base_face.shape),
            camera=(rng.uniform(0.35, 0.65) * WIDTH, rng.uniform(0.55, 0.75) * HEIGHT,
                    rng.uniform(90, 160), roll, yaw),
        ))  # fmt: skip
    return signers


def _face_template(rng: np.random.Generator) -> np.ndarray:
    """468 points on an ellipse-shaped face (not left-right symmetric, as the mesh's subsample
    is not)."""
    angle, radius = rng.uniform(0, 2 * np.pi, FACE_POINTS), np.sqrt(rng.random(FACE_POINTS))
    return np.stack([0.22 * radius * np.cos(angle), 0.3 * radius * np.sin(angle),
                     -0.08 * (1 - radius**2)], axis=1)  # fmt: skip


def _rest(side: float) -> np.ndarray:
    return np.array([0.3 * side, 0.65, -0.05])


def _time_warp(u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random monotone warp of [0, 1] onto itself: uneven timing within one sign."""
    knots = np.cumsum(rng.uniform(0.5, 1.5, 6))
    knots = np.concatenate([[0.0], knots / knots[-1]])
    return np.interp(u, np.linspace(0, 1, len(knots)), knots)


def _missing(n: int, rate: float, rng: np.random.Generator, burst: float = 3.0) -> np.ndarray:
    """(n,) True where the hand is lost: a two-state Markov chain with stationary `rate` and
    bursts `burst` frames long on average."""
    if rate <= 0:
        return np.zeros(n, bool)
    p_end = 1 / burst
    p_start = min(1.0, rate * p_end / (1 - rate))
    lost = np.zeros(n, bool)
    state = rng.random() < rate
    for t in range(n):
        lost[t] = state
        state = rng.random() >= p_end if state else rng.random() < p_start
    return lost


def _body_points(s: Signer, right_wrist: np.ndarray, left_wrist: np.ndarray,
                 right_hand: np.ndarray, left_hand: np.ndarray) -> np.ndarray:  # fmt: skip
    """(frames, 33, 3) pose landmarks of a signer whose wrists and hands are given."""
    n = len(right_wrist)
    p = np.zeros((n, layout.POSE_POINTS, 3))
    head = np.array([0.0, -1.25, -0.05])
    face_pts = {0: (0, 0), 1: (0.05, -0.05), 2: (0.08, -0.06), 3: (0.11, -0.05), 4: (-0.05, -0.05),
                5: (-0.08, -0.06), 6: (-0.11, -0.05), 7: (0.2, -0.02), 8: (-0.2, -0.02),
                9: (0.05, 0.1), 10: (-0.05, 0.1)}  # fmt: skip
    for i, (dx, dy) in face_pts.items():
        p[:, i] = head + [dx, dy, 0]
    sh, hip = s.shoulder / 2, s.hip / 2
    p[:, 11], p[:, 12] = [sh, -0.5, 0], [-sh, -0.5, 0]
    p[:, 23], p[:, 24] = [hip, 0.5, 0], [-hip, 0.5, 0]
    for side, (shoulder, elbow, wrist, hand) in {
        1: (11, 13, left_wrist, left_hand),
        -1: (12, 14, right_wrist, right_hand),
    }.items():
        mid = (p[:, shoulder] + wrist) / 2
        p[:, elbow] = mid + [0.2 * side, 0.25, 0.05]
        p[:, 15 if side == 1 else 16] = wrist
        for k, h in ((17, 17), (19, 5), (21, 2)):  # pinky, index, thumb: the hand's points
            p[:, k + (0 if side == 1 else 1)] = hand[:, h]
    for k, y in ((25, 1.4), (27, 2.2), (29, 2.3), (31, 2.35)):
        p[:, k], p[:, k + 1] = [hip, y, 0], [-hip, y, 0]
    return p


def _mirror_body(points: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The same frames as a mirror image about the body's midline: x negated, left and right
    swapped (pose pairs, the hands and their detection flags); the face is the signer's own."""
    body = points["body"].copy()
    body[..., 0] *= -1
    vis = points["visibility"].copy()
    for a, b in layout.POSE_LEFT_RIGHT:
        body[:, [a, b]] = body[:, [b, a]]
        vis[:, [a, b]] = vis[:, [b, a]]
    left, right = points["right"].copy(), points["left"].copy()
    left[..., 0] *= -1
    right[..., 0] *= -1
    return points | {
        "body": body,
        "visibility": vis,
        "left": left,
        "right": right,
        "left_found": points["right_found"],
        "right_found": points["left_found"],
    }


def clip_points(motion: Motion, signer: Signer, rng: np.random.Generator,
                missing_hand: float, base_frames: int = 48) -> dict[str, np.ndarray]:  # fmt: skip
    """One clip of `motion` by `signer` in body units (torso height 1, centre 0, y down),
    before the camera: body (frames, 33, 3), visibility, both hands (frames, 21, 3), face
    (frames, 468, 3) and each hand's detection flags."""
    n = max(12, round(base_frames * rng.uniform(0.8, 1.25) / signer.tempo))
    t = _time_warp(np.linspace(0, 1, n), rng)
    # Lead-in from rest, the sign, back to rest: 15% / 70% / 15% of the clip's time.
    sign_u = np.clip((t - 0.15) / 0.7, 0, 1)
    path = bezier(motion.path * [signer.reach, signer.reach, 1] + signer.offset, sign_u)
    k_in = np.clip(t / 0.15, 0, 1)[:, None]
    k_out = np.clip((1 - t) / 0.15, 0, 1)[:, None]
    blend = np.minimum(k_in, k_out)
    right_wrist = blend * path + (1 - blend) * _rest(-1)
    mirrored = path * [-1, 1, 1]
    left_wrist = np.broadcast_to(_rest(1), (n, 3))
    if motion.two_handed:
        left_wrist = blend * mirrored + (1 - blend) * _rest(1)
    changed = 1 / (1 + np.exp(-(sign_u - motion.change_at) * 30))[:, None]
    curl = (1 - changed) * motion.shapes[0] + changed * motion.shapes[1]
    palm = motion.palm[0] + (motion.palm[1] - motion.palm[0]) * sign_u

    def place(wrist: np.ndarray, curls: np.ndarray, angle: np.ndarray, side: float) -> np.ndarray:
        local = hand_points(curls) * [side, 1, 1] * signer.hand
        c, s = np.cos(angle * side)[:, None], np.sin(angle * side)[:, None]
        x, y = local[..., 0].copy(), local[..., 1].copy()
        local[..., 0], local[..., 1] = c * x - s * y, s * x + c * y
        return local + wrist[:, None, :]

    rest_curl = np.full((n, 5), 0.3)
    right = place(right_wrist, curl, palm, -1.0)
    left = place(left_wrist, curl if motion.two_handed else rest_curl,
                 palm if motion.two_handed else np.zeros(n), 1.0)  # fmt: skip
    body = _body_points(signer, right_wrist, left_wrist, right, left)
    face = np.broadcast_to(signer.face + [0, -1.25, -0.1], (n, FACE_POINTS, 3)).copy()
    jitter = 0.004
    body += rng.normal(0, jitter, body.shape)
    right += rng.normal(0, jitter, right.shape)
    left += rng.normal(0, jitter, left.shape)
    face += rng.normal(0, jitter / 2, face.shape)
    vis = np.where(np.arange(layout.POSE_POINTS) < 25, 0.99, 0.25) * np.ones((n, 1))
    right_found = ~_missing(n, missing_hand, rng)
    left_found = ~_missing(n, missing_hand, rng) if motion.two_handed else rng.random(n) < 0.25
    points = {"body": body, "visibility": vis, "left": left, "right": right, "face": face,
              "left_found": left_found, "right_found": right_found}  # fmt: skip
    return _mirror_body(points) if signer.left_dominant else points


def to_pose(points: Mapping[str, np.ndarray], camera: tuple[float, ...]):
    """A MediaPipe Holistic pose-format `Pose` of the clip filmed by `camera` (x px, y px,
    zoom px/unit, roll, yaw): pixels for x and y, z as MediaPipe writes it (image widths)."""
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeaderDimensions

    from signpose import tombstone
    from signpose.compat.pose_format import read_pose_bytes

    cx, cy, zoom, roll, yaw = camera

    def film(p: np.ndarray) -> np.ndarray:
        x, y, z = p[..., 0], p[..., 1], p[..., 2]
        x, z = x * np.cos(yaw) + z * np.sin(yaw), -x * np.sin(yaw) + z * np.cos(yaw)
        x, y = x * np.cos(roll) - y * np.sin(roll), x * np.sin(roll) + y * np.cos(roll)
        return np.stack([cx + zoom * x, cy + zoom * y, zoom * z / WIDTH], axis=-1)

    n = len(points["body"])
    data = np.zeros((n, 1, N_POINTS, 3), np.float32)
    conf = np.zeros((n, 1, N_POINTS), np.float32)
    start = 0
    for key, found in (("body", None), ("face", None), ("left", "left_found"),
                       ("right", "right_found")):  # fmt: skip
        block = film(points[key])
        width = block.shape[1]
        seen = np.ones(n, bool) if found is None else points[found]
        data[seen, 0, start : start + width] = block[seen]
        c = points["visibility"] if key == "body" else np.ones((n, width))
        conf[seen, 0, start : start + width] = c[seen]
        start += width
    template = read_pose_bytes(tombstone.empty_holistic_pose())
    header = template.header
    header.dimensions = PoseHeaderDimensions(WIDTH, HEIGHT, 0)
    mask = np.broadcast_to((conf == 0)[..., None], data.shape)
    return Pose(header, NumPyPoseBody(FPS, np.ma.masked_array(data, mask), conf))


# --- the synthetic dataset in the workflow's layout --------------------------------------------


@dataclass(frozen=True)
class Sizes:
    classes: int = 16
    signers: int = 12
    reps: int = 2  # clips of each class by each signer
    val_signers: int = 2
    test_signers: int = 3
    missing_hand: float = 0.15
    base_frames: int = 48
    camera: bool = True
    seed: int = 0


def split_of_signer(index: int, sizes: Sizes) -> str:
    """The last `test_signers` signers are test, the `val_signers` before them val."""
    if index >= sizes.signers - sizes.test_signers:
        return "test"
    if index >= sizes.signers - sizes.test_signers - sizes.val_signers:
        return "val"
    return "train"


def write_dataset(root: Path, sizes: Sizes) -> dict[str, Any]:
    """The features, QC records, tables/instances.csv and stats/global_stats.npz of a synthetic
    dataset under `root`, as the workflow lays them out. Returns a description of it."""
    from signpose.features import FeatureOptions, extract

    if sizes.signers - sizes.val_signers - sizes.test_signers < 1:
        raise ValueError(f"{sizes.signers} signers leave none for training")
    rng = np.random.default_rng(sizes.seed)
    classes = make_classes(sizes.classes, rng)
    signers = make_signers(sizes.signers, rng, sizes.camera)
    options = FeatureOptions.from_config(with_defaults({}, "features"))
    (root / "features").mkdir(parents=True, exist_ok=True)
    (root / "qc").mkdir(parents=True, exist_ok=True)
    instances, records = {}, []
    for si, signer in enumerate(signers):
        split = split_of_signer(si, sizes)
        for ci, motion in enumerate(classes):
            for rep in range(sizes.reps):
                vid = f"{signer.signer_id}_c{ci:02d}_{rep}"
                points = clip_points(motion, signer, rng, sizes.missing_hand, sizes.base_frames)
                feats, qc = extract(to_pose(points, signer.camera), options)
                np.save(root / "features" / f"{vid}.npy", feats)
                records.append({"video_id": vid, **qc, "stage": "features",
                                "reason": ",".join(qc["failed"])})  # fmt: skip
                instances[vid] = metadata.Instance(
                    video_id=vid, gloss=f"sign{ci:02d}", split=split,
                    url=f"synthetic://{vid}", source_id=vid, frame_start=1, frame_end=-1,
                    fps=FPS, bbox=None, signer_id=signer.signer_id, site="synthetic",
                )  # fmt: skip
    qc_path = root / "qc" / "synthetic.jsonl"
    qc_path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    dataset = metadata.Dataset(instances, metadata.urls_of(instances))
    df = tables.instances_table(dataset, [qc_path], {"features": "../features/{video_id}.npy"})
    tables.write_csv(df, root / "tables" / "instances.csv")
    (root / "stats").mkdir(exist_ok=True)
    aggregates.stats_job(str(root / "tables" / "instances.csv"),
                         str(root / "stats" / "global_stats.npz"), options.ema_alpha)  # fmt: skip
    kept = df[df["status"] == "kept"]
    return {
        "sizes": {k: v for k, v in sizes.__dict__.items()},
        "instances": len(df),
        "kept": int(len(kept)),
        "per_split": {s: int((kept["split"] == s).sum()) for s in ("train", "val", "test")},
        "signers": {
            s.signer_id: {"split": split_of_signer(i, sizes), "left_dominant": s.left_dominant}
            for i, s in enumerate(signers)
        },
        "frames_median": float(np.median(kept["frames"])),
    }


# --- training and evaluation through the workflow's jobs ---------------------------------------


def train_and_test(results: Path, run: Path, options: dict[str, Any], threads: int) -> dict:
    """Train with the `train` section `options` on results/tables/instances.csv (the workflow's
    train and evaluate jobs), return the test and val figures and the training summary."""
    import keras

    keras.backend.clear_session()
    instances = str(results / "tables" / "instances.csv")
    stats_path = str(results / "stats" / "global_stats.npz")
    files = ("model.keras", "labels.json", "history.csv", "curves.png", "summary.json",
             "config.json")  # fmt: skip
    out = dict(zip(("model", "labels", "history", "curves", "summary", "config"),
                   (str(run / f) for f in files), strict=True))  # fmt: skip
    out["tensorboard"] = str(run / "tensorboard")
    started = time.perf_counter()
    aggregates.train_job(instances, stats_path, out, options, threads, "")
    trained = {k: out[k] for k in ("model", "labels", "summary", "config")}
    metrics_path = run / "metrics.json"
    aggregates.evaluate_job(instances, stats_path, trained,
                            {"metrics": str(metrics_path), "confusion": str(run / "cm.png")},
                            options, threads, "")  # fmt: skip
    metrics = json.loads(metrics_path.read_text())
    summary = json.loads(Path(out["summary"]).read_text())
    splits = metrics["splits"]
    return {
        "test_top1": splits["test"]["top1"],
        "test_n": splits["test"]["n_evaluated"],
        "val_top1": splits["val"]["top1"],
        "epochs": summary["epochs"],
        "best_epoch": summary["best_epoch"],
        "seconds": round(time.perf_counter() - started, 1),
    }


def mean_sd(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def ablate(results: Path, work: Path, base: dict[str, Any], chosen: list[str], seeds: list[int],
           threads: int, out: dict[str, Any], done: Callable[[], None]) -> None:  # fmt: skip
    """Every chosen variant once per seed, into `out` by name, calling `done` after each (so a
    long run that is stopped keeps what it measured); the keys the schema lacks are left out
    and said."""
    table = variants()
    for v, name in enumerate(chosen):
        overrides = table[name]
        usable = known(overrides)
        missing = sorted(set(overrides) - set(usable))
        if overrides and not usable:
            out[name] = {"run": False, "missing_keys": missing}
            print(f"{name}: not run, the schema has none of {missing}", flush=True)
            done()
            continue
        runs = []
        for seed in seeds:
            options = nested(base, usable | {"seed": seed})
            with_defaults(options, section="train")  # a bad override stops here, before training
            runs.append(train_and_test(results, work / f"v{v:02d}_s{seed}", options, threads))
            print(f"{name} seed {seed}: test top-1 {runs[-1]['test_top1']:.3f} "
                  f"({runs[-1]['seconds']} s)", flush=True)  # fmt: skip
        mean, sd = mean_sd([r["test_top1"] for r in runs])
        out[name] = {"run": True, "overrides": usable, "missing_keys": missing, "runs": runs,
                     "test_top1_mean": mean, "test_top1_sd": sd}  # fmt: skip
        done()


def demo_train_section() -> dict[str, Any]:
    with open(ROOT / "config" / "config.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)["train"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--classes", type=int, default=Sizes.classes)
    p.add_argument("--signers", type=int, default=Sizes.signers)
    p.add_argument("--reps", type=int, default=Sizes.reps)
    p.add_argument("--val-signers", type=int, default=Sizes.val_signers)
    p.add_argument("--test-signers", type=int, default=Sizes.test_signers)
    p.add_argument("--missing-hand", type=float, default=Sizes.missing_hand)
    p.add_argument("--data-seed", type=int, default=Sizes.seed)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seq-len", type=int, default=32)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument(
        "--variants",
        nargs="*",
        default=None,
        metavar="INDEX",
        help="indices into the variant list (default: all; --list shows it)",
    )
    p.add_argument("--list", action="store_true", help="print the variants and stop")
    p.add_argument(
        "--demo",
        type=Path,
        default=None,
        help="a demo results folder (tables, stats, features) to train too",
    )
    p.add_argument("--demo-only", action="store_true", help="skip the synthetic ablation")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=None, help="working folder (default: temporary)")
    p.add_argument("--json", type=Path, default=None, help="result file")
    args = p.parse_args()
    names = list(variants())
    if args.list:
        for i, name in enumerate(names):
            print(i, name, known(variants()[name]))
        return
    chosen = names if args.variants is None else [names[int(i)] for i in args.variants]
    seeds = list(range(args.seeds))
    work = args.out or Path(tempfile.mkdtemp(prefix="signpose-ablation-"))
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = args.json or ROOT / "benchmarks" / "results" / f"ablation-{stamp}.json"
    # Saved after every variant: the commit each save records is the checkout's at that moment,
    # so the one measured is recorded here, once.
    figures: dict[str, Any] = {"seeds": seeds, "complete": False, "started": {
        "commit": git("rev-parse", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
    }}  # fmt: skip
    started = time.perf_counter()

    def done() -> None:
        figures["seconds"] = round(time.perf_counter() - started, 1)
        save(target, "ablation", figures)

    if not args.demo_only:
        sizes = Sizes(args.classes, args.signers, args.reps, args.val_signers, args.test_signers,
                      args.missing_hand, seed=args.data_seed)  # fmt: skip
        figures["dataset"] = write_dataset(work / "synthetic", sizes)
        print(json.dumps(figures["dataset"]), flush=True)
        base = {"model_type": "transformer", "seq_len": args.seq_len, "epochs": args.epochs,
                "batch_size": args.batch_size, "tflite": False,
                "model": {"transformer": {"dim": args.dim, "depth": 1, "heads": 2}}}  # fmt: skip
        figures["train_base"] = base
        figures["ablation"] = {}
        ablate(work / "synthetic", work / "runs", base, chosen, seeds, args.threads,
               figures["ablation"], done)  # fmt: skip
    if args.demo is not None:
        demo_base = demo_train_section()
        figures["demo"] = {"results": str(args.demo), "train_base": demo_base, "variants": {}}
        ablate(args.demo, work / "demo_runs", demo_base, [FULL, OLD], seeds, args.threads,
               figures["demo"]["variants"], done)  # fmt: skip
    figures["complete"] = True
    done()
    print(f"wrote {target}")


if __name__ == "__main__":
    sys.exit(main())
