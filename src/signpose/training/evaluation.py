"""Evaluation of a trained model: metrics, confusion matrix, TFLite export."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from signpose.files import write_text_atomic
from signpose.training import data, plots
from signpose.training.config import TrainConfig
from signpose.training.fit import limit_threads
from signpose.training.tflite import export_tflite, tflite_agreement


@dataclass(frozen=True)
class Trained:
    """What `evaluate` reads of a training run (the files `train` wrote)."""

    model: str | os.PathLike
    labels: str | os.PathLike
    summary: str | os.PathLike
    config: str | os.PathLike


@dataclass(frozen=True)
class EvaluateOutputs:
    """Where `evaluate` writes; the caller (the workflow's rule) chooses."""

    metrics: str | os.PathLike  # JSON, the dict `evaluate` returns
    confusion: str | os.PathLike  # PNG
    tflite: str | os.PathLike | None = None  # batch-1 TFLite model; None: no export


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


def _read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _majority_class(summary: dict[str, Any], labels: Sequence[str]) -> int | None:
    """The most frequent train class (recorded by `train`); ties go to the first gloss."""
    counts = summary.get("train_class_counts", {})
    return int(np.argmax([counts.get(g, 0) for g in labels])) if counts else None


def _check_config(trained: dict[str, Any], model: keras.Model, cfg: TrainConfig) -> None:
    # Evaluating with other inputs than training silently ruins every prediction.
    if model.input_shape[1] != cfg.seq_len:
        raise ValueError(f"model takes {model.input_shape[1]} frames but cfg.seq_len={cfg.seq_len}")
    if model.input_shape[2] != data.input_width(cfg):
        raise ValueError(
            f"model takes {model.input_shape[2]} columns, cfg gives {data.input_width(cfg)}"
            f" (hand_shape={cfg.hand_shape})"
        )
    for key in ("length_mode", "std_floor", "hand_shape"):
        if key in trained and trained[key] != getattr(cfg, key):
            raise ValueError(
                f"model was trained with {key}={trained[key]!r}, cfg has {getattr(cfg, key)!r}"
            )


def evaluate(
    trained: Trained,
    split_items: Mapping[str, Sequence[data.Item]],
    stats_path: str | os.PathLike,
    out: EvaluateOutputs,
    cfg: TrainConfig,
) -> dict[str, Any]:
    """Evaluate a trained model on each named split (e.g. {"val": [...], "test": [...]}).

    Writes the metrics, the confusion matrix (test, else val, else the first non-empty split;
    a placeholder when every split is empty) and, when `out.tflite` is given, the TFLite
    model plus its agreement with Keras on that split.
    Items whose gloss the model was not trained on are excluded and counted per split.
    """
    limit_threads(cfg.threads)
    labels = data.read_labels(trained.labels)
    index = {gloss: i for i, gloss in enumerate(labels)}
    model = keras.models.load_model(trained.model, compile=False)
    _check_config(_read_json(trained.config), model, cfg)
    stats = data.load_stats(stats_path, cfg.std_floor)
    majority = _majority_class(_read_json(trained.summary), labels)

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
            y_true, y_pred, labels, out.confusion, cfg.confusion_top_n, split_name=name
        )
        result["confusion_matrix"] = {"split": name, "classes": shown}
    else:
        plots.placeholder(out.confusion, "no evaluated items: no confusion matrix")
    if out.tflite is not None:
        info = export_tflite(model, out.tflite)
        if chosen is not None:
            info |= {"split": chosen[0], "n": len(chosen[1])}
            info["agreement"] = tflite_agreement(out.tflite, model, chosen[1])
        result["tflite"] = info
    write_text_atomic(out.metrics, json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    return result


def _split_rank(name: str) -> tuple[int, str]:
    rank = _PREFERRED_SPLITS.index(name) if name in _PREFERRED_SPLITS else len(_PREFERRED_SPLITS)
    return rank, name
