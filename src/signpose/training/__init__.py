"""Training and evaluation of isolated-sign recognisers on signpose features.

Public API (what the workflow scripts call):

    TrainConfig.from_dict(train_section, threads=0)
    train(train_items, val_items, stats_path, TrainOutputs(...), cfg) -> dict
    evaluate(Trained(...), split_items, stats_path, EvaluateOutputs(...), cfg) -> dict
    measure_throughput(train_items, stats_path, cfg, steps=20, repeats=3, datasets=None) -> dict
    export_tflite(model, path) -> dict;  tflite_agreement(path, model, inputs) -> float

Items are (npy_path, gloss) pairs; every path read or written is the caller's choice. Only
`config` is imported eagerly: the rest pulls in TensorFlow (seconds), which a Snakefile
validating its config should not pay for.
"""

from __future__ import annotations

import importlib
from typing import Any

from signpose.training.config import TrainConfig

_LAZY = {
    "train": "signpose.training.fit",
    "TrainOutputs": "signpose.training.fit",
    "measure_throughput": "signpose.training.fit",
    "evaluate": "signpose.training.evaluation",
    "Trained": "signpose.training.evaluation",
    "EvaluateOutputs": "signpose.training.evaluation",
    "export_tflite": "signpose.training.tflite",
    "tflite_agreement": "signpose.training.tflite",
}

__all__ = ["TrainConfig", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
