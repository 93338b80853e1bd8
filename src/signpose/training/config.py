"""Training configuration: one typed dataclass, built from the workflow's config dict."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

MODEL_TYPES = ("lstm", "transformer", "cnn_lstm_rgb")
LENGTH_MODES = ("resample", "crop_pad")

AUGMENT_DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "mirror_prob": 0.5,  # chance of a horizontal flip (left-handed signers)
    "rotate_deg": 10.0,  # max |rotation| in the x-y plane (about the torso centre), degrees
    "scale": 0.1,  # max relative scale change
    "shift": 0.05,  # max |shift| per axis, in torso-scaled units
    "time_stretch": 0.2,  # max relative speed change (and mid-clip warp)
    "frame_dropout": 0.05,  # chance that a frame is blanked (treated as undetected)
}

MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "lstm": {
        "frame_dim": 256,  # per-frame ("static") embedding width
        "units": 256,  # LSTM width
        "layers": 2,  # stacked LSTM layers
        "dropout": 0.3,
    },
    "transformer": {
        "dim": 192,
        "depth": 2,  # groups of (conv_per_block Conv1D blocks + 1 transformer block)
        "conv_per_block": 3,
        "heads": 4,
        "kernel_size": 17,
        "expand": 2,
        "dropout": 0.2,  # stochastic-depth style dropout inside the blocks
        "attn_dropout": 0.2,
        "late_dropout": 0.8,  # dropout before the classifier, switched on late
        "late_dropout_epoch": 10,  # epoch at which late dropout starts
        "causal": True,  # causal depthwise convolutions
        "eca": True,  # efficient channel attention in the conv blocks
    },
    # The training guide's RGB model (models.build_cnn_lstm_rgb); defaults: config/schema.yaml.
    "cnn_lstm_rgb": {
        "frames": 30,
        "image_size": 224,
        "alpha": 1.0,
        "weights": "imagenet",
        "frame_dim": 256,
        "lstm_units": 256,
        "lstm2_units": 128,
        "dense_units": 256,
        "dense2_units": 128,
        "dropout": 0.3,
        "fine_tune_epochs": 0,
        "fine_tune_learning_rate": 1e-5,
    },
}

_BOOL_KNOBS = {"enabled", "causal", "eca"}
# Knobs that are probabilities or relative amounts, so must lie in [0, 1).
_FRACTION_KNOBS = {"mirror_prob", "scale", "time_stretch", "frame_dropout"}
_FRACTION_KNOBS |= {"dropout", "attn_dropout", "late_dropout"}
_INT_KNOBS = {"frame_dim", "units", "layers", "dim", "depth", "conv_per_block", "heads"}
_INT_KNOBS |= {"kernel_size", "expand", "late_dropout_epoch", "frames", "image_size"}
_INT_KNOBS |= {"lstm_units", "lstm2_units", "dense_units", "dense2_units", "fine_tune_epochs"}
_STR_KNOBS = {"weights"}


def _as_dict(name: str, value: Any) -> dict[str, Any]:
    # An empty YAML section (`model:` with nothing under it) reads as None.
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a mapping, got {value!r}")
    return dict(value)


def _merge(kind: str, defaults: dict[str, Any], given: dict[str, Any] | None) -> dict[str, Any]:
    given = _as_dict(kind, given)
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"unknown {kind} key(s) {unknown}; allowed: {sorted(defaults)}")
    merged = {**defaults, **given}
    for key, value in merged.items():
        merged[key] = _coerce(f"{kind}.{key}", value, _knob_type(key))
        _check_range(f"{kind}.{key}", key, merged[key])
    return merged


def _check_range(name: str, key: str, value: Any) -> None:
    if isinstance(value, bool | str):
        return
    if key in _FRACTION_KNOBS:
        if not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        return
    low = 1 if key in _INT_KNOBS and key not in ("late_dropout_epoch", "fine_tune_epochs") else 0
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")


def _knob_type(key: str) -> type:
    if key in _BOOL_KNOBS:
        return bool
    if key in _STR_KNOBS:
        return str
    return int if key in _INT_KNOBS else float


def _coerce(name: str, value: Any, kind: type) -> Any:
    # PyYAML reads "1e-3" as a string (YAML 1.1 wants a dot), so accept numeric strings.
    try:
        if kind is str:
            if not isinstance(value, str):
                raise TypeError
            return value
        if kind is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        # Numbers are finite: a NaN would pass every range check below.
        if isinstance(value, bool) or not math.isfinite(float(value)):
            raise TypeError
        if kind is int:
            if float(value) != int(float(value)):
                raise TypeError
            return int(float(value))
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {kind.__name__}, got {value!r}") from None


@dataclass
class TrainConfig:
    """Everything `train` and `evaluate` need to know; defaults suit WLASL on one GPU.

    `augment` is merged over `AUGMENT_DEFAULTS` and each section of `model` over the
    `MODEL_DEFAULTS` of its type, so after construction they hold every knob; `knobs` is the
    section of `model_type`.
    """

    model_type: str = "lstm"
    seq_len: int = 64
    length_mode: str = "resample"
    batch_size: int = 32
    epochs: int = 100
    learning_rate: float = 1e-3
    patience: int = 15
    seed: int = 42
    augment: dict[str, Any] = field(default_factory=dict)
    # One section of knobs per model type, so that `model_type` alone switches the model.
    model: dict[str, Any] = field(default_factory=dict)
    tflite: bool = True
    label_smoothing: float = 0.0
    # Floor on the per-column std used to normalise, in torso-scale units. Columns that are
    # near-constant by construction (shoulders in a torso-centred frame) would otherwise be
    # blown up, and a 10-degree rotation of them would become a 100-sigma input.
    std_floor: float = 0.1
    # Also feed each hand's shape (wrist-relative, in hand sizes, mirrored to one hand), see
    # data.hand_shapes: what tells most signs apart, and what small data cannot learn alone.
    hand_shape: bool = True
    deterministic: bool = True  # tf op determinism: repeatable CPU runs, slower on GPU
    confusion_top_n: int = 30  # classes shown in confusion_matrix.png
    # CPU threads TensorFlow and tf.data may use (the workflow passes the rule's `threads`, so
    # a job stays within its SLURM allocation); 0 lets TensorFlow use every core it sees.
    threads: int = 0
    # The schema holds its default (false); TensorBoard writes weight histograms every epoch.
    tensorboard_histograms: bool = False
    # Further model types trained on the same split and seed into model/<type>/ (the workflow
    # reads it; schema default []).
    compare: list = field(default_factory=list)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.name not in ("augment", "model", "compare"):
                setattr(self, f.name, _coerce(f.name, getattr(self, f.name), _field_type(f)))
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {self.model_type!r}")
        if self.length_mode not in LENGTH_MODES:
            raise ValueError(f"length_mode must be one of {LENGTH_MODES}, got {self.length_mode!r}")
        for name in ("seq_len", "batch_size", "epochs", "patience", "confusion_top_n"):
            if getattr(self, name) < (2 if name == "seq_len" else 1):
                raise ValueError(f"{name} is too small: {getattr(self, name)}")
        for name in ("seed", "threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.std_floor < 0:
            raise ValueError(f"std_floor must be >= 0, got {self.std_floor}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        self.compare = list(self.compare or [])
        if not set(self.compare) <= set(MODEL_TYPES):
            raise ValueError(f"compare must list model types {MODEL_TYPES}, got {self.compare}")
        self.augment = _merge("augment", AUGMENT_DEFAULTS, self.augment)
        sections = _as_dict("model", self.model)
        unknown = sorted(set(sections) - set(MODEL_TYPES))
        if unknown:
            raise ValueError(
                f"unknown model key(s) {unknown}: `model` holds one section of knobs per model"
                f" type, {list(MODEL_TYPES)} (e.g. model: {{transformer: {{dim: 64}}}})"
            )
        self.model = {
            kind: _merge(f"model.{kind}", MODEL_DEFAULTS[kind], sections.get(kind))
            for kind in MODEL_TYPES
        }

    @property
    def knobs(self) -> dict[str, Any]:
        """The knobs of the model actually trained (`model[model_type]`)."""
        return self.model[self.model_type]

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> TrainConfig:
        """Build from a plain dict (the workflow's `train:` config); unknown keys are errors."""
        d = dict(d or {})
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - allowed)
        if unknown:
            raise ValueError(
                f"unknown training config key(s) {unknown}; allowed: {sorted(allowed)}"
            )
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _field_type(f: dataclasses.Field) -> type:
    # Annotations are strings under `from __future__ import annotations`.
    return {"str": str, "int": int, "float": float, "bool": bool}[str(f.type)]
