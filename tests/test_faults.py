"""Whole Snakemake runs that are killed, or started twice, on a four-instance dataset.

The run goes through download, clip, pose and features (real MediaPipe); the checks are on the
files: nothing half-written is taken as done, and what was finished is not redone.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, VIDEO, wait_for
from signpose import shards, video
from signpose.config import with_defaults
from signpose.posefile import read_pose

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
IDS = ["v1", "v2", "v3", "v4"]

pytestmark = pytest.mark.slow


@pytest.fixture
def run_args(tmp_path) -> list[str]:
    """A Snakemake command for the features of four short instances cut from two sources."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (data / name).write_bytes(VIDEO.read_bytes())
    records = [
        {"video_id": vid, "url": src, "split": "train", "fps": 25, "frame_start": 1,
         "frame_end": 15, "bbox": None}
        for vid, src in zip(IDS, ["a.mp4", "a.mp4", "b.mp4", "b.mp4"], strict=True)
    ]  # fmt: skip
    (data / "meta.json").write_text(json.dumps([{"gloss": "hello", "instances": records}]))
    overlay = tmp_path / "overlay.json"
    dataset = {"name": "mini", "metadata": str(data / "meta.json"), "allow_local_files": True}
    overlay.write_text(json.dumps({"dataset": dataset, "results_dir": str(results(tmp_path))}))
    count = with_defaults({}, "features")["shards"]  # the features jobs of the four instances
    qc = results(tmp_path) / "qc" / "shards"
    targets = sorted({str(qc / f"{shards.shard_of(vid, count)}.jsonl") for vid in IDS})
    return [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path / "work"),
            "--configfile", str(overlay), "--cores", "2", *targets]  # fmt: skip


def results(tmp_path: Path) -> Path:
    return tmp_path / "results"


def start(args: list[str]) -> subprocess.Popen:
    """The run in a process group of its own, so the kill takes every job with it, as a lost
    node would; its output goes to `run.log` beside the working directory."""
    log = open(Path(args[args.index("-d") + 1]).parent / "run.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(args, start_new_session=True, stdout=log, stderr=log,
                            preexec_fn=default_sigint)  # fmt: skip
    log.close()
    return proc


def default_sigint() -> None:
    """SIGINT as a terminal leaves it: a test run in the background inherits it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_log(tmp_path: Path, tail: int | None = 3000) -> str:
    """The run's output: its end for an assertion message, or whole (`tail=None`)."""
    text = (tmp_path / "run.log").read_text(errors="replace")
    return text if tail is None else text[-tail:]


def kill_9(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def finished_targets(root: Path) -> dict[Path, int]:
    """Every visible file under the results (hidden ones are temporaries), with its mtime."""
    return {
        p: p.stat().st_mtime_ns
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".") and "logs" not in p.parts
    }


def marked_incomplete(workdir: Path) -> set[Path]:
    """Outputs of the jobs Snakemake had started but not seen finish (its own markers)."""
    markers = workdir / ".snakemake" / "incomplete"
    if not markers.exists():
        return set()
    return {Path(base64.b64decode(m.name).decode()) for m in markers.iterdir()}


def instance_files_of_shards(root: Path, outputs: set[Path]) -> set[Path]:
    """The per-instance files a features job writes besides its QC file, for each shard whose
    QC file is among `outputs`."""
    count = with_defaults({}, "features")["shards"]
    names = {p.stem for p in outputs if p.parent.name == "shards"}
    vids = [vid for vid in IDS if shards.shard_of(vid, count) in names]
    return {root / d / f"{vid}{ext}" for vid in vids
            for d, ext in (("features", ".npy"), ("poses_clean", ".pose"))}  # fmt: skip


def assert_whole(path: Path) -> None:
    """`path` is a complete file of its kind: it decodes, parses or loads."""
    if path.suffix == ".mp4":
        assert video.probe(path).frames > 0
    elif path.suffix == ".pose" and {"poses_clean", "lexicon"} & set(path.parts):
        from pose_format import Pose

        Pose.read(path.read_bytes())  # reduced to what sign.mt concatenates: not Holistic's 576
    elif path.suffix == ".pose":
        read_pose(path)
    elif path.suffix == ".npy":
        assert np.load(path).shape[1] == 540
    elif path.suffix == ".json":
        json.loads(path.read_text())
    elif path.suffix == ".jsonl":
        assert [json.loads(line) for line in path.read_text().splitlines()]


