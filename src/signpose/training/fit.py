"""Training: the `train` entry point, its callbacks, and a throughput probe."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from signpose.files import atomic_path, write_text_atomic
from signpose.training import data, pipeline, plots, rgb
from signpose.training.config import TrainConfig
from signpose.training.models import build_model, compile_model, set_backbone_trainable

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TrainOutputs:
    """Where `train` writes each of its files: the caller (the workflow's rule) chooses."""

    model: str | os.PathLike  # .keras: the best validation top-1
    labels: str | os.PathLike  # labels.json, see data.write_labels
    history: str | os.PathLike  # CSV, one row per epoch
    curves: str | os.PathLike  # PNG
    summary: str | os.PathLike  # JSON, the dict `train` returns
    config: str | os.PathLike  # JSON, the TrainConfig trained with
    tensorboard: str | os.PathLike  # a folder, replaced


def _checkpoint(model: Path) -> Path:
    # Beside the model, so that moving it into place is a rename on the same file system.
    return model.with_name(f".{model.stem}.best.keras")


def limit_threads(threads: int) -> None:
    """Cap TensorFlow's op thread pools at `threads` (0: leave TensorFlow's defaults).

    TensorFlow sizes its pools by the cores it sees, which on a shared node (a SLURM job, or a
    Snakemake job given 2 of 64 cores) are not the job's. The pools are process-wide and fixed
    once TensorFlow has started, so a later call asking for other sizes only logs a warning.
    """
    if threads <= 0:
        return
    # Two inter-op threads: ops waiting on tf.data's numpy_function must not block the others.
    wanted = (threads, max(2, min(threads, 4)))
    current = (
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    )
    if current == wanted:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(wanted[0])
        tf.config.threading.set_inter_op_parallelism_threads(wanted[1])
    except RuntimeError as e:  # TensorFlow already started in this process
        log.warning("cannot cap TensorFlow at %d threads: %s", threads, e)


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and TF; with `deterministic`, also make TF's kernels deterministic.

    Op determinism is process-wide and cannot be switched off again; it makes CPU runs
    repeatable bit for bit and costs some speed on GPU.
    """
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def _score(logs: dict[str, Any], acc_key: str, loss_key: str) -> tuple[float, float] | None:
    """(top-1, -loss): compared as a tuple, the loss breaks ties in top-1. None if NaN."""
    acc, loss = float(logs.get(acc_key, np.nan)), float(logs.get(loss_key, np.nan))
    return None if math.isnan(acc) or math.isnan(loss) else (acc, -loss)


class BestCheckpoint(keras.callbacks.Callback):
    """Save the model of the epoch with the best top-1, and among equal top-1 the lowest loss.

    On a validation set of a few dozen clips top-1 moves in coarse steps and ties are the
    rule; Keras' ModelCheckpoint keeps the first of them, often an early, still unsure model.
    """

    def __init__(self, path: Path, acc_key: str, loss_key: str) -> None:
        super().__init__()
        self.path, self.acc_key, self.loss_key = path, acc_key, loss_key
        self.best: tuple[float, float] | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        score = _score(logs or {}, self.acc_key, self.loss_key)
        if score is not None and (self.best is None or score > self.best):
            self.best = score
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.model.save(self.path)


def _monitored(has_val: bool) -> tuple[str, str]:
    # Without validation data the only signal left is the training accuracy/loss.
    return ("val_accuracy", "val_loss") if has_val else ("accuracy", "loss")


class StopOnNaN(keras.callbacks.Callback):
    """Stop with one clear line when the training loss is no longer a number.

    Keras' TerminateOnNaN only ends `fit`, which then saves and evaluates a broken model.
    """

    epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = float((logs or {})["loss"])
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"training stopped: the loss became {loss} at epoch {self.epoch + 1}, batch"
                f" {batch + 1}; lower train.learning_rate or train.input.clip"
            )


def _callbacks(
    out: TrainOutputs, cfg: TrainConfig, has_val: bool
) -> list[keras.callbacks.Callback]:
    acc_key, loss_key = _monitored(has_val)
    plateau = []
    if cfg.lr_schedule == "plateau":  # cosine is a schedule of the optimizer itself
        plateau = [keras.callbacks.ReduceLROnPlateau(
            monitor=loss_key, factor=0.5, patience=max(2, cfg.patience // 3), min_lr=1e-6
        )]  # fmt: skip
    return [
        StopOnNaN(),
        BestCheckpoint(_checkpoint(Path(out.model)), acc_key, loss_key),
        keras.callbacks.EarlyStopping(
            monitor=loss_key, patience=cfg.patience, restore_best_weights=True
        ),
        *plateau,
        keras.callbacks.CSVLogger(str(out.history)),
        # Weight histograms every epoch, as the training guide has it, when asked (they cost
        # time and disk on big models).
        keras.callbacks.TensorBoard(
            log_dir=str(out.tensorboard), histogram_freq=int(cfg.tensorboard_histograms)
        ),
    ]


def _write_json(path: str | os.PathLike, doc: Any) -> None:
    write_text_atomic(path, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


def _finalise_model(target: Path, model: keras.Model) -> None:
    """Move the best checkpoint to `target` (or save the last weights if none was kept)."""
    best = _checkpoint(target)
    if best.exists():
        best.replace(target)
    else:
        with atomic_path(target) as tmp:
            model.save(tmp)


def _best_epoch(history: dict[str, list[float]], acc_key: str, loss_key: str) -> tuple[int, float]:
    """The epoch BestCheckpoint kept (1-based) and its top-1; (0, nan) if none was scored."""
    epochs = len(history.get(acc_key, []))
    scores = [_score({k: history[k][i] for k in (acc_key, loss_key)}, acc_key, loss_key)
              for i in range(epochs)]  # fmt: skip
    kept = [(score, i) for i, score in enumerate(scores) if score is not None]
    if not kept:
        return 0, float("nan")
    # The first of equal scores: BestCheckpoint saves only on a strict improvement.
    (acc, _), i = max(kept, key=lambda t: (t[0], -t[1]))
    return i + 1, acc


def _fine_tune(
    model: keras.Model, cfg: TrainConfig, n_classes: int, history: dict[str, list[float]],
    fit_args: dict[str, Any],
) -> dict[str, list[float]]:  # fmt: skip
    """The second phase of cnn_lstm_rgb: the backbone unfrozen, at a lower learning rate.

    The same callbacks go on: the best checkpoint of either phase is kept, the history file
    is appended to, and the epochs are numbered on from the frozen phase.
    """
    set_backbone_trainable(model, True)
    # A constant rate: the steps per epoch of a schedule do not matter.
    compile_model(model, cfg, n_classes, 1, cfg.knobs["fine_tune_learning_rate"])
    for callback in fit_args["callbacks"]:
        if isinstance(callback, keras.callbacks.CSVLogger):
            callback.append = True
    done = len(history.get("loss", []))
    more = model.fit(
        initial_epoch=done, epochs=done + cfg.knobs["fine_tune_epochs"], **fit_args
    ).history
    return {key: list(history.get(key, [])) + list(more.get(key, [])) for key in history}


def train(
    train_items: Sequence[data.Item],
    val_items: Sequence[data.Item],
    stats_path: str | os.PathLike,
    out: TrainOutputs,
    cfg: TrainConfig,
) -> dict[str, Any]:
    """Train a recogniser on (npy_path, gloss) items and write it, with its logs, to `out`.

    Validation items whose gloss is not in the train split are excluded and counted; with no
    usable validation items, training monitors its own loss and accuracy instead. Returns the
    summary written to `out.summary` (n_train, n_val, n_classes, epochs, seconds, ...).
    """
    started = time.perf_counter()
    limit_threads(cfg.threads)
    seed_everything(cfg.seed, cfg.deterministic)
    for path in dataclasses.astuple(out):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out.tensorboard, ignore_errors=True)
    _checkpoint(Path(out.model)).unlink(missing_ok=True)  # left by a run that was killed

    weights = None
    if pipeline.is_rgb(cfg):  # first: an offline "imagenet" fails before any data is read
        weights = rgb.backbone_weights(
            cfg.knobs["weights"], cfg.knobs["alpha"], cfg.knobs["image_size"]
        )
    all_glosses = data.build_label_map(train_items)
    stats = data.load_stats(stats_path, cfg.std_floor)
    index = {g: i for i, g in enumerate(all_glosses)}
    train_split = pipeline.load_split(train_items, index, cfg)
    if len(train_split) == 0:
        raise ValueError(f"no usable training items: {train_split.counts}")
    labels = data.drop_unseen_classes(train_split, all_glosses)
    val_split = pipeline.load_split(val_items, {g: i for i, g in enumerate(labels)}, cfg)
    data.write_labels(out.labels, labels)
    _write_json(out.config, cfg.to_dict())

    steps_per_epoch = math.ceil(len(train_split) / cfg.batch_size)
    model = build_model(cfg, len(labels), steps_per_epoch, weights)
    compile_model(model, cfg, len(labels), steps_per_epoch)
    has_val = len(val_split) > 0
    fit_args = {
        "x": pipeline.training_data(train_split, stats, cfg),
        "validation_data": pipeline.evaluation_data(val_split, stats, cfg) if has_val else None,
        "callbacks": _callbacks(out, cfg, has_val),
        "shuffle": False,  # the dataset shuffles itself, repeatably
        "verbose": 2,
    }
    history = model.fit(epochs=cfg.epochs, **fit_args).history
    if pipeline.is_rgb(cfg) and cfg.knobs["fine_tune_epochs"] > 0:
        history = _fine_tune(model, cfg, len(labels), history, fit_args)
    _finalise_model(Path(out.model), model)
    plots.training_curves(history, out.curves)

    monitor, loss_key = _monitored(has_val)
    best_epoch, best_value = _best_epoch(history, monitor, loss_key)
    counts = data.class_counts(train_split, len(labels))
    summary = {
        "model_type": cfg.model_type,
        "n_train": len(train_split),
        "n_val": len(val_split),
        "n_classes": len(labels),
        "glosses_without_usable_train_items": sorted(set(all_glosses) - set(labels)),
        "epochs": len(history.get("loss", [])),
        "seconds": round(time.perf_counter() - started, 2),
        "params": model.count_params(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "threads": cfg.threads or os.cpu_count(),
        "monitor": monitor,
        "best_epoch": best_epoch,
        "best_value": best_value,
        "train": pipeline.describe(train_split),
        "val": pipeline.describe(val_split),
        "train_class_counts": {g: int(n) for g, n in zip(labels, counts, strict=True)},
    }
    _write_json(out.summary, summary)
    return summary


def _fit_seconds_per_step(
    model: keras.Model, ds: tf.data.Dataset, steps: int, repeats: int
) -> float:
    model.fit(ds, steps_per_epoch=2, epochs=1, shuffle=False, verbose=0)  # warm-up, tracing
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.fit(ds, steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0)
        times.append((time.perf_counter() - started) / steps)
    return min(times)  # as timeit does: the least disturbed run is the best estimate


def _input_seconds_per_step(ds: tf.data.Dataset, steps: int, repeats: int) -> float:
    batches = iter(ds)
    next(batches)  # warm-up: worker threads, first generator call
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(steps):
            next(batches)
        times.append((time.perf_counter() - started) / steps)
    return min(times)  # as timeit does: the least disturbed run is the best estimate


DatasetFactory = Callable[[data.Split, data.Stats, TrainConfig], tf.data.Dataset]


def measure_throughput(
    train_items: Sequence[data.Item],
    stats_path: str | os.PathLike,
    cfg: TrainConfig,
    steps: int = 20,
    repeats: int = 3,
    datasets: dict[str, DatasetFactory] | None = None,
) -> dict[str, Any]:
    """Steps/s of the input pipeline alone, of the model step alone, and of both together.

    Each figure is the best of `repeats` runs of `steps` steps, after a warm-up. `data_share`
    is the time to make one batch over the time of one full training step (what the pipeline
    would cost if it ran serially); `stall_share` is the part of a full step spent beyond the
    model's own step, i.e. what the overlapped pipeline really costs. The "model" figure runs
    the same `fit` machinery on one ready batch, repeated.

    `datasets` names the input pipelines to compare (default: {"train": the training
    pipeline}); the model and its step time are shared, and each gets its own figures under
    "pipelines".
    """
    limit_threads(cfg.threads)
    seed_everything(cfg.seed, cfg.deterministic)
    labels = data.build_label_map(train_items)
    split = data.load_split(train_items, {g: i for i, g in enumerate(labels)})
    stats = data.load_stats(stats_path, cfg.std_floor)
    datasets = datasets or {"train": pipeline.train_dataset}
    steps_per_epoch = math.ceil(len(split) / cfg.batch_size)
    model = build_model(cfg, len(labels), steps_per_epoch)
    compile_model(model, cfg, len(labels), steps_per_epoch)

    first = next(iter(datasets.values()))(split, stats, cfg)
    ready = tf.data.Dataset.from_tensors(next(iter(first))).repeat()
    model_s = _fit_seconds_per_step(model, ready, steps, repeats)
    figures: dict[str, Any] = {"batch_size": cfg.batch_size, "steps": steps, "repeats": repeats}
    figures |= {"params": model.count_params(), "model_steps_per_s": 1 / model_s}
    figures["pipelines"] = {}
    for name, make in datasets.items():
        input_s = _input_seconds_per_step(make(split, stats, cfg).repeat(), steps, repeats)
        full_s = _fit_seconds_per_step(model, make(split, stats, cfg).repeat(), steps, repeats)
        figures["pipelines"][name] = {
            "input_steps_per_s": 1 / input_s,
            "train_steps_per_s": 1 / full_s,
            "data_share": input_s / full_s,
            "stall_share": max(0.0, 1 - model_s / full_s),
        }
    return figures
