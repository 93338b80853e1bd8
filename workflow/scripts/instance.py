"""The per-instance jobs, run by `shell:` rules as `python instance.py <job> <log> <args...>`.

Not `script:`: Snakemake reads and checks a `script:` rule's source once per job while it
plans, about a quarter of a WLASL2000 dry-run (benchmarks/README.md), and the job itself would
import Snakemake to unpickle its arguments. Dict arguments (options, trim) arrive as the
Python literals that Snakemake's `{params.x:q}` writes.
"""

import ast
import sys

from signpose.jobs import clip_job, features_job, pose_job, setup_logging


def pose(source: str, clip: str, pose_path: str, trim: str, clip_opts: str, pose_opts: str):
    """Cut the clip, then its poses: a new clip always means new poses, so one job does both."""
    clip_job(source, clip, ast.literal_eval(trim), ast.literal_eval(clip_opts))
    pose_job(clip, pose_path, ast.literal_eval(pose_opts))


def features(pose_path: str, npy: str, qc: str, video_id: str, options: str):
    features_job(pose_path, npy, qc, video_id, ast.literal_eval(options))


JOBS = {"pose": pose, "features": features}

if __name__ == "__main__":
    job, log_path, *args = sys.argv[1:]
    setup_logging(log_path)
    JOBS[job](*args)
