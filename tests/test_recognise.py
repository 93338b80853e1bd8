"""`signpose recognise`: a trained demo model applied to videos, compared with the evaluate step.

The slow tests train a small model on the embedded demo with the real workflow (Snakemake, real
MediaPipe) and recognise the demo's test instances from their source videos with the same trim
and box, so the recogniser must reproduce the evaluate step's predictions.csv.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pose_format import Pose

from conftest import ROOT, SHARED, needs
from signpose import metadata, recognise
from signpose.training import data, lite_runtime, names

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
REAL_VIDEO = SHARED / "media" / "pose_test_video.mp4"
# A small, quick model: the test is about reproducing predictions, not about accuracy.
TRAIN = {"model_type": "lstm", "epochs": 12, "patience": 12, "batch_size": 8,
         "model": {"lstm": {"frame_dim": 32, "units": 32, "layers": 1}}}  # fmt: skip


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "signpose.cli", "recognise", *args],
                          cwd=ROOT, capture_output=True, text=True, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory) -> Path:
    """The demo trained by the workflow (a small LSTM); returns the results root."""
    results = tmp_path_factory.mktemp("recognise_demo")
    overlay = results / "overlay.yaml"
    overlay.write_text(json.dumps({"results_dir": str(results), "train": TRAIN}))
    target = str(results / "model" / names.METRICS_FILE)
    proc = subprocess.run(
        [SNAKEMAKE, target, "--nolock", "--cores", "2", "--configfile", "config/config.yaml",
         str(overlay)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return results


def demo_instances(split: str) -> list[metadata.Instance]:
    cfg = {"name": "demo", "format": "wlasl", "metadata": "resources/demo/WLASL_demo.json",
           "subset": None, "allow_local_files": True}  # fmt: skip
    dataset = metadata.load({k: v if k != "metadata" else str(ROOT / v) for k, v in cfg.items()})
    return [dataset.instances[v] for v in dataset.by_split(split)]


def evaluated(results: Path, split: str = "test") -> dict[str, list[tuple[str, float]]]:
    """predictions.csv of the evaluate step: video_id -> ranked (gloss, probability)."""
    out: dict[str, list[tuple[str, float]]] = {}
    with open(results / "model" / names.PREDICTIONS_FILE, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["split"] != split:
                continue
            out.setdefault(row["video_id"], []).append(
                (row["prediction"], float(row["probability"]))
            )
    return out


@pytest.mark.slow
def test_recognising_the_test_clips_reproduces_the_evaluate_step(demo_model):
    folder = recognise.open_model_folder(demo_model / "model")
    model = recognise.Recogniser(folder)
    expected = evaluated(demo_model)
    checked = 0
    for inst in demo_instances("test"):
        if inst.video_id not in expected:  # not kept by QC, or a dead link: not evaluated
            continue
        source = demo_model / "sources" / f"{inst.source_id}.mp4"
        spec = inst.clip_spec()
        marks = recognise.video_landmarks(source, folder, spec["start_s"], spec["end_s"],
                                          spec["bbox"])  # fmt: skip
        got = recognise.ranked(model.probabilities(marks), folder.labels, 5)
        want = expected[inst.video_id]
        assert got[0]["gloss"] == want[0][0], inst.video_id
        np.testing.assert_allclose([p["probability"] for p in got], [p for _, p in want],
                                   atol=1e-5, err_msg=inst.video_id)  # fmt: skip
        assert [p["gloss"] for p in got] == [g for g, _ in want]
        checked += 1
    assert checked >= 6


@pytest.mark.slow
def test_cli_prints_json_only_and_one_bad_video_does_not_stop_the_others(demo_model, tmp_path):
    inst = next(i for i in demo_instances("test") if i.video_id in evaluated(demo_model))
    source = demo_model / "sources" / f"{inst.source_id}.mp4"
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video\n")
    missing = tmp_path / "missing.mp4"
    spec = inst.clip_spec()
    trim = ["--start", str(spec["start_s"])]
    trim += ["--end", str(spec["end_s"])] if spec["end_s"] is not None else []
    trim += ["--bbox", *map(str, spec["bbox"])]
    videos = [str(not_video), str(source), str(missing)]
    proc = cli("--model", str(demo_model / "model"), "--json", "--top", "3", *trim, *videos)
    assert proc.returncode == 1
    docs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [d["video"] for d in docs] == [str(source)]
    predictions = docs[0]["predictions"]
    labels = json.loads((demo_model / "model" / names.LABELS_FILE).read_text())
    assert len(predictions) == 3 and {p["gloss"] for p in predictions} <= set(labels)
    assert predictions[0]["gloss"] == evaluated(demo_model)[inst.video_id][0][0]
    assert sum(p["probability"] for p in predictions) <= 1 + 1e-6
    errors = proc.stderr.splitlines()
    assert len(errors) == 2, proc.stderr
    assert str(not_video) in errors[0] and "no decoder can open it" in errors[0]
    assert str(missing) in errors[1] and "no such readable file" in errors[1]


@pytest.mark.slow
@needs(REAL_VIDEO)
def test_a_real_signing_video_outside_the_demo_gets_five_demo_glosses(demo_model):
    """A webcam recording (pose-format's test video, 58 frames, about 2 s), timed."""
    proc = cli("--model", str(demo_model / "model"), "--json", "--verbose", str(REAL_VIDEO))
    assert proc.returncode == 0, proc.stderr[-2000:]
    [doc] = [json.loads(line) for line in proc.stdout.splitlines()]
    labels = json.loads((demo_model / "model" / names.LABELS_FILE).read_text())
    glosses = [p["gloss"] for p in doc["predictions"]]
    assert len(glosses) == 5 and set(glosses) <= set(labels)
    assert sum(p["probability"] for p in doc["predictions"]) <= 1 + 1e-6
    timing = [line for line in proc.stderr.splitlines()
              if line.startswith(f"signpose recognise: {REAL_VIDEO}: ")]  # fmt: skip
    assert len(timing) == 1 and timing[0].endswith(" s")


@pytest.mark.slow
def test_landmarks_tflite_agrees_with_keras_on_the_test_clips(demo_model):
    """Raw landmarks of the workflow's .pose files in, the evaluate step's Keras numbers out."""
    path = demo_model / "model" / names.LANDMARKS_TFLITE_FILE
    assert path.stat().st_size <= 40 * 2**20
    lite = lite_runtime.LandmarksInterpreter(path, threads=1)
    labels = json.loads((demo_model / "model" / names.LABELS_FILE).read_text())
    seconds = []
    for video_id, want in evaluated(demo_model).items():
        pose = Pose.read((demo_model / "poses" / f"{video_id}.pose").read_bytes())
        probs = lite.predict(pose)
        top = data.top_k(probs)
        assert labels[top[0]] == want[0][0], video_id
        np.testing.assert_allclose(probs[top], [p for _, p in want], atol=1e-4, err_msg=video_id)
        for _ in range(3):
            started = time.perf_counter()
            lite.predict(pose)
            seconds.append(time.perf_counter() - started)
    assert len(seconds) >= 18
    assert np.median(seconds) < 0.1, f"median {np.median(seconds):.3f} s per clip on one thread"


@pytest.mark.slow
def test_cli_tflite_reproduces_the_evaluate_step_without_tensorflow(demo_model):
    inst = next(i for i in demo_instances("test") if i.video_id in evaluated(demo_model))
    source = demo_model / "sources" / f"{inst.source_id}.mp4"
    spec = inst.clip_spec()
    args = ["recognise", "--model", str(demo_model / "model"), "--tflite", "--json"]
    args += ["--start", str(spec["start_s"]), "--bbox", *map(str, spec["bbox"]), str(source)]
    args += ["--end", str(spec["end_s"])] if spec["end_s"] is not None else []
    code = (
        "import sys; from signpose import cli; rc = cli.main(sys.argv[1:]); "
        "print('tensorflow' in sys.modules, file=sys.stderr); sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.splitlines() == ["False"]
    [doc] = [json.loads(line) for line in proc.stdout.splitlines()]
    want = evaluated(demo_model)[inst.video_id]
    assert doc["predictions"][0]["gloss"] == want[0][0]
    np.testing.assert_allclose([p["probability"] for p in doc["predictions"]],
                               [p for _, p in want], atol=1e-4)  # fmt: skip


def test_a_model_folder_with_files_missing_is_one_line_and_exit_2(tmp_path):
    (tmp_path / names.MODEL_FILE).write_bytes(b"")
    proc = cli("--model", str(tmp_path), "video.mp4")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"signpose recognise: {tmp_path}: not a complete signpose model folder: labels.json, "
        "train_config.json, pipeline.json, global_stats.npz missing (train it with this version "
        "of signpose)"
    ]


def test_a_model_folder_from_another_version_is_refused_by_name(tmp_path):
    for name in (names.MODEL_FILE, names.STATS_FILE):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / names.LABELS_FILE).write_text('["a", "b"]')
    (tmp_path / names.CONFIG_FILE).write_text("{}")
    (tmp_path / names.CHAIN_FILE).write_text(json.dumps({"format": "signpose-model",
                                                          "version": 0}))  # fmt: skip
    proc = cli("--model", str(tmp_path), "video.mp4")
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert str(tmp_path) in line and "another version of signpose" in line and "retrain" in line


def test_bad_arguments_exit_2(tmp_path):
    proc = cli("--model", str(tmp_path), "--start", "2", "--end", "1", "video.mp4")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["signpose recognise: --end 1.0 is not after --start 2.0"]
