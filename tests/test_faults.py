"""Whole Snakemake runs that are killed, or started twice, on a four-instance dataset.

The run goes through download, clip, pose and features (real MediaPipe); the checks are on the
files: nothing half-written is taken as done, and what was finished is not redone.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, SHARED, needs, wait_for
from signpose import video
from signpose.posefile import read_pose

VIDEO = SHARED / "media" / "pose_test_video.mp4"
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
IDS = ["v1", "v2", "v3", "v4"]

pytestmark = [needs(VIDEO), pytest.mark.slow]


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
    targets = [str(results(tmp_path) / "features" / f"{vid}.npy") for vid in IDS]
    return [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path / "work"),
            "--configfile", str(overlay), "--cores", "2", *targets]  # fmt: skip


def results(tmp_path: Path) -> Path:
    return tmp_path / "results"


def start(args: list[str]) -> subprocess.Popen:
    """The run in a process group of its own, so the kill takes every job with it, as a lost
    node would; its output goes to `run.log` beside the working directory."""
    log = open(Path(args[args.index("-d") + 1]).parent / "run.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(args, start_new_session=True, stdout=log, stderr=log)
    log.close()
    return proc


def run_log(tmp_path: Path) -> str:
    return (tmp_path / "run.log").read_text(errors="replace")[-3000:]


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


def assert_whole(path: Path) -> None:
    """`path` is a complete file of its kind: it decodes, parses or loads."""
    if path.suffix == ".mp4":
        assert video.probe(path).frames > 0
    elif path.suffix == ".pose":
        read_pose(path)
    elif path.suffix == ".npy":
        assert np.load(path).shape[1] == 540
    elif path.suffix == ".json":
        json.loads(path.read_text())


def test_a_run_killed_halfway_resumes_with_the_documented_commands(tmp_path, run_args):
    root = results(tmp_path)
    proc = start(run_args)
    wait_for(lambda: any((root / "poses").glob("*.pose")), proc)
    assert proc.poll() is None, run_log(tmp_path)
    kill_9(proc)
    before = finished_targets(root)
    assert not all((root / "features" / f"{vid}.npy").exists() for vid in IDS)
    for path in before:
        assert_whole(path)  # nothing half-written under a target's name
    redo = marked_incomplete(tmp_path / "work")
    kept = {p: t for p, t in before.items() if p not in redo}
    assert any(p.suffix == ".mp4" for p in kept)  # sources and clips finished before the kill
    # the kill left Snakemake's lock behind: the restart needs --unlock first (README)
    locked = subprocess.run(run_args + ["--rerun-incomplete"], capture_output=True, text=True)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    subprocess.run([*run_args, "--unlock"], check=True, capture_output=True)
    rerun = subprocess.run([*run_args, "--rerun-incomplete"], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    for vid in IDS:
        for path in (f"clips/{vid}.mp4", f"poses/{vid}.pose", f"features/{vid}.npy",
                     f"qc/{vid}.json"):  # fmt: skip
            assert_whole(root / path)
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
