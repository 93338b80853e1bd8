"""`train.model_type: cnn_lstm_rgb`: the training guide's MobileNetV2 + LSTM model on clip frames.

Tiny sizes throughout (4 frames of 32x32, MobileNetV2 alpha 0.35): the CPU is shared. The
backbone's weights come from a file the test makes itself; nothing is downloaded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_training import outputs

from signpose.training import TrainConfig, rgb

GLOSSES = ("red", "green", "blue")
KNOBS = {"frames": 4, "image_size": 32, "alpha": 0.35, "frame_dim": 16, "lstm_units": 16,
         "lstm2_units": 8, "dense_units": 16, "dense2_units": 8, "dropout": 0.1,
         "fine_tune_epochs": 0, "fine_tune_learning_rate": 1e-4}  # fmt: skip


def rgb_config(weights: str, **overrides) -> TrainConfig:
    knobs = KNOBS | {"weights": weights} | overrides.pop("knobs", {})
    # Adam at a constant rate, no label smoothing: these tests check the RGB model and its
    # data path in 40 epochs, not the landmark models' recipe (warm-up, cosine, smoothing).
    base = {"model_type": "cnn_lstm_rgb", "batch_size": 4, "epochs": 40, "patience": 40,
            "learning_rate": 3e-3, "seed": 3, "optimizer": "adam", "lr_schedule": "plateau",
            "label_smoothing": 0.0}  # fmt: skip
    base["model"] = {"cnn_lstm_rgb": knobs}
    return TrainConfig.from_dict(base | overrides, threads=2)


def write_clip(path: Path, colour: int, rng: np.random.Generator, frames: int = 12) -> None:
    """A noisy clip whose class is the colour channel a square moving across it is drawn in."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 64))
    start = rng.integers(0, 8)
    for t in range(frames):
        frame = rng.integers(0, 60, (64, 64, 3), dtype=np.uint8)
        x = int(start + 2 * t) % 28
        frame[14:50, x : x + 36, 2 - colour] = 230  # BGR
        writer.write(frame)
    writer.release()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, list[tuple[str, str]]]:
    root = tmp_path_factory.mktemp("rgb")
    rng = np.random.default_rng(7)
    items: dict[str, list[tuple[str, str]]] = {"train": [], "val": [], "test": []}
    for split, per_class in (("train", 8), ("val", 2), ("test", 3)):
        for c, gloss in enumerate(GLOSSES):
            for i in range(per_class):
                path = root / f"{split}_{gloss}_{i}.mp4"
                write_clip(path, c, rng)
                items[split].append((str(path), gloss))
    return items


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> str:
    """MobileNetV2 weights saved as a file, as a user would provide one: random (seeded), with
    each batch norm's statistics set from random images, in order. Uncalibrated random weights
    give features of about 1e-12 for any image: nothing to learn from, frozen."""
    import keras

    keras.utils.set_random_seed(0)
    backbone = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None, pooling="avg"
    )
    images = np.random.default_rng(0).uniform(-1, 1, (32, 32, 32, 3)).astype(np.float32)
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            seen = keras.Model(backbone.input, layer.input)(images).numpy()
            layer.moving_mean.assign(seen.mean(axis=(0, 1, 2)))
            layer.moving_variance.assign(seen.var(axis=(0, 1, 2)))
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v2_0.35_no_top.weights.h5"
    backbone.save_weights(path)
    return str(path)


def test_sampled_frames_are_spread_evenly_and_resized(clips):
    assert list(rgb.sample_indices(12, 4)) == [0, 4, 7, 11]
    assert list(rgb.sample_indices(2, 4)) == [0, 0, 1, 1]
    frames = rgb.sample_frames(clips["train"][0][0], 4, 32)
    assert frames.shape == (4, 32, 32, 3) and frames.dtype == np.uint8
    # The square moves: sampled frames differ.
    assert not np.array_equal(frames[0], frames[-1])
    assert rgb.sample_frames(__file__, 4, 32).sum() == 0  # not a video: black frames


def test_the_guides_architecture_shapes_and_parameter_count():
    """30 frames of 224x224, MobileNetV2 (ImageNet's 1.0 width), head 256, LSTM 256 -> 128."""
    from signpose.training.models import build_cnn_lstm_rgb

    knobs = TrainConfig.from_dict({"model_type": "cnn_lstm_rgb"}).knobs | {"weights": "none"}
    n = 100
    model = build_cnn_lstm_rgb(n, knobs, None)
    assert model.input_shape == (None, 30, 224, 224, 3)
    assert model.output_shape == (None, n)

    def lstm(inp: int, units: int) -> int:
        return 4 * (units * (inp + units) + units)

    mobilenet_v2 = 2_257_984  # keras.applications.MobileNetV2(include_top=False), alpha 1.0
    expected = (mobilenet_v2 + (1280 * 256 + 256) + lstm(256, 256) + 4 * 256
                + lstm(256, 128) + 4 * 128 + (128 * 256 + 256) + (256 * 128 + 128)
                + (128 * n + n))  # fmt: skip
    assert model.count_params() == expected
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    # Random weights (none) train from the start: only batch-norm statistics are not trained.
    assert frozen == 34_112 + 2 * 256 + 2 * 128


