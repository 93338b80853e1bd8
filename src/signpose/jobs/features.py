"""Rule `features`: from the raw `.pose`, the features, the QC record and the clean pose.

The clean pose (signpose.cleanpose) is written here, not in a job of its own, because this job
already reads the raw pose: a second per-instance job would read it again and add 21,000 jobs
to a WLASL2000 plan.
"""

from __future__ import annotations

import io
import json
import logging
import os

import numpy as np

from signpose import tombstone
from signpose.files import write_bytes_atomic, write_text_atomic
from signpose.tombstone import Tombstone

log = logging.getLogger("signpose")


def command(pose: str, features: str, qc: str, clean: str, video_id: str, options: str) -> None:
    """The rule's named arguments; `options` is the `features` section as JSON."""
    features_job(pose, features, qc, clean, video_id, json.loads(options))


def features_job(pose_path: str, target: str, qc_path: str, clean_path: str, video_id: str,
                 options: dict) -> None:  # fmt: skip
    """Write the features, the clean pose and the QC record of one instance.

    `options` is the validated `features` section of the config, every key filled (the workflow
    validates it; other callers use `signpose.config.with_defaults(options, "features")`).
    """
    from signpose.cleanpose import CleanOptions, clean
    from signpose.features import FeatureOptions, extract
    from signpose.posefile import read_pose, write_pose

    clean_opts = CleanOptions(**options["clean"])
    dead = tombstone.read(pose_path)
    if dead is not None:
        tombstone.write(target, dead)
        tombstone.write(clean_path, dead, empty_clean_pose(raw_header(pose_path), clean_opts))
        record = {"status": "dead", "stage": dead.stage, "reason": dead.reason,
                  "detail": dead.detail}  # fmt: skip
    else:
        pose = read_pose(pose_path)
        feats, qc = extract(pose, FeatureOptions.from_config(options))
        # np.save into a file reports a full disk as "N requested and M written"; a plain
        # write of the bytes raises ENOSPC ("No space left on device")
        npy = io.BytesIO()
        np.save(npy, feats)
        write_bytes_atomic(target, npy.getvalue())
        record = {**qc, "stage": "features", "reason": ",".join(qc["failed"])}
        cleaned = clean(pose, clean_opts)
        if isinstance(cleaned, Tombstone):
            tombstone.write(clean_path, cleaned, empty_clean_pose(pose.header, clean_opts))
            record |= {"clean_frames": 0, "clean_fps": 0.0, "clean_reason": cleaned.reason}
        else:
            write_pose(cleaned, clean_path)
            record |= {
                "clean_frames": len(cleaned.body.data),
                "clean_fps": float(cleaned.body.fps),
                "clean_reason": "",
            }
    record = {"video_id": video_id, **record}
    write_text_atomic(qc_path, json.dumps(record, sort_keys=True) + "\n")
    log.info("qc: %s", record)


def raw_header(path: str | os.PathLike):
    """The header of a raw pose tombstone; an old-form one (a bare JSON document) has none, and
    the default Holistic header stands in for it."""
    from signpose.compat.pose_format import read_pose_bytes

    with open(path, "rb") as f:
        data = f.read() if not tombstone.is_legacy(path) else tombstone.empty_holistic_pose()
    return read_pose_bytes(data).header


def empty_clean_pose(header, opts) -> bytes:
    """A clean pose without frames: `header` reduced as the options say."""
    from pose_format import Pose
    from pose_format.utils.generic import reduce_holistic

    from signpose.posefile import empty_body, pose_bytes

    pose = Pose(header, empty_body(header))
    return pose_bytes(reduce_holistic(pose) if opts.reduce else pose)