# How a run ends early, as signals to the run's whole process group, each with the time it is
# given before the next: a terminal's Ctrl-C, a lost SSH session (the terminal hangs up), a SLURM
# pre-emption (SIGTERM, then SIGKILL after KillWait, 30 s by default) and a node lost (kill -9).
INTERRUPTIONS = {
    "ctrl_c": [(signal.SIGINT, 60)],
    "lost_ssh": [(signal.SIGHUP, 60)],
    "slurm_preemption": [(signal.SIGTERM, 30), (signal.SIGKILL, 60)],
    "kill_9": [(signal.SIGKILL, 60)],
}
RESUME_HINT = "resume with the same command"


def interrupt(proc: subprocess.Popen, steps: list[tuple[signal.Signals, float]]) -> None:
    """Send each signal of `steps` while the run lives, waiting its grace time for the end."""
    for sig, grace_s in steps:
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
    assert proc.poll() is not None, "the run outlived every signal"
    wait_for(lambda: not group_alive(proc.pid), None, timeout_s=60)  # its jobs end with it


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("how", list(INTERRUPTIONS))
def test_an_interrupted_run_resumes_with_the_documented_command(tmp_path, run_args, how):
    root = results(tmp_path)
    proc = start(run_args)
    wait_for(lambda: any((root / "poses").glob("*.pose")), proc)
    assert proc.poll() is None, run_log(tmp_path)
    interrupt(proc, INTERRUPTIONS[how])
    before = finished_targets(root)
    assert not all((root / "features" / f"{vid}.npy").exists() for vid in IDS)
    for path in before:
        assert_whole(path)  # nothing half-written under a target's name
    redo = marked_incomplete(tmp_path / "work")
    redo |= instance_files_of_shards(root, redo)  # an unfinished shard job writes them again
    kept = {p: t for p, t in before.items() if p not in redo}
    assert any(p.suffix == ".mp4" for p in kept)  # sources and clips finished before the end
    # README: the same command resumes (the workflow profile sets rerun-incomplete)
    resumed = subprocess.run(run_args, capture_output=True, text=True)
    if how == "kill_9":  # nothing ran to remove the lock: the refusal says what to type
        message = " ".join((resumed.stdout + resumed.stderr).split())
        assert resumed.returncode != 0 and "cannot be locked" in message and "--unlock" in message
        assert "rule " not in message  # it started no job
        subprocess.run([*run_args, "--unlock"], check=True, capture_output=True)
        resumed = subprocess.run(run_args, capture_output=True, text=True)
    else:  # the run ended itself, released its lock and said how to resume (jobs killed with
        # it may print their tracebacks after the hint, so the whole log is searched)
        assert RESUME_HINT in " ".join(run_log(tmp_path, tail=None).split()), run_log(tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for vid in IDS:
        for path in (f"clips/{vid}.mp4", f"poses/{vid}.pose", f"features/{vid}.npy",
                     f"poses_clean/{vid}.pose"):  # fmt: skip
            assert_whole(root / path)
    for path in (root / "qc" / "shards").iterdir():
        assert_whole(path)
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # finished files were not redone


def test_a_second_run_on_the_same_directory_is_refused(tmp_path, run_args):
    root = results(tmp_path)
    first = start(run_args)
    try:
        wait_for(lambda: any((tmp_path / "work" / ".snakemake" / "locks").glob("*")), first)
        second = subprocess.run(run_args, capture_output=True, text=True)
        # what a user tries next; it skips the check for the first run's unfinished files
        forced = subprocess.run([*run_args, "--rerun-incomplete"], capture_output=True, text=True)
        assert first.poll() is None  # the checks ran while the first run held the lock
    finally:
        kill_9(first)
    # Snakemake checks for unfinished files (the first run's jobs in flight) before the lock,
    # so which refusal comes first depends on the moment; past both, the lock refuses
    for run in (second, forced):
        assert run.returncode != 0
        assert "rule " not in run.stdout + run.stderr  # it started no job
    message = " ".join((second.stdout + second.stderr).split())
    assert "Directory cannot be locked" in message or "IncompleteFilesException" in message
    message = " ".join((forced.stdout + forced.stderr).split())
    assert "Directory cannot be locked" in message and "--unlock" in message
    for path in finished_targets(root):
        assert_whole(path)
