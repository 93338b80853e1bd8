"""Evaluation of a trained model: metrics, predictions, confusion matrix, TFLite exports."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from signpose.files import write_text_atomic
from signpose.training import data, landmarks_model, pipeline, plots, rgb
from signpose.training.config import TrainConfig
from signpose.training.fit import limit_threads
from signpose.training.tflite import export_tflite, tflite_agreement, tflite_seconds_per_clip


@dataclass(frozen=True)
class Trained:
    """What `evaluate` reads of a training run (the files `train` wrote)."""

    model: str | os.PathLike
    labels: str | os.PathLike
    summary: str | os.PathLike
    config: str | os.PathLike
    # The chain the workflow recorded (recognise.record_chain); None: no landmarks TFLite.
    chain: str | os.PathLike | None = None


@dataclass(frozen=True)
class EvaluateOutputs:
    """Where `evaluate` writes; the caller (the workflow's rule) chooses."""

    metrics: str | os.PathLike  # JSON, the dict `evaluate` returns
    confusion: str | os.PathLike  # PNG
    tflite: str | os.PathLike | None = None  # batch-1 TFLite model; None: no export
    predictions: str | os.PathLike | None = None  # CSV, the top-5 of every item; None: none
    # Raw Holistic landmarks in (signpose.training.landmarks_model); needs Trained.chain.
    landmarks_tflite: str | os.PathLike | None = None


# The split whose confusion matrix is drawn and on which TFLite is checked, in preference order.
_PREFERRED_SPLITS = ("test", "val")


# k of the top-k accuracy reported beside top-1.
TOP_K = 5


def split_metrics(
    y_true: np.ndarray,
    probs: np.ndarray,
    labels: Sequence[str],
    majority: int | None,
    n_listed: int | None = None,
) -> dict[str, Any]:
    """Top-1/top-5, per-class top-1 and the majority-class baseline of one split's scored items.

    `top1_all`/`top5_all` divide the same hits by `n_listed`, every instance the split lists
    (default: the scored items), so an instance that could not be scored counts as wrong, as
    published WLASL figures do. Top-5 with 5 classes or fewer is 1.0 by construction, so it is
    None then. Undefined figures (an empty split) are None, since JSON has no NaN.
    """
    n = len(y_true)
    listed = n if n_listed is None else n_listed
    if listed < n:
        raise ValueError(f"{n} items scored but only {listed} listed")
    metrics: dict[str, Any] = {"n_evaluated": n, "n_listed": listed}
    has_top_k = len(labels) > TOP_K
    keys = ("loss", "top1", "top5", "mean_per_class_top1", "majority_baseline_top1")
    if n == 0:
        # Nothing scored: every listed instance is wrong, if any is listed.
        everything = dict.fromkeys(("top1_all", "top5_all"), 0.0 if listed else None)
        if not has_top_k:
            everything["top5_all"] = None
        return metrics | dict.fromkeys(keys) | everything | {"per_class": {}}
    hit1 = probs.argmax(axis=1) == y_true
    # Sparse categorical crossentropy, probabilities clipped at 1e-7 as Keras does.
    loss = float(-np.log(np.clip(probs[np.arange(n), y_true], 1e-7, 1.0)).mean())
    hits5 = None
    if has_top_k:
        top5 = np.argpartition(-probs, TOP_K - 1, axis=1)[:, :TOP_K]
        hits5 = int((top5 == y_true[:, None]).any(axis=1).sum())
    per_class = {
        labels[c]: {"n": int((y_true == c).sum()), "top1": float(hit1[y_true == c].mean())}
        for c in np.unique(y_true)
    }
    return metrics | {
        "loss": loss,
        "top1": float(hit1.mean()),
        "top5": None if hits5 is None else hits5 / n,
        "top1_all": int(hit1.sum()) / listed,
        "top5_all": None if hits5 is None else hits5 / listed,
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
    # `input` (smoothing, velocity, face points, clipping...) changes values, not only widths.
    for key in ("length_mode", "std_floor", "hand_shape", "input"):
        if key not in trained:
            continue
        was, now = trained[key], getattr(cfg, key)
        if isinstance(was, dict):
            for sub in sorted(set(was) | set(now)):
                if was.get(sub) != now.get(sub):
                    raise ValueError(f"model was trained with train.{key}.{sub}="
                                     f"{was.get(sub)!r}, cfg has {now.get(sub)!r}")  # fmt: skip
        elif was != now:
            raise ValueError(f"model was trained with train.{key}={was!r}, cfg has {now!r}")


def evaluate(
    trained: Trained,
    split_items: Mapping[str, Sequence[data.Item]],
    stats_path: str | os.PathLike,
    out: EvaluateOutputs,
    cfg: TrainConfig,
    listed: Mapping[str, Mapping[str, int]] | None = None,
) -> dict[str, Any]:
    """Evaluate a trained model on each named split (e.g. {"val": [...], "test": [...]}).

    Writes the metrics, the top-5 predictions of every item, the confusion matrix (test, else
    val, else the first non-empty split; a placeholder when every split is empty) and, when
    `out.tflite` is given, the TFLite model plus its agreement with Keras on that split (and,
    with `out.landmarks_tflite`, the raw-landmarks TFLite model).
    Items whose gloss the model was not trained on are excluded and counted per split.
    `listed` gives, per split, counts from the instance table (`tables.split_counts`): they go
    into that split's metrics, and its `n_listed` is the denominator of `top1_all`/`top5_all`.
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
    predictions: list[tuple[Any, ...]] = []
    for name, items in split_items.items():
        split = pipeline.load_split(items, index, cfg, stats)
        inputs, probs = _predict(model, split, stats, cfg)
        counts = dict((listed or {}).get(name, {}))
        n_listed = counts.pop("n_listed", split.counts["n_items"])
        metrics = split_metrics(split.labels, probs, labels, majority, n_listed)
        result["splits"][name] = split.counts | counts | metrics
        if probs is not None:
            predictions += top_k_rows(name, split, probs, labels)
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
            info["ms_per_clip"] = 1000 * tflite_seconds_per_clip(out.tflite, chosen[1])
        result["tflite"] = info
    if out.landmarks_tflite is not None:
        if trained.chain is None:
            raise ValueError("the landmarks TFLite model needs the recorded chain (Trained.chain)")
        result["tflite_landmarks"] = landmarks_model.export_with_chain(
            trained.chain, model, stats, cfg, out.landmarks_tflite
        )
    if out.predictions is not None:
        write_predictions(out.predictions, predictions)
    write_text_atomic(out.metrics, json.dumps(result, indent=1, ensure_ascii=False) + "\n")
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
    return data.predict_split(
        lambda x: model.predict(x, batch_size=cfg.batch_size, verbose=0), split, stats, cfg
    )


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
