"""Training configuration: a typed view of the config's `train` section.

Every default and bound of that section is written in config/schema.yaml; `TrainConfig.from_dict`
has the schema check and fill it (`signpose.config.with_defaults`), so nothing here restates one.
"""

from __future__ import annotations

import dataclasses
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
