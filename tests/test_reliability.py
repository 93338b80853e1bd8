"""Bad media, bad config, a full disk and killed jobs: what is on disk afterwards.

Metadata cases are in test_metadata.py, .pose files in test_features.py, download faults in
test_download.py, whole Snakemake runs killed or run twice in test_faults.py; the table of
every case is docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import copy
import html
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate
from test_clips import BITS, CELL, draw_index, indices, read_index, write_video

from conftest import ROOT, VIDEO, wait_for
from signpose import metadata, tombstone, video
from signpose.clips import ClipOptions, make_clip
from signpose.config import with_defaults
from signpose.download import DownloadOptions, fetch_source
from signpose.jobs.features import features_job
from signpose.jobs.pose import clip_job, pose_job
from signpose.paths import ResultsRootError, check_results_root
from signpose.posefile import read_pose

FEATURES = with_defaults({}, "features")
WHOLE = {"start_s": 0.0, "end_s": None, "bbox": None}


def ffmpeg(*args: str, stdin: bytes | None = None) -> None:
    subprocess.run([video.ffmpeg_exe(), "-v", "error", "-y", *args], input=stdin, check=True)


def synthetic_video(path: Path, size: str, rate: int, seconds: float, *codec: str) -> Path:
    source = f"testsrc2=size={size}:rate={rate}:duration={seconds}"
    ffmpeg("-f", "lavfi", "-i", source, *(codec or ("-c:v", "libx264")), "-pix_fmt", "yuv420p",
           str(path))  # fmt: skip
    return path


def files_in(folder: Path) -> list[str]:
    """Every file under `folder`, hidden temporaries included."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------------
# media


def zero_byte(path: Path) -> None:
    path.write_bytes(b"")


def text_named_mp4(path: Path) -> None:
    path.write_text("<html><body>This video is no longer available</body></html>\n" * 50)


def noise_named_mp4(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(200_000))


