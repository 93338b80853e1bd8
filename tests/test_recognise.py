"""`signpose recognise`: a trained demo model applied to videos, compared with the evaluate step.

The slow tests read the embedded demo as the real workflow made it (Snakemake, real MediaPipe,
the session's `demo` fixture) and recognise the demo's test instances from their source videos
with the same trim and box, so the recogniser must reproduce the evaluate step's
predictions.csv.
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
import yaml

from conftest import ROOT, SAMPLE
from signpose import metadata, recognise, tables
from signpose.config import with_defaults
from signpose.posefile import read_pose
from signpose.training import data, lite_runtime

# Real signing that is not in the demo (the demo's "sign sample" is pose-format's test video).
REAL_VIDEO = SAMPLE


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "signpose.cli", "recognise", *args],
                          cwd=ROOT, capture_output=True, text=True, check=False)  # fmt: skip


def demo_instances(split: str) -> list[metadata.Instance]:
    """The demo's instances of `split`, as the workflow read them (config/config.yaml)."""
    cfg = with_defaults(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    dataset = metadata.load(cfg["dataset"] | {"metadata": str(ROOT / cfg["dataset"]["metadata"])})
    return [dataset.instances[v] for v in dataset.by_split(split)]


def evaluated(results: Path, split: str = "test") -> dict[str, list[tuple[str, float]]]:
    """predictions.csv of the evaluate step: video_id -> ranked (gloss, probability)."""
    out: dict[str, list[tuple[str, float]]] = {}
    with open(results / "model" / "predictions.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["split"] != split:
                continue
            out.setdefault(row["video_id"], []).append(
                (row["prediction"], float(row["probability"]))
            )
    return out


@pytest.mark.slow
def test_recognising_the_test_clips_reproduces_the_evaluate_step(demo):
    folder = recognise.open_model_folder(demo / "model")
    model = recognise.Recogniser(folder)
    expected = evaluated(demo)
    status = dict(tables.read_instances(demo / "tables" / "instances.csv")[["video_id", "status"]]
                  .itertuples(index=False))  # fmt: skip
    checked = 0
    for inst in demo_instances("test"):
        if inst.video_id not in expected:  # no features (a dead link): not evaluated
            continue
        source = demo / "sources" / f"{inst.source_id}.mp4"
        spec = inst.clip_spec()
        trim = (source, folder, spec["start_s"], spec["end_s"], spec["bbox"])
        if status[inst.video_id] != "kept":
            # Evaluate scores a low_quality clip (it counts in the test figures); recognise
            # refuses it, naming the threshold it fails.
            with pytest.raises(recognise.VideoError, match="thresholds in the model's"):
                recognise.video_landmarks(*trim)
            continue
        marks = recognise.video_landmarks(*trim)
        got = recognise.ranked(model.probabilities(marks), folder.labels, 5)
        want = expected[inst.video_id]
        assert got[0]["gloss"] == want[0][0], inst.video_id
        np.testing.assert_allclose([p["probability"] for p in got], [p for _, p in want],
                                   atol=1e-5, err_msg=inst.video_id)  # fmt: skip
        assert [p["gloss"] for p in got] == [g for g, _ in want]
        checked += 1
    assert checked >= 6


@pytest.mark.slow
def test_cli_prints_json_only_and_one_bad_video_does_not_stop_the_others(demo, tmp_path):
    inst = next(i for i in demo_instances("test") if i.video_id in evaluated(demo))
    source = demo / "sources" / f"{inst.source_id}.mp4"
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video\n")
    missing = tmp_path / "missing.mp4"
    spec = inst.clip_spec()
    trim = ["--start", str(spec["start_s"])]
    trim += ["--end", str(spec["end_s"])] if spec["end_s"] is not None else []
    trim += ["--bbox", *map(str, spec["bbox"])]
    videos = [str(not_video), str(source), str(missing)]
    proc = cli("--model", str(demo / "model"), "--json", "--top", "3", *trim, *videos)
    assert proc.returncode == 1
    docs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [d["video"] for d in docs] == [str(source)]
    predictions = docs[0]["predictions"]
    labels = json.loads((demo / "model" / recognise.LABELS_FILE).read_text())
    assert len(predictions) == 3 and {p["gloss"] for p in predictions} <= set(labels)
    assert predictions[0]["gloss"] == evaluated(demo)[inst.video_id][0][0]
    assert sum(p["probability"] for p in predictions) <= 1 + 1e-6
    errors = proc.stderr.splitlines()
    assert len(errors) == 2, proc.stderr
    assert str(not_video) in errors[0] and "no decoder can open it" in errors[0]
    assert str(missing) in errors[1] and "no such readable file" in errors[1]


@pytest.mark.slow
def test_a_real_signing_video_outside_the_demo_gets_five_demo_glosses(demo):
    """pose-format's sample video (1280x720, 9 frames at 24 fps), timed."""
    proc = cli("--model", str(demo / "model"), "--json", "--verbose", str(REAL_VIDEO))
    assert proc.returncode == 0, proc.stderr[-2000:]
    [doc] = [json.loads(line) for line in proc.stdout.splitlines()]
    labels = json.loads((demo / "model" / recognise.LABELS_FILE).read_text())
    glosses = [p["gloss"] for p in doc["predictions"]]
    assert len(glosses) == 5 and set(glosses) <= set(labels)
    assert sum(p["probability"] for p in doc["predictions"]) <= 1 + 1e-6
    timing = [line for line in proc.stderr.splitlines()
              if line.startswith(f"signpose recognise: {REAL_VIDEO}: ")]  # fmt: skip
    assert len(timing) == 1 and timing[0].endswith(" s")


@pytest.mark.slow
def test_landmarks_tflite_agrees_with_keras_on_the_test_clips(demo):
    """Raw landmarks of the workflow's .pose files in, the evaluate step's Keras numbers out."""
    path = demo / "model" / recognise.LANDMARKS_TFLITE_FILE
    assert path.stat().st_size <= 40 * 2**20
    lite = lite_runtime.LandmarksInterpreter(path, threads=1)
    labels = json.loads((demo / "model" / recognise.LABELS_FILE).read_text())
    seconds = []
    for video_id, want in evaluated(demo).items():
        pose = read_pose(demo / "poses" / f"{video_id}.pose")
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
def test_cli_tflite_reproduces_the_evaluate_step_without_tensorflow(demo):
    inst = next(i for i in demo_instances("test") if i.video_id in evaluated(demo))
    source = demo / "sources" / f"{inst.source_id}.mp4"
    spec = inst.clip_spec()
    args = ["recognise", "--model", str(demo / "model"), "--tflite", "--json"]
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
    want = evaluated(demo)[inst.video_id]
    assert doc["predictions"][0]["gloss"] == want[0][0]
    np.testing.assert_allclose([p["probability"] for p in doc["predictions"]],
                               [p for _, p in want], atol=1e-4)  # fmt: skip


def test_a_model_folder_with_files_missing_is_one_line_and_exit_2(tmp_path):
    (tmp_path / recognise.MODEL_FILE).write_bytes(b"")
    proc = cli("--model", str(tmp_path), "video.mp4")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"signpose recognise: {tmp_path}: not a complete signpose model folder: labels.json, "
        "train_config.json, pipeline.json, global_stats.npz missing (train it with this version "
        "of signpose)"
    ]


def test_a_model_folder_from_another_version_is_refused_by_name(tmp_path):
    for name in (recognise.MODEL_FILE, recognise.STATS_FILE):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / recognise.LABELS_FILE).write_text('["a", "b"]')
    (tmp_path / recognise.CONFIG_FILE).write_text("{}")
    (tmp_path / recognise.CHAIN_FILE).write_text(json.dumps({"format": "signpose-model",
                                                          "version": 0}))  # fmt: skip
    proc = cli("--model", str(tmp_path), "video.mp4")
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert str(tmp_path) in line and "another version of signpose" in line and "retrain" in line


def test_bad_arguments_exit_2(tmp_path):
    proc = cli("--model", str(tmp_path), "--start", "2", "--end", "1", "video.mp4")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["signpose recognise: --end 1.0 is not after --start 2.0"]
