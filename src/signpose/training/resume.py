"""Training that survives its time limit: the whole state of a `fit`, saved after every epoch.

One file, `state.npz` in a hidden folder beside the model, holds everything the next epoch
depends on: every variable of the model (with the dropout layers' seed generators and
LateDropout's step counter) and of the optimiser (its moments, iteration count and learning
rate, so any schedule goes on where it was), the counters of the callbacks that keep any
(EarlyStopping's best weights among them), the history and history.csv so far, and the Python
and NumPy random states. It is written under a temporary name and renamed, so a kill during the
save leaves the previous epoch's state. The folder is not a workflow output: Snakemake deletes
the outputs of a job that failed, and this must outlive it.

A rerun of the same training finds the state and goes on from the epoch after it, with the same
result as a run that was never stopped (the batches of epoch k are a function of the seed and
k, see epochs.EpochPlan); the epochs before are written to its TensorBoard folder again from
the history. A state written for other options or other inputs is ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import time
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from signpose.files import atomic_path

log = logging.getLogger(__name__)

STATE = "state.npz"

# The counters Keras' own callbacks carry from one epoch to the next (their on_train_begin
# resets them). Other callbacks name theirs in a `resumable` class attribute.
_COUNTERS: dict[type, tuple[str, ...]] = {
    keras.callbacks.EarlyStopping: ("wait", "stopped_epoch", "best", "best_epoch"),
    keras.callbacks.ReduceLROnPlateau: ("wait", "cooldown_counter", "best"),
}


def state_dir(model: str | os.PathLike) -> Path:
    """The state folder of the model written to `model`: hidden, beside it."""
    model = Path(model)
    return model.with_name(f".{model.stem}.train_state")


def fingerprint(
    options: dict[str, Any], splits: dict[str, Iterable[tuple[str, str]]], stats: str | os.PathLike
) -> str:
    """A hash of what a training's result depends on: its options, the items of each split
    (path, gloss, and each file's size and modification time, so rewritten features count)
    and the stats file."""
    digest = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode())
    for split, items in splits.items():
        digest.update(json.dumps(split).encode())
        for path, gloss in items:
            try:
                st = os.stat(path)
                seen: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
            except FileNotFoundError:
                seen = None
            digest.update(json.dumps([str(path), gloss, seen]).encode())
    digest.update(Path(stats).read_bytes())
    return digest.hexdigest()


class State:
    """A saved state: `doc` (epochs done, phase, counters, history, ...) and its arrays."""

    def __init__(self, doc: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.doc, self.arrays = doc, arrays

    def list(self, prefix: str) -> list[np.ndarray]:
        return [self.arrays[f"{prefix}{i}"] for i in range(self.doc["counts"][prefix])]


def load(directory: Path, key: str) -> State | None:
    """The state saved in `directory` for a training of fingerprint `key`, if there is one."""
    path = directory / STATE
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            doc = json.loads(str(f["doc"]))
            arrays = {name: f[name] for name in f.files if name != "doc"}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        log.warning("ignoring the unreadable training state %s (%s); starting at epoch 1", path, e)
        return None
    if doc.get("fingerprint") != key:
        log.warning("ignoring the training state in %s: the train options or the inputs changed "
                    "since it was written; starting at epoch 1", directory)  # fmt: skip
        return None
    log.info("resuming from epoch %d (%d done, state %s)", doc["epochs"] + 1, doc["epochs"], path)
    return State(doc, arrays)


def write_epoch_scalars(log_dir: Path, history: dict[str, list[float]]) -> None:
    """The epochs done before, as `keras.callbacks.TensorBoard` writes each epoch's figures
    (`epoch_<name>` at step = epoch, in `train/`, and `validation/` for the val_ ones): the
    folder is a job output, gone with the job that was killed, and a resumed training would
    show only its own epochs. Weight histograms of those epochs are not kept."""
    import tensorflow as tf

    by_split: dict[str, dict[str, list[float]]] = {"train": {}, "validation": {}}
    for name, values in history.items():
        if name.startswith("val_"):
            by_split["validation"][name[4:]] = values
        else:
            by_split["train"][name] = values
    for split, figures in by_split.items():
        if not figures:
            continue
        writer = tf.summary.create_file_writer(str(log_dir / split))
        with writer.as_default():
            for name, values in figures.items():
                for epoch, value in enumerate(values):
                    tf.summary.scalar(f"epoch_{name}", value, step=epoch)
        writer.close()


def _plain(value: Any) -> Any:
    """A JSON-able copy: NumPy scalars as Python numbers, tuples as lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _unplain(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _counter_names(callback: keras.callbacks.Callback) -> tuple[str, ...]:
    for kind, names in _COUNTERS.items():
        if isinstance(callback, kind):
            return names
    return tuple(getattr(callback, "resumable", ()))


class ResumableState(keras.callbacks.Callback):
    """Saves the state after each epoch and, given a saved `state`, restores it on train begin.

    Put it last among the callbacks: it saves what the others did in the epoch, and restores
    their counters after their own on_train_begin has reset them. A training that fits more
    than once (cnn_lstm_rgb: frozen, then fine-tuned) calls `begin_phase` before each later fit.
    With a `state`, history.csv is rewritten from it now and `CSVLogger` set to append.
    `started` is when this run's training began (time.perf_counter()).
    """

    def __init__(
        self, directory: Path, key: str, callbacks: Sequence[keras.callbacks.Callback],
        state: State | None, started: float,
    ) -> None:  # fmt: skip
        super().__init__()
        self.directory, self.key, self.callbacks = directory, key, list(callbacks)
        self._state = state
        doc = state.doc if state else {}
        self.history: dict[str, list[float]] = doc.get("history", {})
        self.phase, self.phase_start = doc.get("phase", 0), doc.get("phase_start", 0)
        self.stopped = bool(doc.get("stopped", False))
        self.seconds_before = float(doc.get("seconds", 0.0))
        self._started, self._epoch_started = started, time.perf_counter()  # perf_counter()s
        for callback in self.callbacks:
            if isinstance(callback, keras.callbacks.CSVLogger) and state:
                Path(callback.filename).write_text(doc["csv"], encoding="utf-8")
                callback.append = True
            if isinstance(callback, keras.callbacks.TensorBoard) and state:
                write_epoch_scalars(Path(callback.log_dir), self.history)

    @property
    def epochs_done(self) -> int:
        return len(self.history.get("loss", []))

    @property
    def seconds(self) -> float:
        """Seconds of training, over every run that led to this one."""
        return self.seconds_before + time.perf_counter() - self._started

    def initial_epoch(self, epochs: int) -> int:
        """Where the fit of the current phase, `epochs` long in all, starts."""
        return epochs if self.stopped else self.epochs_done

    def begin_phase(self, phase: int) -> None:
        if phase != self.phase:
            self.phase, self.phase_start, self.stopped = phase, self.epochs_done, False

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        state, self._state = self._state, None
        if state is None or state.doc["phase"] != self.phase:
            return
        optimizer = self.model.optimizer
        if not optimizer.built:  # Keras builds it when the first step is traced
            optimizer.build(self.model.trainable_variables)
        for variable, value in zip(self.model.variables, state.list("model"), strict=True):
            variable.assign(value)
        for variable, value in zip(optimizer.variables, state.list("optimizer"), strict=True):
            variable.assign(value)
        for callback, counters in zip(self.callbacks, state.doc["callbacks"], strict=True):
            for name, value in counters.items():
                setattr(callback, name, _unplain(value))
            if isinstance(callback, keras.callbacks.EarlyStopping) and state.doc["counts"]["best"]:
                callback.best_weights = state.list("best")
        python, numpy = state.doc["random"]
        random.setstate((python[0], tuple(python[1]), python[2]))
        np.random.set_state((numpy[0], np.array(numpy[1], dtype=np.uint32), *numpy[2:]))

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.stopped = False

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        seconds = time.perf_counter() - self._epoch_started
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(float(value))
        self.save(stopped=bool(self.model.stop_training))
        log.info("epoch %d done in %.1f s; training state saved in %s", epoch + 1, seconds,
                 self.directory)  # fmt: skip

    def save(self, stopped: bool) -> None:
        arrays: dict[str, np.ndarray] = {}
        counts = {}
        best = next((c.best_weights for c in self.callbacks
                     if isinstance(c, keras.callbacks.EarlyStopping)), None)  # fmt: skip
        lists = {"model": [v.numpy() for v in self.model.variables],
                 "optimizer": [v.numpy() for v in self.model.optimizer.variables],
                 "best": best or []}  # fmt: skip
        for prefix, values in lists.items():
            counts[prefix] = len(values)
            arrays |= {f"{prefix}{i}": np.asarray(v) for i, v in enumerate(values)}
        csv = next((Path(c.filename).read_text(encoding="utf-8") for c in self.callbacks
                    if isinstance(c, keras.callbacks.CSVLogger)), "")  # fmt: skip
        python, numpy = random.getstate(), np.random.get_state()
        doc = {
            "fingerprint": self.key,
            "epochs": self.epochs_done,
            "phase": self.phase,
            "phase_start": self.phase_start,
            "stopped": stopped,
            "seconds": self.seconds,
            "counts": counts,
            "callbacks": [
                {name: _plain(getattr(c, name)) for name in _counter_names(c)}
                for c in self.callbacks
            ],
            "history": self.history,
            "csv": csv,
            "random": [_plain(python), [numpy[0], numpy[1].tolist(), *_plain(list(numpy[2:]))]],
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.directory / STATE) as tmp:
            np.savez(tmp, doc=np.array(json.dumps(doc)), **arrays)

    def finish(self) -> None:
        """The training is complete and its outputs written: the state has served."""
        shutil.rmtree(self.directory, ignore_errors=True)
