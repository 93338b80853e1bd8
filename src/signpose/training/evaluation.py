"""Evaluation of a trained model directory: metrics.json, confusion matrix, TFLite export."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from signpose.files import write_text_atomic
from signpose.training import data, landmarks_model, pipeline, plots, rgb
from signpose.training.config import TrainConfig
from signpose.training.fit import limit_threads
from signpose.training.names import (
    CHAIN_FILE,
    CONFIG_FILE,
    CONFUSION_FILE,
    LABELS_FILE,
    METRICS_FILE,
    MODEL_FILE,
    PREDICTIONS_FILE,
    SUMMARY_FILE,
    TFLITE_FILE,
)
from signpose.training.tflite import export_tflite, tflite_agreement, tflite_seconds_per_clip

# The split whose confusion matrix is drawn and on which TFLite is checked, in preference order.
_PREFERRED_SPLITS = ("test", "val")


def split_metrics(
    y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str], majority: int | None
) -> dict[str, Any]:
    """Top-1/top-5, per-class top-1 and the majority-class baseline of one split.

    Undefined figures (an empty split) are None, since JSON has no NaN.
    """
    n = len(y_true)
    metrics: dict[str, Any] = {"n_evaluated": n}
    if n == 0:
        keys = ("loss", "top1", "top5", "mean_per_class_top1", "majority_baseline_top1")
        return metrics | dict.fromkeys(keys) | {"per_class": {}}
    k = min(5, probs.shape[1])
    hit1 = probs.argmax(axis=1) == y_true
    # Sparse categorical crossentropy, probabilities clipped at 1e-7 as Keras does.
    loss = float(-np.log(np.clip(probs[np.arange(n), y_true], 1e-7, 1.0)).mean())
    topk = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    per_class = {
        labels[c]: {"n": int((y_true == c).sum()), "top1": float(hit1[y_true == c].mean())}
        for c in np.unique(y_true)
    }
    return metrics | {
        "loss": loss,
        "top1": float(hit1.mean()),
        "top5": float((topk == y_true[:, None]).any(axis=1).mean()),  # top-k, k = min(5, classes)
        "mean_per_class_top1": float(np.mean([v["top1"] for v in per_class.values()])),
        "majority_baseline_top1": None if majority is None else float(np.mean(y_true == majority)),
        "per_class": per_class,
    }


def _majority_class(out: Path, labels: Sequence[str]) -> int | None:
    """The most frequent train class (recorded by `train`); ties go to the first gloss."""
    path = out / SUMMARY_FILE
    if not path.exists():
        return None
    counts = json.loads(path.read_text(encoding="utf-8")).get("train_class_counts", {})
    return int(np.argmax([counts.get(g, 0) for g in labels])) if counts else None


def _check_config(out: Path, model: keras.Model, cfg: TrainConfig) -> None:
    # Evaluating with other inputs than training silently ruins every prediction.
    if pipeline.is_rgb(cfg):
        k = cfg.knobs
        expected = (k["frames"], k["image_size"], k["image_size"], 3)
        if tuple(model.input_shape[1:]) != expected:
            raise ValueError(f"model takes frames {model.input_shape[1:]}, cfg gives {expected}")
        return
    if model.input_shape[1] != cfg.seq_len:
        raise ValueError(f"model takes {model.input_shape[1]} frames but cfg.seq_len={cfg.seq_len}")
    if model.input_shape[2] != data.input_width(cfg):
        raise ValueError(
            f"model takes {model.input_shape[2]} columns, cfg gives {data.input_width(cfg)}"
            f" (hand_shape={cfg.hand_shape})"
        )
    path = out / CONFIG_FILE
    if not path.exists():
        return
    trained = json.loads(path.read_text(encoding="utf-8"))
    for key in ("length_mode", "std_floor", "hand_shape"):
        if key in trained and trained[key] != getattr(cfg, key):
            raise ValueError(
                f"model was trained with {key}={trained[key]!r}, cfg has {getattr(cfg, key)!r}"
            )


def evaluate(
    out_dir: str | os.PathLike,
    split_items: Mapping[str, Sequence[data.Item]],
    stats_path: str | os.PathLike,
    cfg: TrainConfig | None = None,
) -> dict[str, Any]:
    """Evaluate out_dir/model.keras on each named split (e.g. {"val": [...], "test": [...]}).

    Writes metrics.json, confusion_matrix.png (test, else val, else the first non-empty
    split; a placeholder when every split is empty) and, when cfg.tflite, model.tflite plus
    its agreement with Keras on that split.
    Items whose gloss the model was not trained on are excluded and counted per split.
    """
    cfg = cfg or TrainConfig()
    limit_threads(cfg.threads)
    out = Path(out_dir)
    labels = data.read_labels(out / LABELS_FILE)
    index = {gloss: i for i, gloss in enumerate(labels)}
    model = keras.models.load_model(out / MODEL_FILE, compile=False)
    _check_config(out, model, cfg)
    stats = data.load_stats(stats_path, cfg.std_floor)
    majority = _majority_class(out, labels)

    result: dict[str, Any] = {"n_classes": len(labels), "chance_top1": 1 / len(labels)}
    result["splits"] = {}
    chosen: tuple[str, np.ndarray, np.ndarray, np.ndarray] | None = None
    predictions: list[tuple[Any, ...]] = []
    for name, items in split_items.items():
        split = pipeline.load_split(items, index, cfg)
        inputs, probs = _predict(model, split, stats, cfg)
        metrics = split_metrics(split.labels, probs, labels, majority)
        result["splits"][name] = split.counts | metrics
        if probs is not None:
            predictions += top_k_rows(name, split, probs, labels)
        # Only the preferred split's inputs are kept: WLASL2000 inputs run to hundreds of MB.
        if len(split) and (chosen is None or _split_rank(name) < _split_rank(chosen[0])):
            chosen = (name, inputs, split.labels, probs.argmax(axis=1))

    if chosen is not None:
        name, inputs, y_true, y_pred = chosen
        shown = plots.confusion_matrix(
            y_true, y_pred, labels, out / CONFUSION_FILE, cfg.confusion_top_n, split_name=name
        )
        result["confusion_matrix"] = {"split": name, "classes": shown}
    else:
        plots.placeholder(out / CONFUSION_FILE, "no evaluated items: no confusion matrix")
    if cfg.tflite:
        info = export_tflite(model, out / TFLITE_FILE)
        if chosen is not None:
            info |= {"split": chosen[0], "n": len(chosen[1])}
            info["agreement"] = tflite_agreement(out / TFLITE_FILE, model, chosen[1])
        if chosen is not None:
            info["ms_per_clip"] = 1000 * tflite_seconds_per_clip(out / TFLITE_FILE, chosen[1])
        result["tflite"] = info
        # Landmark models trained by the workflow (which records the chain): raw landmarks in.
        if (out / CHAIN_FILE).exists() and not pipeline.is_rgb(cfg):
            result["tflite_landmarks"] = landmarks_model.export_for_folder(out, model, stats)
    write_predictions(out / PREDICTIONS_FILE, predictions)
    write_text_atomic(out / METRICS_FILE, json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    return result


# RGB clips decoded for the TFLite check: frames of every clip of a split do not fit in memory.
_RGB_TFLITE_CLIPS = 16


def _predict(
    model: keras.Model, split, stats: data.Stats, cfg: TrainConfig
) -> tuple[np.ndarray, np.ndarray | None]:
    """(inputs kept for the TFLite check, class probabilities) of one split."""
    if not len(split):
        return np.zeros((0,)), None
    if pipeline.is_rgb(cfg):
        probs = model.predict(pipeline.evaluation_data(split, stats, cfg), verbose=0)
        k = cfg.knobs
        kept = [rgb.sample_frames(p, k["frames"], k["image_size"])
                for p in split.paths[:_RGB_TFLITE_CLIPS]]  # fmt: skip
        return np.stack(kept), probs
    inputs = data.make_inputs(split, stats, cfg)
    return inputs, model.predict(inputs, batch_size=cfg.batch_size, verbose=0)


PREDICTION_COLUMNS = ("split", "video_id", "gloss", "rank", "prediction", "probability")


def top_k_rows(
    split_name: str, split: data.Split, probs: np.ndarray, labels: Sequence[str]
) -> list[tuple[Any, ...]]:
    """predictions.csv rows of one split: the top-5 glosses of each item with probabilities."""
    rows = []
    for path, y, p, ranked in zip(split.paths, split.labels, probs, data.top_k(probs), strict=True):
        for rank, c in enumerate(ranked, start=1):
            # Probabilities keep every digit of a float32.
            rows.append((split_name, Path(path).stem, labels[y], rank, labels[c], f"{p[c]:.9g}"))
    return rows


def write_predictions(path: Path, rows: Sequence[Sequence[Any]]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")  # glosses are free text: csv quotes them
    writer.writerow(PREDICTION_COLUMNS)
    writer.writerows(rows)
    write_text_atomic(path, text.getvalue())


def _split_rank(name: str) -> tuple[int, str]:
    rank = _PREFERRED_SPLITS.index(name) if name in _PREFERRED_SPLITS else len(_PREFERRED_SPLITS)
    return rank, name
