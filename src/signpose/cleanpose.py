"""Clean poses for the lexicon: trimmed, reduced, normalised, one frame rate, anonymised.

Each step is the community's own function, so a clean pose is what sign.mt's tools expect:
1. trim the neutral frames at both ends: spoken-to-signed's `active_signing_span` (a wrist
   above its elbow, five frames of margin; the whole clip when no hand is ever raised);
2. `pose_format.utils.generic.reduce_holistic`: the components and points sign.mt concatenates;
3. normalise by the shoulders (width 1, centred), as spoken-to-signed does before concatenating;
4. resample to the lexicon's one frame rate with pose-format's interpolation;
5. remove the signer's appearance with pose-anonymization. Its `remove_appearance` takes frame 0
   as the signer's appearance; when a component is missing there (a face not found in the
   first frame), the anonymised pose loses it in every frame. Here the reference is the mean
   over the frames where every component is present (over every frame, point by point, when no
   frame has them all), and the rest is pose-anonymization's own `change_appearace`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from signpose.tombstone import Tombstone

if TYPE_CHECKING:
    from pose_format import Pose

STAGE = "clean"
SHOULDERS = ("LEFT_SHOULDER", "RIGHT_SHOULDER")


@dataclass(frozen=True)
class CleanOptions:
    trim_neutral: bool
    reduce: bool
    normalise: bool
    fps: float | None
    anonymise: bool


def clean(pose: Pose, opts: CleanOptions) -> Pose | Tombstone:
    """The clean pose, or a tombstone saying why nothing is left of it."""
    from pose_format import Pose

    if len(pose.body.data) == 0:
        return Tombstone(STAGE, "no_frames", "the raw pose has no frame")
    if opts.trim_neutral:
        from spoken_to_signed.gloss_to_pose.concatenate import active_signing_span

        first, last = active_signing_span(pose)
        if last <= first:
            return Tombstone(STAGE, "nothing_left", f"signing span [{first}, {last}) is empty")
        pose = Pose(pose.header, pose.body[first:last])
    if opts.reduce:
        from pose_format.utils.generic import reduce_holistic

        pose = reduce_holistic(pose)
    if (opts.normalise or opts.anonymise) and not has_shoulders(pose):
        return Tombstone(STAGE, "no_body", "no frame shows both shoulders to normalise by")
    if opts.normalise:
        from pose_format.utils.generic import pose_normalization_info

        pose = pose.normalize(pose_normalization_info(pose.header))
    if opts.fps is not None and pose.body.fps != opts.fps:
        pose = resample(pose, opts.fps)
    if opts.anonymise:
        pose = anonymise(pose)
    return pose


def has_shoulders(pose: Pose) -> bool:
    conf = pose.body.confidence[:, 0]
    idx = [pose.header.get_point_index("POSE_LANDMARKS", p) for p in SHOULDERS]
    return bool((conf[:, idx] > 0).all(axis=1).any())


def resample(pose: Pose, fps: float) -> Pose:
    """`pose` at `fps`; a single frame is one frame at any rate."""
    if len(pose.body.data) < 2:
        pose.body.fps = fps
        return pose
    return pose.interpolate(fps, kind="linear")


def component_presence(pose: Pose) -> np.ndarray:
    """(frames, components) bool: which components have a point in each frame (person 0).

    A point is there when its confidence is positive and its coordinates are not masked (an
    operation on a masked reference masks the data and leaves the confidence as it was).
    """
    there = np.asarray(pose.body.confidence)[:, 0] > 0
    there &= ~np.ma.getmaskarray(pose.body.data)[:, 0].any(axis=-1)
    out, start = [], 0
    for c in pose.header.components:
        out.append(there[:, start : start + len(c.points)].any(axis=1))
        start += len(c.points)
    return np.stack(out, axis=1)


def anonymise(pose: Pose) -> Pose:
    """pose-anonymization's `remove_appearance`, with a reference every component is in."""
    from pose_anonymization.appearance import (
        change_appearace,
        get_mean_appearance,
        get_pose_appearance,
    )

    names = [c.name for c in pose.header.components]
    points = {c.name: c.points for c in pose.header.components}
    mean_pose = get_mean_appearance().get_components(names, points)
    _, mean_appearance = get_pose_appearance(mean_pose)
    complete = component_presence(pose).all(axis=1)
    pose, _ = get_pose_appearance(pose)  # normalised as remove_appearance does
    frames = pose.body.data[complete] if complete.any() else pose.body.data
    appearance = frames.mean(axis=0)  # masked: per point, over the frames that have it
    return change_appearace(pose, appearance - mean_appearance)
