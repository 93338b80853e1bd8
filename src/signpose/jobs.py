"""One function per per-instance job: read inputs, call the stage, write target or tombstone.

The workflow scripts call exactly one of these, so a job's behaviour is testable without
Snakemake. Every job logs one line that says what happened (kept for the report's tables).
"""

from __future__ import annotations

import ast
import io
import json
import logging
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from signpose import tombstone
from signpose.files import write_bytes_atomic, write_text_atomic
from signpose.tombstone import Tombstone

log = logging.getLogger("signpose")


def setup_logging(log_path: str | os.PathLike) -> None:
    """Send this job's logging, stdout and stderr to its log file.

    The descriptors themselves are redirected, so MediaPipe's and TensorFlow's C++ messages
    and a crash's traceback land in the job's log instead of the console of a 20,000-job run.
    """
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
        os.dup2(fd, stream.fileno())
    os.close(fd)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        force=True,
    )


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


def peak_rss_mb() -> float:
    """This process's own peak resident memory.

    Not ru_maxrss: after fork and exec it still holds the parent's peak (Snakemake's, pytest's).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            hwm = next(line for line in f if line.startswith("VmHWM:"))
        return int(hwm.split()[1]) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pose_job(clip: str, target: str, options: dict) -> None:
    from signpose.holistic import HolisticOptions, estimate, write_pose

    start = time.perf_counter()
    result = estimate(clip, HolisticOptions(**options))
    if isinstance(result, Tombstone):
        tombstone.write(target, result)
        log.info("tombstone: %s", result)
    else:
        write_pose(result, target)
        log.info("pose: %d frames at %.3f fps", result.body.data.shape[0], result.body.fps)
    log.info("seconds: %.3f peak_rss_mb: %.0f", time.perf_counter() - start, peak_rss_mb())


def features_job(pose_path: str, target: str, qc_path: str, video_id: str, options: dict) -> None:
    from signpose.features import FeatureOptions, extract, read_pose

    dead = tombstone.read(pose_path)
    if dead is not None:
        tombstone.write(target, dead)
        record = {"status": "dead", "stage": dead.stage, "reason": dead.reason,
                  "detail": dead.detail}  # fmt: skip
    else:
        feats, qc = extract(read_pose(pose_path), FeatureOptions.from_config(options))
        # np.save into a file reports a full disk as "N requested and M written"; a plain
        # write of the bytes raises ENOSPC ("No space left on device")
        npy = io.BytesIO()
        np.save(npy, feats)
        write_bytes_atomic(target, npy.getvalue())
        record = {**qc, "stage": "features", "reason": ",".join(qc["failed"])}
    record = {"video_id": video_id, **record}
    write_text_atomic(qc_path, json.dumps(record, sort_keys=True) + "\n")
    log.info("qc: %s", record)


def _pose_command(threads: str, source: str, clip: str, pose_path: str, trim: str,
                  clip_opts: str, pose_opts: str) -> None:  # fmt: skip
    """Cut the clip, then its poses: a new clip always means new poses, so one job does both."""
    clip_job(source, clip, ast.literal_eval(trim), ast.literal_eval(clip_opts), int(threads))
    pose_job(clip, pose_path, ast.literal_eval(pose_opts))


def _features_command(pose_path: str, npy: str, qc: str, video_id: str, options: str) -> None:
    features_job(pose_path, npy, qc, video_id, ast.literal_eval(options))


COMMANDS = {"pose": _pose_command, "features": _features_command}


def run_command(argv: list[str]) -> None:
    """Run `<job> <log> <args...>` as the per-instance rules pass it.

    Dict arguments (options, trim) arrive as the Python literals that Snakemake's
    `{params.x:q}` writes.
    """
    job, log_path, *args = argv
    setup_logging(log_path)
    COMMANDS[job](*args)


def preload() -> None:
    """Import everything the per-instance jobs import, without starting a thread or a graph.

    The fork server (signpose.forkserver) calls this once; the workers it forks start warm.
    """
    from signpose import clips, features, holistic  # noqa: F401 - imported for the children

    holistic.import_mediapipe()  # first: pose-format's holistic module imports mediapipe whole
    import pose_format.utils.holistic  # noqa: F401
