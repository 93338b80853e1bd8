"""Every published per-instance file opens in its community reader, lost instances included."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ROOT
from signpose import layout, tombstone
from signpose.sites import source_id
from signpose.tombstone import Tombstone
from signpose.video import ffmpeg_exe

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
DEMO_VIDEO = ROOT / "resources" / "demo" / "videos" / "demo00001.mp4"
LEGACY = b'{"signpose_tombstone": 1, "stage": "download", "reason": "http_404", "detail": "x"}\n'


def opens_in_opencv(path: Path) -> int:
    """Frames OpenCV decodes; fails when it cannot open the file at all."""
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"{path}: OpenCV cannot open it"
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    return frames


def opens_in_ffmpeg(path: Path) -> None:
    """ffmpeg reads the container and its video stream (a stream copy of every packet)."""
    args = [ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy"]
    proc = subprocess.run([*args, "-f", "null", "-"], capture_output=True, text=True)
    assert proc.returncode == 0, f"{path}: {proc.stderr}"


def opens_in_pose_format(path: Path) -> int:
    from pose_format import Pose

    return len(Pose.read(path.read_bytes()).body.data)


def opens_in_numpy(path: Path) -> int:
    assert np.load(path, mmap_mode="r").shape[1] == layout.N_FEATURES
    array = np.load(path)
    assert array.shape[1] == layout.N_FEATURES and array.dtype == np.float32
    return len(array)


READERS = {".mp4": opens_in_opencv, ".pose": opens_in_pose_format, ".npy": opens_in_numpy}


@pytest.mark.parametrize("suffix", [".mp4", ".npy", ".pose"])
def test_a_tombstone_is_an_empty_file_of_its_format_that_says_why(tmp_path, suffix):
    path = tmp_path / f"x{suffix}"
    tomb = Tombstone("clip", "no_person", "nobody in 12 frames, ünïcödé")
    tombstone.write(path, tomb)
    assert READERS[suffix](path) == 0
    if suffix == ".mp4":
        opens_in_ffmpeg(path)
    assert tombstone.read(path) == tomb


def test_real_files_are_not_tombstones(tmp_path):
    assert tombstone.read(DEMO_VIDEO) is None
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    assert tombstone.read(empty) is None


def test_old_tombstones_are_recognised_and_upgraded_in_place(tmp_path):
    old = tmp_path / "sources" / "a.mp4"
    old.parent.mkdir()
    old.write_bytes(LEGACY)
    os.utime(old, (1_000_000, 1_000_000))
    assert tombstone.read(old) == Tombstone("download", "http_404", "x")
    real = tmp_path / "sources" / "b.mp4"
    shutil.copyfile(DEMO_VIDEO, real)
    assert tombstone.upgrade_all([tmp_path / "sources", tmp_path / "none"]) == [old]
    assert tombstone.read(old) == Tombstone("download", "http_404", "x")
    assert opens_in_opencv(old) == 0 and old.stat().st_mtime == 1_000_000  # nothing reruns
    assert real.read_bytes() == DEMO_VIDEO.read_bytes()


# ---------------------------------------------------------------- a whole run


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    configs = [str(ROOT / "config" / "config.yaml"), str(workdir / "overlay.yaml")]
    command = [SNAKEMAKE, *args, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
               "--configfile", *configs]  # fmt: skip
    proc = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def instance(video_id: str, url: str, **fields) -> dict:
    return {"bbox": None, "fps": 25, "frame_start": 1, "frame_end": -1, "split": "train",
            "url": url, "video_id": video_id, **fields}  # fmt: skip


TARGETS = ["results/tables/instances.csv", "results/lexicon/all/index.csv"]


@pytest.fixture(scope="module")
def lost(tmp_path_factory) -> Path:
    """A run with a good video, a dead link, an undecodable video, a clip with nobody in it, a
    trim past the end of its source, and a source tombstone of the old form."""
    work = tmp_path_factory.mktemp("lost")
    (work / "media").mkdir()
    shutil.copyfile(DEMO_VIDEO, work / "media" / "good.mp4")
    (work / "media" / "text.mp4").write_text("<html>This video is no longer available</html>\n")
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "color=c=gray:s=128x128:d=1:r=10", "-pix_fmt", "yuv420p",
                    str(work / "media" / "nobody.mp4")], check=True)  # fmt: skip
    instances = [
        instance("good", "media/good.mp4"),
        instance("gone", "media/missing.mp4"),
        instance("text", "media/text.mp4"),
        instance("nobody", "media/nobody.mp4"),
        instance("late", "media/good.mp4", frame_start=5000, frame_end=5100),
        instance("oldtomb", "https://example.org/old.mp4"),
    ]
    records = [{"gloss": f"g{i}", "instances": [r]} for i, r in enumerate(instances)]
    (work / "meta.json").write_text(json.dumps(records))
    overlay = {"dataset": {"name": "lost", "metadata": "meta.json"}, "results_dir": "results"}
    (work / "overlay.yaml").write_text(json.dumps(overlay))
    old = work / "results" / "sources" / f"{source_id('https://example.org/old.mp4')}.mp4"
    old.parent.mkdir(parents=True)
    old.write_bytes(LEGACY)
    snakemake(work, *TARGETS, "--cores", "2")
    return work / "results"


@pytest.mark.slow
def test_every_published_file_opens_in_its_reader(lost):
    import pandas as pd

    opened = {}
    for folder in ("sources", "clips", "poses", "poses_clean", "features"):
        for path in sorted((lost / folder).iterdir()):
            if path.name.startswith(".") or path.suffix not in READERS:
                continue
            if tombstone.is_legacy(path):  # the seeded old-form source, left as it was
                continue
            opened[f"{folder}/{path.name}"] = READERS[path.suffix](path)
            if path.suffix == ".mp4":
                opens_in_ffmpeg(path)
    for vid in ("good", "gone", "text", "nobody", "late", "oldtomb"):
        for folder, suffix in (("clips", "mp4"), ("poses", "pose"), ("poses_clean", "pose"),
                               ("features", "npy")):  # fmt: skip
            assert f"{folder}/{vid}.{suffix}" in opened
    assert opened["clips/good.mp4"] > 0 and opened["poses/good.pose"] > 0
    table = pd.read_csv(lost / "tables" / "instances.csv", dtype=str, keep_default_na=False)
    reasons = dict(zip(table["video_id"], table["reason"], strict=True))
    assert reasons["gone"] == "local_missing" and reasons["nobody"] == "no_person"
    assert reasons["late"] == "trim_out_of_range" and reasons["oldtomb"] == "http_404"
    assert reasons["text"] not in ("", "no QC record")
    assert opened["clips/nobody.mp4"] == 10  # the clip is real; nobody is in it
    for vid in ("gone", "text", "nobody", "late", "oldtomb"):
        paths = [f"poses/{vid}.pose", f"poses_clean/{vid}.pose", f"features/{vid}.npy"]
        for path in paths + ([f"clips/{vid}.mp4"] if vid != "nobody" else []):
            assert tombstone.read(lost / path).reason == reasons[vid]
            assert opened[path] == 0


@pytest.mark.slow
def test_a_run_with_lost_instances_stays_clean_and_retry_dead_still_works(lost):
    work = lost.parent
    assert "Nothing to be done" in snakemake(work, *TARGETS, "-n").stdout
    snakemake(work, "upgrade_tombstones", "--cores", "1")
    assert not any(tombstone.is_legacy(p) for p in (lost / "sources").iterdir())
    assert "Nothing to be done" in snakemake(work, *TARGETS, "-n").stdout  # times kept
    overlay = json.loads((work / "overlay.yaml").read_text())
    overlay["download"] = {"retry_reasons": ["local_missing"]}
    (work / "overlay.yaml").write_text(json.dumps(overlay))
    snakemake(work, "retry_dead", "--cores", "1")
    assert "download" in snakemake(work, *TARGETS, "-n").stdout
