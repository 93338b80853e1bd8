"""The jobs of the many-job rules, one module per rule (`jobs.download` per source, `jobs.pose`
per instance, `jobs.features` per shard of instances), and their runner.

Such a rule runs `instance_job <job> --log LOG --name value ...` (workflow/rules);
`run_command` receives that argv in a fork-server worker (signpose.forkserver) or in the
client's own process, and calls the job's `command` with the named values as keyword
arguments; options travel as JSON documents. Every job is testable without Snakemake and logs
one line that says what happened (kept for the report's tables).
"""

from __future__ import annotations

import importlib
import logging
import os
import resource
import sys
from pathlib import Path

log = logging.getLogger("signpose")

JOBS = ("download", "pose", "features")
# Jobs a warm fork-server worker runs; a download waits on the network, not on its imports.
WARM_JOBS = ("pose", "features")


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


def named_arguments(args: list[str]) -> dict[str, str]:
    """`--name value ...` as {"name": "value"}; anything else is a clear error."""
    if len(args) % 2 or not all(a.startswith("--") for a in args[::2]):
        raise ValueError(f"per-instance job arguments must be --name value pairs, got {args}")
    return {name[2:]: value for name, value in zip(args[::2], args[1::2], strict=True)}


def run_command(argv: list[str]) -> None:
    """Run `<job> --log LOG --name value ...` as the per-instance rules pass it."""
    job, *args = argv
    if job not in JOBS:
        raise ValueError(f"unknown per-instance job {job!r}; known: {', '.join(JOBS)}")
    named = named_arguments(args)
    setup_logging(named.pop("log"))
    # which process ran it: the client's own, or a fork-server worker (whose parent is the server)
    log.info("%s job in process %d (parent %d)", job, os.getpid(), os.getppid())
    importlib.import_module(f"signpose.jobs.{job}").command(**named)


def preload() -> None:
    """Import everything the per-instance jobs import, without starting a thread or a graph.

    The fork server (signpose.forkserver) calls this once; the workers it forks start warm.
    """
    from signpose import cleanpose, clips, features, holistic  # noqa: F401 - for the children
    from signpose.compat import mediapipe
    from signpose.jobs import features as features_jobs  # noqa: F401
    from signpose.jobs import pose  # noqa: F401

    mediapipe.import_mediapipe()  # first: pose-format's holistic module imports mediapipe whole
    import pose_anonymization.appearance

    pose_anonymization.appearance.get_mean_appearance()  # cached: read once, not per worker
    import pose_format.utils.generic  # noqa: F401
    import pose_format.utils.holistic  # noqa: F401
    import spoken_to_signed.gloss_to_pose.concatenate  # noqa: F401 - 2 s of scipy.signal
