"""Rule `pose`: cut the instance's clip from its source, then MediaPipe Holistic over it.

A new clip always means new poses, so one job does both. A lost instance (dead source,
undecodable video, nobody in the clip) still gets both targets, as tombstones: valid, empty
files of their formats that say why (signpose.tombstone).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from signpose import tombstone
from signpose.jobs import peak_rss_mb
from signpose.tombstone import Tombstone

log = logging.getLogger("signpose")


def command(threads: str, source: str, clip: str, pose: str, trim: str, options: str) -> None:
    """The rule's named arguments: `trim` and `options` ({"clip": ..., "pose": ...}) are JSON."""
    opts = json.loads(options)
    clip_job(source, clip, json.loads(trim), opts["clip"], int(threads))
    pose_job(clip, pose, opts["pose"])


def clip_job(source: str, target: str, trim: dict, options: dict, threads: int = 1) -> None:
    from signpose.clips import ClipOptions, make_clip

    start = time.perf_counter()
    result = make_clip(
        Path(source), Path(target), trim["start_s"], trim["end_s"], trim["bbox"],
        ClipOptions(**options), threads,
    )  # fmt: skip
    if isinstance(result, Tombstone):
        tombstone.write(target, result)
        log.info("tombstone: %s", result)
    else:
        log.info("clip: %s from source %s", result.info, result.source)
    log.info("seconds: %.3f", time.perf_counter() - start)


def pose_job(clip: str, target: str, options: dict) -> None:
    from signpose.holistic import HolisticOptions, empty_pose_bytes, estimate
    from signpose.posefile import write_pose

    start = time.perf_counter()
    opts = HolisticOptions(**options)
    result = estimate(clip, opts)
    if isinstance(result, Tombstone):
        tombstone.write(target, result, empty_pose_bytes(opts))
        log.info("tombstone: %s", result)
    else:
        write_pose(result, target)
        log.info("pose: %d frames at %.3f fps", result.body.data.shape[0], result.body.fps)
    log.info("seconds: %.3f peak_rss_mb: %.0f", time.perf_counter() - start, peak_rss_mb())