def truncated_moov_at_end(path: Path) -> None:
    data = write_video(path, 25, 90).read_bytes()
    path.write_bytes(data[: len(data) // 2])


def audio_only(path: Path) -> None:
    ffmpeg("-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac", str(path))


@pytest.mark.parametrize(
    "make", [zero_byte, text_named_mp4, noise_named_mp4, truncated_moov_at_end, audio_only]
)
def test_unusable_sources_become_named_tombstones(tmp_path, make):
    source = tmp_path / "source.mp4"
    make(source)
    before = source.read_bytes()
    clip = tmp_path / "clips" / "x.mp4"
    clip_job(str(source), str(clip), WHOLE, {})
    tomb = tombstone.read(clip)
    assert (tomb.stage, tomb.reason) == ("clip", "undecodable_source")
    assert str(source) in tomb.detail and "\n" not in tomb.detail
    assert files_in(tmp_path / "clips") == ["x.mp4"]
    assert source.read_bytes() == before


def test_an_empty_clip_file_is_a_pose_tombstone(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    pose = tmp_path / "poses" / "x.pose"
    pose_job(str(clip), str(pose), {})
    assert tombstone.read(pose).reason == "undecodable_clip"
    assert files_in(tmp_path / "poses") == ["x.pose"]


def test_a_truncated_streamable_mp4_gives_its_decodable_frames(tmp_path):
    # With the index in front (faststart, as web servers deliver), the first half still plays:
    # the clip holds exactly the frames that decode, in order, and QC judges its length.
    whole = write_video(tmp_path / "whole.mp4", 25, 90)
    streamable = tmp_path / "fast.mp4"
    ffmpeg("-i", str(whole), "-c", "copy", "-movflags", "+faststart", str(streamable))
    data = streamable.read_bytes()
    source = tmp_path / "half.mp4"
    source.write_bytes(data[: len(data) // 2])
    result = make_clip(source, tmp_path / "c.mp4", 0.0, None, None, ClipOptions(crop="off"))
    got = indices(tmp_path / "c.mp4")
    assert 0 < len(got) < 90 and got == list(range(len(got)))
    assert result.info.frames == len(got)


def test_a_one_frame_video_goes_through_every_stage(tmp_path):
    source = tmp_path / "one.mp4"
    ffmpeg("-ss", "1", "-i", str(VIDEO), "-frames:v", "1", str(source))
    clip = tmp_path / "clip.mp4"
    assert make_clip(source, clip, 0.0, None, None, ClipOptions()).info.frames == 1
    pose = tmp_path / "x.pose"
    pose_job(str(clip), str(pose), {})
    assert read_pose(pose).body.data.shape[0] == 1
    feats = tmp_path / "x.npy"
    record = features_job(str(pose), str(feats), str(tmp_path / "clean.pose"), "x", FEATURES)
    assert np.load(feats).shape == (1, 540)
    assert record["status"] == "low_quality" and "min_frames" in record["failed"]


def test_a_rotation_flag_is_applied_once(tmp_path):
    # Phones store portrait video as landscape pixels plus a display rotation. The clip must
    # come out upright, and the sizes the crop is computed from must be the displayed ones.
    raw = write_video(tmp_path / "raw.mp4", 25, 30)  # 128x32, frame i spells i
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-display_rotation", "90", "-i", str(raw), "-c", "copy", str(rotated))
    source = video.probe(rotated)
    assert (source.width, source.height) == (32, 128)
    clip = tmp_path / "clip.mp4"
    result = make_clip(rotated, clip, 0.0, None, None, ClipOptions(crop="off"))
    assert (result.info.width, result.info.height) == (32, 128)
    frames = list(video.rgb_frames(clip))
    assert frames[0].shape == (128, 32, 3)
    # rotated 90 degrees counter-clockwise for display: turning back restores the pixels
    assert [read_index(np.rot90(f, -1)) for f in frames] == list(range(30))


def showinfo_times(path: Path) -> list[float]:
    """Presentation times of every frame, as ffmpeg decodes them."""
    args = [video.ffmpeg_exe(), "-hide_banner", "-i", str(path), "-vf", "showinfo", "-f", "null"]
    run = subprocess.run([*args, "-"], capture_output=True, text=True, check=True)
    return [float(t) for t in _field(run.stderr, "pts_time:")]


def _field(text: str, key: str) -> Iterator[str]:
    for line in text.splitlines():
        if key in line:
            yield line.split(key, 1)[1].split()[0]


def vfr_source(path: Path) -> Path:
    """30 frames at 25 fps (0 to 1.16 s), then 30 frames 0.2 s apart (1.2 to 7 s)."""
    times = "if(lt(N,30),N,30+(N-30)*5)"  # in units of the input's time base, 1/25 s
    ffmpeg("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{BITS * CELL}x{2 * CELL}", "-r", "25",
           "-i", "-", "-vf", f"setpts='{times}'", "-fps_mode", "vfr", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", str(path),
           stdin=b"".join(draw_index(i).tobytes() for i in range(60)))  # fmt: skip
    return path


def test_variable_frame_rate_is_trimmed_by_timestamps(tmp_path):
    source = vfr_source(tmp_path / "vfr.mp4")
    clip = tmp_path / "clip.mp4"
    make_clip(source, clip, 1.0, 2.0, None, ClipOptions(crop="off"))
    # frames 25-29 (1.00-1.16 s) and 30-33 (1.2, 1.4, 1.6, 1.8 s): by time, not by count
    assert indices(clip) == list(range(25, 34))
    expected = [0, 0.04, 0.08, 0.12, 0.16, 0.2, 0.4, 0.6, 0.8]
    assert showinfo_times(clip) == pytest.approx(expected, abs=1e-3)


def test_a_range_between_two_frames_is_a_trim_out_of_range_tombstone(tmp_path):
    """Inside the video but holding no frame (1.25-1.35 s falls between the frames at 1.2 and
    1.4 s): ffmpeg writes a clip without frames, which is never kept."""
    source = vfr_source(tmp_path / "vfr.mp4")
    clip = tmp_path / "clips" / "x.mp4"
    clip_job(str(source), str(clip), {"start_s": 1.25, "end_s": 1.35, "bbox": None}, {})
    tomb = tombstone.read(clip)
    assert (tomb.stage, tomb.reason) == ("clip", "trim_out_of_range")
    assert tomb.detail == "no frame between 1.25 s and 1.35 s"
    assert files_in(tmp_path / "clips") == ["x.mp4"]  # the empty encode is gone


@pytest.fixture(scope="module")
def uhd(tmp_path_factory) -> Path:
    """2 s of 3840x2160 at 60 fps: 120 frames of 24.9 MB each once decoded to RGB."""
    folder = tmp_path_factory.mktemp("uhd")
    codec = ("-c:v", "libx264", "-preset", "ultrafast", "-crf", "35")
    return synthetic_video(folder / "uhd.mp4", "3840x2160", 60, 2, *codec)


def peak_rss_mb(code: str) -> dict[str, float]:
    """Run `code` in a fresh interpreter; peak resident memory of it and of its children.

    The job's own peak is what the pose job logs (signpose.jobs.peak_rss_mb). The children's
    figure is an upper bound: ru_maxrss carries over a process's size at fork time, so it may
    include the job's size when it started ffmpeg.
    """
    report = (
        "; import resource, json; from signpose.jobs import peak_rss_mb; "
        "print(json.dumps([peak_rss_mb(), "
        "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]))"
    )
    run = subprocess.run([sys.executable, "-c", code + report], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    job_mb, children_mb = json.loads(run.stdout.strip().splitlines()[-1])
    return {"job": job_mb, "children": children_mb}


@pytest.mark.slow
def test_4k_60fps_is_streamed_in_bounded_memory(tmp_path, uhd):
    all_frames_mb = 120 * 3840 * 2160 * 3 / 2**20  # what holding every frame would take
    clip = tmp_path / "clip.mp4"
    clip_rss = peak_rss_mb(f"from signpose.jobs.pose import clip_job; "
                           f"clip_job({str(uhd)!r}, {str(clip)!r}, {WHOLE!r}, {{}})")  # fmt: skip
    info = video.probe(clip)
    assert (info.width, info.height, info.frames) == (720, 404, 120)  # max_side 720
    pose = tmp_path / "uhd.pose"
    pose_rss = peak_rss_mb(f"from signpose.jobs.pose import pose_job; "
                           f"pose_job({str(uhd)!r}, {str(pose)!r}, {{}})")  # fmt: skip
    # testsrc2 has nobody in it, but every one of the 120 full-size frames went through Holistic
    assert tombstone.read(pose).detail == "nobody detected in any of 120 frames"
    print(f"\npeak RSS MB: clip {clip_rss}, pose {pose_rss}; all frames {all_frames_mb:.0f}")
    assert clip_rss["job"] < 400 and clip_rss["children"] < 1000  # the child is ffmpeg
    assert pose_rss["job"] < 1200 < all_frames_mb / 2


# ---------------------------------------------------------------------------------------------
# config: every schema violation names its key


def with_change(config: dict, dotted: str, value: object) -> dict:
    config = copy.deepcopy(config)
    *parents, key = dotted.split(".")
    node = config
    for name in parents:
        node = node.setdefault(name, {})
    if value is DROP:
        node.pop(key)
    else:
        node[key] = value
    return config


DROP = object()


@pytest.mark.parametrize(
    "key, value, named",
    [
        ("no_such_key", 1, "'no_such_key' was unexpected"),
        ("results_dir", 5, "['results_dir']"),
        ("dataset.metadata", DROP, "'metadata' is a required property"),
        ("dataset.name", "../up", "['dataset']['name']"),
        ("dataset.format", "xml", "['dataset']['format']"),
        ("dataset.subset", 0, "['dataset']['subset']"),
        ("dataset.allow_local_files", "yes", "['dataset']['allow_local_files']"),
        ("download.max_bytes", -1, "['download']['max_bytes']"),
        ("download.timeout_s", 0, "['download']['timeout_s']"),
        ("download.max_redirects", "five", "['download']['max_redirects']"),
        ("download.headers", {"aslpro.com": {"Referer": 1}}, "['download']['headers']"),
        ("download.cookie_file", "typo.txt", "'cookie_file' was unexpected"),
        ("clip.crop", "sideways", "['clip']['crop']"),
        ("clip.max_side", 8, "['clip']['max_side']"),
        ("pose.model_complexity", 3, "['pose']['model_complexity']"),
        ("pose.min_detection_confidence", 1.5, "['pose']['min_detection_confidence']"),
        ("features.ema_alpha", 0, "['features']['ema_alpha']"),
        ("features.qc.min_frames", 0, "['features']['qc']['min_frames']"),
        ("train.model_type", "cnn", "['train']['model_type']"),
        ("resources.train_mem_mb", 10, "['resources']['train_mem_mb']"),
        ("report.skeletons", -1, "['report']['skeletons']"),
    ],
)
def test_every_config_violation_names_its_key(key, value, named):
    # the function the Snakefile calls first, before any rule or metadata is read
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    validate(copy.deepcopy(config), str(ROOT / "config" / "schema.yaml"))
    with pytest.raises(WorkflowError) as err:
        validate(with_change(config, key, value), str(ROOT / "config" / "schema.yaml"))
    assert named in str(err.value)


# ---------------------------------------------------------------------------------------------
# a full disk


@contextlib.contextmanager
def small_tmpfs(folder: Path, size: str) -> Iterator[None]:
    folder.mkdir()
    run = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                         capture_output=True, text=True)  # fmt: skip
    if run.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({run.stderr.strip()}); rlimit_fsize covers it")
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture(scope="module")
def job_inputs(tmp_path_factory) -> dict[str, Path]:
    """A source video and a real .pose: each stage's output is far over 16 kB."""
    folder = tmp_path_factory.mktemp("inputs")
    source = synthetic_video(folder / "source.mp4", "320x240", 25, 2)
    pose = folder / "x.pose"
    pose_job(str(VIDEO), str(pose), {})
    return {"source": source, "pose": pose}


JOBS = {
    # job: (call writing under OUT, what the target must be afterwards)
    "clip": "clip_job(SOURCE, OUT + '/clips/x.mp4', WHOLE, {})",
    "pose": "write_pose(read_pose(POSE), OUT + '/poses/x.pose')",
    "features": (
        "features_shard([('x', POSE, OUT + '/features/x.npy', OUT + '/poses_clean/x.pose')], "
        "OUT + '/qc/shards/0.jsonl', with_defaults({}, 'features'))"
    ),
}


def run_job(job: str, inputs: dict[str, Path], out: Path, fsize: int | None = None):
    code = (
        "from signpose.config import with_defaults\n"
        "from signpose.jobs.features import features_shard\n"
        "from signpose.jobs.pose import clip_job\n"
        "from signpose.posefile import read_pose, write_pose\n"
        f"SOURCE, POSE, OUT = {str(inputs['source'])!r}, {str(inputs['pose'])!r}, {str(out)!r}\n"
        f"WHOLE = {WHOLE!r}\n{JOBS[job]}\n"
    )

    def limit() -> None:  # in the child: writes past `fsize` fail with EFBIG, no signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          preexec_fn=limit if fsize else None)  # fmt: skip


def assert_complete(job: str, out: Path) -> None:
    if job == "clip":
        assert video.probe(out / "clips" / "x.mp4").frames == 50
        assert files_in(out) == ["clips/x.mp4"]
    elif job == "pose":
        assert read_pose(out / "poses" / "x.pose").body.data.shape[0] == 58
        assert files_in(out) == ["poses/x.pose"]
    else:
        assert np.load(out / "features" / "x.npy").shape[1] == 540
        assert json.loads((out / "qc" / "shards" / "0.jsonl").read_text())["video_id"] == "x"
        assert files_in(out) == ["features/x.npy", "poses_clean/x.pose", "qc/shards/0.jsonl"]


@pytest.mark.parametrize("job", list(JOBS))
@pytest.mark.parametrize("mechanism", ["tmpfs", "rlimit_fsize"])
def test_a_full_disk_fails_cleanly_and_the_rerun_completes(tmp_path, job_inputs, job, mechanism):
    out = tmp_path / "results"
    if mechanism == "tmpfs":
        with small_tmpfs(out, "16k"):
            failed = run_job(job, job_inputs, out)
            assert failed.returncode != 0 and "No space left on device" in failed.stderr
            assert files_in(out) == []  # no target, no temporary file
            subprocess.run(["mount", "-o", "remount,size=64m", str(out)], check=True)
            assert run_job(job, job_inputs, out).returncode == 0
            assert_complete(job, out)
    else:
        failed = run_job(job, job_inputs, out, fsize=16 * 1024)
        # Python sees EFBIG; ffmpeg gets the default SIGXFSZ back from subprocess, and dies of it
        problem = "killed by SIGXFSZ" if job == "clip" else "File too large"
        assert failed.returncode != 0 and problem in failed.stderr
        assert files_in(out) == []
        assert run_job(job, job_inputs, out).returncode == 0
        assert_complete(job, out)


# ---------------------------------------------------------------------------------------------
# kill -9 in the middle of a job


def start_job(code: str, log: Path) -> subprocess.Popen:
    """A job as the workflow's scripts run it (its output and C++ messages go to `log`), in a
    process group of its own: SLURM or a lost node ends the job's ffmpeg with it."""
    setup = f"from signpose.jobs import setup_logging; setup_logging({str(log)!r})\n"
    return subprocess.Popen([sys.executable, "-c", setup + code], start_new_session=True)


def kill_9(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# The job's frames counted as MediaPipe asks for the next one (the previous one is then done).
COUNT_FRAMES = """
import logging, signpose.video
decode = signpose.video.rgb_frames
def counted(*args, **kwargs):
    for n, frame in enumerate(decode(*args, **kwargs)):
        logging.getLogger("signpose").info("frames done: %d", n)
        yield frame
signpose.video.rgb_frames = counted
"""


def frames_done(log: Path) -> int:
    return max(map(int, _field(log.read_text(errors="replace"), "frames done:")), default=0)


def test_a_pose_job_killed_halfway_leaves_nothing_and_reruns(tmp_path):
    target = tmp_path / "poses" / "x.pose"
    code = "from signpose.jobs.pose import pose_job; "
    code += f"pose_job({str(VIDEO)!r}, {str(target)!r}, {{}})"
    log = tmp_path / "pose.log"
    proc = start_job(COUNT_FRAMES + code, log)
    wait_for(lambda: log.exists() and frames_done(log) >= 20, proc, 120)
    kill_9(proc)
    done = frames_done(log)
    assert 20 <= done < 58 and " fps" not in log.read_text(errors="replace")  # not finished
    assert not target.exists() and files_in(tmp_path / "poses") == []
    rerun = start_job(code, tmp_path / "rerun.log")
    assert rerun.wait() == 0
    assert read_pose(target).body.data.shape[0] == 58


@pytest.mark.slow
def test_a_clip_job_killed_mid_encode_leaves_no_target_and_reruns(tmp_path, uhd):
    target = tmp_path / "clips" / "x.mp4"
    args = f"{str(uhd)!r}, {str(target)!r}, {WHOLE}, {{}}"
    code = f"from signpose.jobs.pose import clip_job; clip_job({args})"
    proc = start_job(code, tmp_path / "clip.log")

    def encoding() -> bool:
        return target.parent.exists() and any(
            p.stat().st_size > 0 for p in target.parent.glob(".x.mp4.*")
        )

    wait_for(encoding, proc, 120)
    kill_9(proc)
    assert not target.exists()
    # a killed writer's hidden temporary may remain; it is never a target
    assert all(name.startswith(".x.mp4.") for name in os.listdir(target.parent))
    assert start_job(code, tmp_path / "clip.log").wait() == 0
    assert video.probe(target).frames == 120


# ---------------------------------------------------------------------------------------------
# small and odd datasets, and where results may go: whole Snakemake runs as a user starts them

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
DEMO_VIDEOS = ROOT / "resources" / "demo" / "videos"


def snakemake_run(workdir: Path, overlay: dict, *args: str, timeout: float = 900):
    """The README's command (`snakemake --cores all`) with `overlay` as a config file."""
    workdir.mkdir(exist_ok=True)
    (workdir / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--configfile",
           str(workdir / "overlay.yaml"), *(args or ("--cores", "all"))]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def demo_csv(tmp_path: Path, column: str, rows: list[tuple[str, str]]) -> dict:
    """A CSV dataset of demo videos: (gloss, `column` value) per video, in the demo's order;
    returns its `dataset` config section."""
    data = tmp_path / "data"
    data.mkdir()
    lines = [f"video_file,gloss,{column}"]
    for i, (gloss, value) in enumerate(rows, start=1):
        name = f"demo{i:05d}.mp4"
        (data / name).write_bytes((DEMO_VIDEOS / name).read_bytes())
        lines.append(f"{name},{gloss},{value}")
    (data / "meta.csv").write_text("\n".join(lines) + "\n")
    return {"name": "mini", "format": "csv", "metadata": str(data / "meta.csv"),
            "allow_local_files": True, "csv": {f"{column}_column": column}}  # fmt: skip


@pytest.mark.slow
def test_a_two_video_all_train_dataset_finishes_with_every_page(tmp_path):
    dataset = demo_csv(tmp_path, "split", [("hello", "train"), ("world", "train")])
    results = tmp_path / "results"
    overlay = {"dataset": dataset, "results_dir": str(results), "train": {"epochs": 2}}
    run = snakemake_run(tmp_path / "work", overlay)
    assert run.returncode == 0, run.stderr[-3000:]
    for page in ("dataset.html", "metrics.html", "qc.png", "skeletons.png"):
        assert (results / "report" / page).stat().st_size > 500
    metrics = json.loads((results / "model" / "metrics.json").read_text())
    assert {s: metrics["splits"][s]["n_items"] for s in ("val", "test")} == {"val": 0, "test": 0}
    page = (results / "report" / "metrics.html").read_text(encoding="utf-8")
    assert "val is empty (no instance in this split); test is empty" in page
    assert "agreement with the Keras model was not checked" in page
    report = tmp_path / "report.html"
    built = snakemake_run(tmp_path / "work", overlay, "--report", str(report))
    assert built.returncode == 0, built.stderr[-3000:]
    assert "metrics.html" in report.read_text(encoding="utf-8", errors="replace")


@pytest.mark.slow
def test_a_split_short_of_its_fractions_is_said_in_the_log_and_the_report(tmp_path):
    # three signers, one video each: 0.8/0.1/0.1 cannot be met
    dataset = demo_csv(tmp_path, "signer", [(f"sign {i}", f"signer{i}") for i in range(3)])
    results = tmp_path / "results"
    overlay = {"dataset": dataset, "results_dir": str(results)}
    page = results / "report" / "dataset.html"
    run = snakemake_run(tmp_path / "work", overlay, "--cores", "all", str(page))
    assert run.returncode == 0, run.stderr[-3000:]
    note = metadata.load(with_defaults({"name": "three", **dataset}, section="dataset")).split_note
    assert note.startswith("signer-aware split: the requested fractions train 0.80/val 0.10/")
    assert note in run.stderr  # the planning log
    assert html.escape(note) in page.read_text(encoding="utf-8")


def symlink_loop(path: Path) -> None:
    path.symlink_to(path)


def fifo(path: Path) -> None:
    os.mkfifo(path)


def directory(path: Path) -> None:
    path.mkdir()


def device(path: Path) -> None:
    path.symlink_to("/dev/zero")


@pytest.mark.parametrize(
    "make, kind",
    [(symlink_loop, "a symlink loop"), (fifo, "a FIFO (named pipe)"),
     (directory, "a directory"), (device, "a device")],
)  # fmt: skip
def test_a_local_video_that_is_not_a_file_is_named(tmp_path, make, kind):
    local = tmp_path / "videos"
    local.mkdir()
    make(local / "a.mp4")
    target = tmp_path / "sources" / "a.mp4"
    opts = DownloadOptions.from_config({}, allow_local_files=True, local_root=local)
    outcome = fetch_source("a.mp4", target, opts, logging.getLogger("test"))
    assert (outcome.status, outcome.reason) == ("dead", "local_not_a_file")
    assert tombstone.read(target).detail == f"{local / 'a.mp4'}: {kind}, not a video file"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.mp4"]  # nothing else left


def one_line_naming(output: str, *words: str) -> bool:
    return any(all(w in line for w in words) for line in output.splitlines())


def test_a_fifo_as_metadata_stops_snakemake_within_seconds(tmp_path):
    fifo = tmp_path / "meta.json"
    os.mkfifo(fifo)  # nobody writes to it: reading it would wait forever
    overlay = {"dataset": {"name": "fifo", "metadata": str(fifo)}}
    started = time.monotonic()
    run = snakemake_run(tmp_path / "work", overlay, "-n", timeout=60)
    assert time.monotonic() - started < 10
    assert run.returncode != 0 and "rule " not in run.stdout + run.stderr  # no job planned
    assert one_line_naming(run.stdout + run.stderr, str(fifo), "a FIFO (named pipe)")


@pytest.mark.parametrize("where", ["/", "~", "src/signpose", "workflow/x", "config"])
def test_results_roots_that_must_not_be_written_are_refused(where):
    root = os.path.expanduser(where)
    root = root if os.path.isabs(root) else str(ROOT / root)
    with pytest.raises(ResultsRootError) as err:
        check_results_root(root, ROOT)
    assert "\n" not in str(err.value) and str(err.value).startswith(f"results_dir {root!r} is ")


def test_a_results_root_elsewhere_is_the_users(tmp_path):
    for root in (tmp_path / "results", ROOT / "results" / "demo", Path.home() / "results"):
        assert check_results_root(root, ROOT) == Path(os.path.realpath(root))


def test_results_dir_root_is_refused_before_any_job(tmp_path):
    demo = {"name": "demo", "metadata": str(ROOT / "resources/demo/WLASL_demo.json"),
            "allow_local_files": True}  # fmt: skip
    run = snakemake_run(tmp_path / "work", {"dataset": demo, "results_dir": "/"}, "-n")
    output = run.stdout + run.stderr
    assert run.returncode != 0 and "rule " not in output  # no job planned, let alone run
    assert one_line_naming(output, "results_dir '/' is the file system root")
    assert not (tmp_path / "work" / "sources").exists() and not Path("/sources").exists()
