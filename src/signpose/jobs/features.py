"""Rule `features`: for every instance of one shard (signpose.shards), from its raw `.pose`,
the features, the clean pose and the QC record; the shard's records go in one JSON-lines file.

The clean pose (signpose.cleanpose) is written here, not in a job of its own, because this job
already reads the raw pose. One job per shard instead of one per instance keeps the plan small
(21,000 fewer jobs at WLASL2000) and the `tables` job's input list short (one QC file per shard,
not one per instance: Snakemake's setup of a job is quadratic in its input count).
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Sequence

import numpy as np

from signpose import tombstone
from signpose.files import write_bytes_atomic, write_text_atomic
from signpose.tombstone import Tombstone

log = logging.getLogger("signpose")


def command(video_ids: str, files: str, qc: str, options: str) -> None:
    """The rule's named arguments, each a JSON document: `video_ids` the shard's ids, `files`
    the path patterns ("{video_id}" in them) of the `pose` read and the `features` and
    `clean_pose` written, `options` the `features` section."""
    patterns = json.loads(files)
    kinds = ("pose", "features", "clean_pose")
    paths = [(vid, *(patterns[k].format(video_id=vid) for k in kinds))
             for vid in json.loads(video_ids)]  # fmt: skip
    features_shard(paths, qc, json.loads(options))


def features_shard(instances: Sequence[tuple[str, str, str, str]], qc_path: str,
                   options: dict) -> list[dict]:  # fmt: skip
    """`features_job` for each (video_id, pose, features, clean) of a shard; the QC records, one
    JSON document a line, in `qc_path`, in the order given; returns them.

    A raw pose that cannot be read loses only its own instance: its record is dead at the pose
    stage with the reason `unreadable_pose` and the reader's one-line message (naming the file),
    its features and clean pose are tombstones saying so, and the job goes on.
    """
    from signpose.posefile import PoseFileError

    records = []
    for video_id, pose_path, target, clean_path in instances:
        try:
            record = features_job(pose_path, target, clean_path, video_id, options)
        except PoseFileError as e:
            log.error("%s: %s", video_id, e)
            dead = Tombstone(stage="pose", reason="unreadable_pose", detail=str(e))
            lost = bury(dead, raw_header(None), target, clean_path, options)
            record = {"video_id": video_id, **lost}
        records.append(record)
    write_text_atomic(qc_path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    return records


def features_job(pose_path: str, target: str, clean_path: str, video_id: str,
                 options: dict) -> dict:  # fmt: skip
    """Write the features and the clean pose of one instance; return its QC record.

    `options` is the validated `features` section of the config, every key filled (the workflow
    validates it; other callers use `signpose.config.with_defaults(options, "features")`).
    A raw pose that is not a complete Holistic pose raises `PoseFileError`, writing nothing.
    """
    from signpose.cleanpose import CleanOptions, clean
    from signpose.features import FeatureOptions, extract
    from signpose.posefile import read_pose, write_pose

    dead = tombstone.read(pose_path)
    if dead is not None:
        record = bury(dead, raw_header(pose_path), target, clean_path, options)
    else:
        clean_opts = CleanOptions(**options["clean"])
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
    log.info("qc: %s", record)
    return record


def bury(dead: Tombstone, header, target: str, clean_path: str, options: dict) -> dict:
    """The features and clean pose of a lost instance as tombstones; its QC record."""
    from signpose.cleanpose import CleanOptions

    tombstone.write(target, dead)
    tombstone.write(clean_path, dead, empty_clean_pose(header, CleanOptions(**options["clean"])))
    return {"status": "dead", "stage": dead.stage, "reason": dead.reason, "detail": dead.detail}


def raw_header(path: str | os.PathLike | None):
    """The header of a raw pose tombstone; an old-form one (a bare JSON document) has none, nor
    has an unreadable pose (`path` None), and the default Holistic header stands in for it."""
    from signpose.compat.pose_format import read_pose_bytes

    if path is None or tombstone.is_legacy(path):
        return read_pose_bytes(tombstone.empty_holistic_pose()).header
    with open(path, "rb") as f:
        return read_pose_bytes(f.read()).header


def empty_clean_pose(header, opts) -> bytes:
    """A clean pose without frames: `header` reduced as the options say."""
    from pose_format import Pose
    from pose_format.utils.generic import reduce_holistic

    from signpose.posefile import empty_body, pose_bytes

    pose = Pose(header, empty_body(header))
    return pose_bytes(reduce_holistic(pose) if opts.reduce else pose)
