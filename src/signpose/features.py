"""From a Holistic .pose file to clean per-frame features and quality metrics.

Follows the GHSL-style extraction the project started from (column layout: signpose.layout):
pose 33 x (x, y, z, visibility), both hands 21 x (x, y, z), every 5th face landmark x (x, y, z);
torso-centred (mean of shoulders and hips) and scaled (median of shoulder span, hip span and
torso height); exponential moving average with weight `alpha` on the new frame.

pose-format stores x, y in pixels and z as MediaPipe's raw value (relative to the image width),
so z is multiplied by the width to share the x/y unit before normalising. A part that was not
detected in a frame is NaN, so a model or a statistic can tell "absent" from "at the centre".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from signpose import layout

# MediaPipe Pose landmark indices.
L_SHOULDER, R_SHOULDER, L_HIP, R_HIP = 11, 12, 23, 24
UPPER_BODY = slice(0, 25)  # face, arms and hips: legs are mostly out of frame in sign videos


@dataclass(frozen=True)
class QCThresholds:
    min_frames: int = 8
    min_body_ratio: float = 0.5
    min_hand_ratio: float = 0.2
    min_visibility: float = 0.3


@dataclass
class Parts:
    """Per-frame points (frames, n, 3) in pixels and detection flags of each component."""

    body: np.ndarray
    visibility: np.ndarray  # (frames, 33)
    left: np.ndarray
    right: np.ndarray
    face: np.ndarray
    found: dict[str, np.ndarray] = field(default_factory=dict)  # component -> (frames,) bool


def parts_from_pose(data: np.ndarray, conf: np.ndarray, header_components, width: int) -> Parts:
    """Split a Holistic pose body (frames, people, points, 3) into named parts (person 0)."""
    offsets, start = {}, 0
    for comp in header_components:
        offsets[comp.name] = slice(start, start + len(comp.points))
        start += len(comp.points)
    points = np.asarray(data[:, 0], dtype=np.float32).copy()
    points[..., 2] *= width
    conf = np.asarray(conf[:, 0], dtype=np.float32)

    def part(name: str) -> tuple[np.ndarray, np.ndarray]:
        return points[:, offsets[name]], conf[:, offsets[name]]

    body, vis = part("POSE_LANDMARKS")
    face, face_c = part("FACE_LANDMARKS")
    left, left_c = part("LEFT_HAND_LANDMARKS")
    right, right_c = part("RIGHT_HAND_LANDMARKS")
    found = {
        "body": vis.any(axis=1),
        "face": face_c.any(axis=1),
        "left_hand": left_c.any(axis=1),
        "right_hand": right_c.any(axis=1),
    }
    return Parts(body, vis, left, right, face[:, list(layout.FACE_INDICES)], found)


def nonempty_span(parts: Parts) -> slice:
    """Frames from the first to the last one with a body or a hand (interior frames stay)."""
    active = parts.found["body"] | parts.found["left_hand"] | parts.found["right_hand"]
    idx = np.flatnonzero(active)
    return slice(0, 0) if idx.size == 0 else slice(int(idx[0]), int(idx[-1]) + 1)


def trim(parts: Parts, span: slice) -> Parts:
    return Parts(
        parts.body[span], parts.visibility[span], parts.left[span], parts.right[span],
        parts.face[span], {k: v[span] for k, v in parts.found.items()},
    )  # fmt: skip


def torso_frame(parts: Parts) -> tuple[np.ndarray, float]:
    """Per-frame centre (frames, 3) and one scale for the clip.

    Frames without a body borrow the centre of the nearest frame with one, so hands seen
    while the body detector blinks are still placed relative to the torso.
    """
    b = parts.body
    torso = b[:, [L_SHOULDER, R_SHOULDER, L_HIP, R_HIP]]
    centre = torso.mean(axis=1)
    has = parts.found["body"]
    if not has.any():
        return np.full_like(centre, np.nan), float("nan")
    idx = np.flatnonzero(has)
    frames = np.arange(len(has))
    pos = np.searchsorted(idx, frames)
    after = idx[np.clip(pos, 0, len(idx) - 1)]
    before = idx[np.clip(pos - 1, 0, len(idx) - 1)]
    centre = centre[np.where(frames - before < after - frames, before, after)]
    xy = b[has][..., :2]
    shoulder = np.linalg.norm(xy[:, L_SHOULDER] - xy[:, R_SHOULDER], axis=1)
    hip = np.linalg.norm(xy[:, L_HIP] - xy[:, R_HIP], axis=1)
    mid_sh = (xy[:, L_SHOULDER] + xy[:, R_SHOULDER]) / 2
    mid_hip = (xy[:, L_HIP] + xy[:, R_HIP]) / 2
    height = np.linalg.norm(mid_sh - mid_hip, axis=1)
    scale = float(np.median(np.concatenate([shoulder, hip, height])))
    return centre, scale if scale > 0 else float("nan")


def feature_matrix(parts: Parts) -> np.ndarray:
    """(frames, 540) float32: normalised coordinates, visibility, NaN for undetected parts."""
    centre, scale = torso_frame(parts)
    n = parts.body.shape[0]

    def norm(points: np.ndarray, found: np.ndarray) -> np.ndarray:
        out = (points - centre[:, None, :]) / scale
        out[~found] = np.nan
        return out.reshape(n, -1)

    body = norm(parts.body, parts.found["body"])
    vis = np.where(parts.found["body"][:, None], parts.visibility, np.nan)
    pose = np.concatenate([body.reshape(n, -1, 3), vis[..., None]], axis=2).reshape(n, -1)
    cols = [
        pose,
        norm(parts.left, parts.found["left_hand"]),
        norm(parts.right, parts.found["right_hand"]),
        norm(parts.face, parts.found["face"]),
    ]
    out = np.concatenate(cols, axis=1).astype(np.float32)
    assert out.shape[1] == layout.N_FEATURES
    return out


def ema(x: np.ndarray, alpha: float) -> np.ndarray:
    """Exponential moving average over time; restarts after a gap (NaN) instead of bridging it."""
    out = x.copy()
    for t in range(1, len(x)):
        prev = out[t - 1]
        blend = alpha * x[t] + (1 - alpha) * prev
        out[t] = np.where(np.isnan(prev), x[t], blend)
    return out


def motion_energy(features: np.ndarray, fps: float) -> np.ndarray:
    """Per-frame mean displacement of the detected points (torso units per second)."""
    xyz = np.delete(features, np.s_[3 : layout.POSE.stop : 4], axis=1)  # drop visibility
    pts = xyz.reshape(len(xyz), -1, 3)
    step = np.linalg.norm(np.diff(pts, axis=0), axis=2)
    seen = ~np.isnan(step)
    count = seen.sum(axis=1)
    total = np.where(seen, step, 0).sum(axis=1)
    return total[count > 0] / count[count > 0] * fps


def quality(parts: Parts, features: np.ndarray, fps: float, frames_raw: int) -> dict:
    """The QC metrics of one clip (after trimming), as plain floats for JSON."""
    n = len(features)
    ratio = {k: float(v.mean()) if n else 0.0 for k, v in parts.found.items()}
    hands = parts.found["left_hand"] | parts.found["right_hand"]
    vis = parts.visibility[parts.found["body"]][:, UPPER_BODY]
    motion = motion_energy(features, fps) if n > 1 else np.zeros(0)

    def stat(fn) -> float:
        return float(fn(motion)) if motion.size else 0.0

    return {
        "frames": n,
        "frames_raw": frames_raw,
        "fps": fps,
        "body_ratio": ratio["body"],
        "left_hand_ratio": ratio["left_hand"],
        "right_hand_ratio": ratio["right_hand"],
        "hand_ratio": float(hands.mean()) if n else 0.0,
        "face_ratio": ratio["face"],
        "mean_visibility": float(vis.mean()) if vis.size else 0.0,
        "motion_mean": stat(np.mean),
        "motion_p50": stat(np.median),
        "motion_p95": stat(lambda m: np.percentile(m, 95)),
        "motion_max": stat(np.max),
    }


def failed_checks(metrics: dict, t: QCThresholds) -> list[str]:
    """Names of the thresholds this clip fails (empty: it is kept)."""
    checks = {
        "min_frames": metrics["frames"] >= t.min_frames,
        "min_body_ratio": metrics["body_ratio"] >= t.min_body_ratio,
        "min_hand_ratio": metrics["hand_ratio"] >= t.min_hand_ratio,
        "min_visibility": metrics["mean_visibility"] >= t.min_visibility,
    }
    return [name for name, ok in checks.items() if not ok]


@dataclass(frozen=True)
class FeatureOptions:
    ema_alpha: float = 0.2
    trim_empty_ends: bool = True
    qc: QCThresholds = QCThresholds()

    @classmethod
    def from_config(cls, cfg: dict) -> FeatureOptions:
        # `clean` is the clean pose's (signpose.cleanpose); `shards` the workflow's job layout
        rest = {k: v for k, v in cfg.items() if k not in ("qc", "clean", "shards")}
        return cls(**rest, qc=QCThresholds(**cfg.get("qc", {})))


def extract(pose, opts: FeatureOptions) -> tuple[np.ndarray, dict]:
    """Features (frames, 540) and the QC record (metrics, status, failed thresholds)."""
    header = pose.header
    parts = parts_from_pose(
        pose.body.data.filled(0), pose.body.confidence, header.components,
        header.dimensions.width,
    )  # fmt: skip
    frames_raw = parts.body.shape[0]
    if opts.trim_empty_ends:
        parts = trim(parts, nonempty_span(parts))
    feats = ema(feature_matrix(parts), opts.ema_alpha)
    fps = float(pose.body.fps)
    metrics = quality(parts, feats, fps, frames_raw)
    failed = failed_checks(metrics, opts.qc)
    status = "low_quality" if failed else "kept"
    return feats, {**metrics, "status": status, "failed": failed}
