"""Evaluation of a trained model directory: metrics.json, confusion matrix, TFLite export."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from signpose.files import write_text_atomic
from signpose.training import data, plots
from signpose.training.config import TrainConfig
from signpose.training.fit import (
    CONFIG_FILE,
    LABELS_FILE,
    MODEL_FILE,
    SUMMARY_FILE,
    limit_threads,
)
from signpose.training.tflite import export_tflite, tflite_agreement

METRICS_FILE = "metrics.json"
CONFUSION_FILE = "confusion_matrix.png"
TFLITE_FILE = "model.tflite"

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
        keys = ("top1", "top5", "mean_per_class_top1", "majority_baseline_top1")
        return metrics | dict.fromkeys(keys) | {"per_class": {}}
    k = min(5, probs.shape[1])
    hit1 = probs.argmax(axis=1) == y_true
    topk = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    per_class = {
        labels[c]: {"n": int((y_true == c).sum()), "top1": float(hit1[y_true == c].mean())}
        for c in np.unique(y_true)
    }
    return metrics | {
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
    for name, items in split_items.items():
        split = data.load_split(items, index)
        inputs = data.make_inputs(split, stats, cfg)
        probs = model.predict(inputs, batch_size=cfg.batch_size, verbose=0) if len(split) else None
        metrics = split_metrics(split.labels, probs, labels, majority)
        result["splits"][name] = split.counts | metrics
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
        result["tflite"] = info
    write_text_atomic(out / METRICS_FILE, json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    return result


def _split_rank(name: str) -> tuple[int, str]:
    rank = _PREFERRED_SPLITS.index(name) if name in _PREFERRED_SPLITS else len(_PREFERRED_SPLITS)
    return rank, name