def test_a_weights_file_is_loaded_into_the_backbone(weights_file):
    import keras

    from signpose.training.models import build_cnn_lstm_rgb

    model = build_cnn_lstm_rgb(3, KNOBS, rgb.backbone_weights(weights_file, 0.35, 32))
    saved = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None, pooling="avg"
    )
    saved.load_weights(weights_file)
    backbone = next(layer for layer in model.get_layer("per_frame").layer.layers
                    if isinstance(layer, keras.Model))  # fmt: skip
    for a, b in zip(backbone.get_weights(), saved.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not backbone.trainable  # given weights start frozen, as in the guide


def test_offline_imagenet_fails_at_the_start_of_training_with_one_line(tmp_path, monkeypatch):
    from signpose.training import fit

    # A file name no cache holds, at an address where nothing listens: offline.
    monkeypatch.setattr(rgb, "imagenet_file", lambda alpha, size: f"never_cached_{alpha}_{size}.h5")
    monkeypatch.setattr(rgb, "IMAGENET_URL", "http://127.0.0.1:9/")
    items = [(str(tmp_path / "never_read.mp4"), "a")]
    written = outputs(tmp_path / "out")[0]
    with pytest.raises(rgb.BackboneWeightsError) as err:
        fit.train(items, [], tmp_path / "no_stats.npz", written, rgb_config("imagenet"))
    [line] = str(err.value).splitlines()
    assert "imagenet: cannot download" in line and "set weights to its path" in line
    assert "http://127.0.0.1:9/never_cached_0.35_32.h5" in line
    assert not (tmp_path / "out" / "labels.json").exists()  # failed before reading any data


def test_a_missing_weights_file_is_one_line(tmp_path):
    with pytest.raises(rgb.BackboneWeightsError, match="no such file"):
        rgb.backbone_weights(str(tmp_path / "missing.h5"), 0.35, 32)


@pytest.mark.slow
def test_cnn_lstm_rgb_learns_a_synthetic_rgb_signal(clips, weights_file, tmp_path):
    """Frozen backbone (fine-tuning, whose first epoch costs a minute of tracing on a CPU, is
    trained in the resume test below). The TFLite export of this model type is checked on the
    demo (test_compare), where the workflow trains it."""
    from signpose.training import evaluate, train

    stats = tmp_path / "stats.npz"  # the landmark statistics: the RGB model does not use them
    np.savez(stats, mean=np.zeros(540, np.float32), std=np.ones(540, np.float32),
             features_ema_alpha=0.2)  # fmt: skip
    cfg = rgb_config(weights_file)
    out = tmp_path / "model"
    written, trained, evaluated = outputs(out, tflite=False)
    summary = train(clips["train"], clips["val"], stats, written, cfg)
    assert summary["model_type"] == "cnn_lstm_rgb" and summary["n_train"] == 24
    history = (out / "history.csv").read_text().splitlines()
    assert len(history) - 1 == summary["epochs"] > 2
    metrics = evaluate(trained, {"val": clips["val"], "test": clips["test"]}, stats, evaluated, cfg)
    test = metrics["splits"]["test"]
    assert test["n_evaluated"] == 9
    assert test["top1"] >= 0.75, json.dumps(metrics["splits"])


@pytest.mark.slow
def test_a_training_killed_while_fine_tuning_resumes_to_the_same_weights(
    clips, weights_file, tmp_path
):
    """The two phases of cnn_lstm_rgb: killed in the second, the rerun goes on in it."""
    from test_training import _train_job, _weights, read_history

    stats = tmp_path / "stats.npz"  # the landmark statistics: the RGB model does not use them
    np.savez(stats, mean=np.zeros(540, np.float32), std=np.ones(540, np.float32),
             features_ema_alpha=0.2)  # fmt: skip
    options = {"model_type": "cnn_lstm_rgb", "batch_size": 4, "epochs": 2, "patience": 40,
               "learning_rate": 3e-3, "seed": 3, "model": {"cnn_lstm_rgb": KNOBS | {
                   "weights": weights_file, "fine_tune_epochs": 3}}}  # fmt: skip
    job = (clips, stats)
    _train_job(job, tmp_path / "whole", options)
    _train_job(job, tmp_path / "killed", options, kill_after=3)  # the first fine-tuning epoch
    resumed = _train_job(job, tmp_path / "killed", options)
    assert re.search(r"resuming from epoch [45] \([34] done", resumed), resumed  # fine-tuning
    whole, killed = (
        _weights(tmp_path / "whole/model.keras"),
        _weights(tmp_path / "killed/model.keras"),
    )
    assert all(np.array_equal(a, b) for a, b in zip(whole, killed, strict=True))
    history = read_history(tmp_path / "killed/history.csv")
    assert history == read_history(tmp_path / "whole/history.csv")
    # two phases, one history: the frozen epochs, then fine-tuning numbered on
    assert [row["epoch"] for row in history] == ["0", "1", "2", "3", "4"]
