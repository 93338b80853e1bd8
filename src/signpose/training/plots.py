"""Pictures of a training run. Agg canvas on a bare Figure: no pyplot state, no display needed."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from signpose.files import atomic_path


def _save(fig: Figure, path: str | os.PathLike) -> None:
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")


CURVES = (("loss", "loss"), ("accuracy", "top-1 accuracy"), ("top5", "top-5 accuracy"))


def training_curves(history: Mapping[str, Sequence[float]], path: str | os.PathLike) -> list[str]:
    """Loss, top-1 and top-5 accuracy per epoch, train and (when there is any) validation,
    labelled as the selection split it is (the checkpoint and early stopping watch it).

    Returns each panel's title and the curves drawn in it, e.g. "loss: train, val (selection)".
    """
    panels = []
    fig = Figure(figsize=(15, 4))
    for ax, (metric, title) in zip(fig.subplots(1, len(CURVES)), CURVES, strict=True):
        for key, label in ((metric, "train"), (f"val_{metric}", "val (selection)")):
            if history.get(key):
                values = list(history[key])
                ax.plot(range(1, len(values) + 1), values, marker=".", label=label)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
        panels.append(f"{title}: {', '.join(t.get_text() for t in ax.get_legend().get_texts())}")
    _save(fig, path)
    return panels


def placeholder(path: str | os.PathLike, message: str) -> None:
    """A picture that says why there is no picture, so the workflow's output always exists."""
    fig = Figure(figsize=(5, 2))
    fig.text(0.5, 0.5, message, ha="center", va="center")
    _save(fig, path)


def confusion_matrix(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    labels: Sequence[str],
    path: str | os.PathLike,
    top_n: int = 30,
    split_name: str = "",
) -> list[str]:
    """Row-normalised confusion matrix over the top_n most frequent true classes.

    With many classes (WLASL has up to 2,000) a full matrix is unreadable, so only the most
    frequent classes get rows and columns; predictions of any other class go to an "other"
    column, which keeps every row summing to 1. Returns the glosses shown.
    """
    n_classes = len(labels)
    counts = np.bincount(y_true, minlength=n_classes)
    present = np.flatnonzero(counts)
    # Most frequent first; ties by class id, so the picture is stable.
    shown = present[np.lexsort((present, -counts[present]))][:top_n]
    col_of = np.full(n_classes, len(shown), dtype=np.int64)
    col_of[shown] = np.arange(len(shown))
    has_other = len(shown) < n_classes
    cm = np.zeros((len(shown), len(shown) + int(has_other)))
    rows = np.full(n_classes, -1, dtype=np.int64)
    rows[shown] = np.arange(len(shown))
    keep = rows[y_true] >= 0
    cols = np.minimum(col_of[y_pred[keep]], cm.shape[1] - 1)
    np.add.at(cm, (rows[y_true[keep]], cols), 1)
    cm /= np.maximum(cm.sum(axis=1, keepdims=True), 1)

    names = [labels[c] for c in shown]
    size = max(4.0, 0.32 * cm.shape[1] + 2)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.subplots()
    image = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ticks = names + (["other"] if has_other else [])
    ax.set_xticks(range(len(ticks)), ticks, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    prefix = f"{split_name}: " if split_name else ""
    ax.set_title(f"{prefix}the {len(shown)} most frequent classes (rows sum to 1)")
    _save(fig, path)
    return names
