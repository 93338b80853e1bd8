"""Training configuration: a typed view of the config's `train` section.

Every default and bound of that section is written in config/schema.yaml; `TrainConfig.from_dict`
has the schema check and fill it (`signpose.config.with_defaults`), so nothing here restates one.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from signpose.config import schema, with_defaults

MODEL_TYPES: tuple[str, ...] = tuple(
    schema()["properties"]["train"]["properties"]["model_type"]["enum"]
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything `train` and `evaluate` need to know: one field per key of the schema's `train`
    section (tests/test_training.py checks that they match), plus `threads`.

    To add a key, add it to the schema (type, default, bounds, description) and a field here.
    `augment` holds every augmentation knob and `model` one section of knobs per model type;
    `knobs` is the section of `model_type`.
    """

    model_type: str
    seq_len: int
    length_mode: str
    batch_size: int
    epochs: int
    learning_rate: float
    optimizer: str
    weight_decay: float
    lr_schedule: str
    warmup_epochs: int
    patience: int
    seed: int
    augment: dict[str, Any]
    model: dict[str, dict[str, Any]]
    tflite: bool
    label_smoothing: float
    tta_flip: bool
    input: dict[str, Any]
    std_floor: float
    hand_shape: bool
    deterministic: bool
    confusion_top_n: int
    tensorboard_histograms: bool
    compare: list[str]
    seeds: list[int]
    # Not a config key: CPU threads TensorFlow and tf.data may use (the workflow passes the
    # rule's `threads`, so a job stays within its SLURM allocation); 0 lets TensorFlow use
    # every core it sees.
    threads: int

    @property
    def knobs(self) -> dict[str, Any]:
        """The knobs of the model actually trained (`model[model_type]`)."""
        return self.model[self.model_type]

    @classmethod
    def from_dict(cls, options: dict[str, Any] | None = None, threads: int = 0) -> TrainConfig:
        """From the config's `train` section, or any part of it: checked against the schema,
        every default filled in. Raises `jsonschema.ValidationError` naming the key."""
        return cls(**with_defaults(options, section="train"), threads=threads)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# The train job's time beyond its epochs: starting TensorFlow, reading the features, the final
# save and plots; and the margin on the per-clip figure (epochs vary by 15 % on one machine).
_STARTUP_MIN, _MARGIN, _FLOOR_MIN = 10, 1.25, 60


def train_minutes(resources: dict[str, Any], train: dict[str, Any], n_train: int) -> int:
    """The train job's time limit (a SLURM job's `runtime`), in minutes.

    `resources.train_runtime` when set; otherwise estimated from the dataset: every epoch
    (with cnn_lstm_rgb's fine-tuning ones) over the `n_train` train clips at
    `resources.train_ms_per_clip`, plus a margin and the start-up, at least an hour and at
    most `resources.train_runtime_max`. A training cut off by the limit resumes from its last
    epoch when rerun, so the estimate need not be generous.
    """
    if resources["train_runtime"] is not None:
        return resources["train_runtime"]
    epochs = train["epochs"]
    if train["model_type"] == "cnn_lstm_rgb":
        epochs += train["model"]["cnn_lstm_rgb"]["fine_tune_epochs"]
    minutes = epochs * n_train * resources["train_ms_per_clip"] / 60_000 * _MARGIN
    return min(max(_FLOOR_MIN, math.ceil(minutes) + _STARTUP_MIN), resources["train_runtime_max"])
