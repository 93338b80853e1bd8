"""The two recognisers, as Keras functional models over (seq_len, features) inputs.

Inputs are normalised features with 0 wherever nothing was detected. Only trailing all-zero
frames are masked (padding), never frames in the middle: cuDNN's LSTM rejects masks that are
not right-padded, and a frame where the tracker lost the signer is itself information.
Both models end in a softmax, so `predict` and the TFLite export give class probabilities.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import layers, ops

from signpose import layout
from signpose.training.config import TrainConfig
from signpose.training.data import input_width

_PACKAGE = "signpose"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PaddingMask(layers.Layer):
    """Pass inputs through; mask the trailing all-zero frames (the first frame is always kept).

    Keeping the first frame means a clip with no detections at all is never fully masked,
    which both cuDNN and masked pooling would reject or turn into NaN.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        # A new tensor (not `inputs` itself), so Keras attaches the mask to this output only.
        return ops.where(ops.expand_dims(self.compute_mask(inputs), -1), inputs, 0.0)

    def compute_mask(self, inputs, previous_mask=None):
        seen = ops.cast(ops.any(ops.not_equal(inputs, 0.0), axis=-1), "int32")
        # A frame is real if it, or any frame after it, holds data.
        after = ops.flip(ops.cumsum(ops.flip(seen, axis=1), axis=1), axis=1)
        first = ops.expand_dims(ops.equal(ops.arange(ops.shape(inputs)[1]), 0), 0)
        return ops.logical_or(ops.greater(after, 0), first)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaskedDepthwiseConv1D(layers.Layer):
    """Depthwise temporal convolution that does not read padded frames; causal if asked."""

    def __init__(self, kernel_size: int, causal: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kernel_size, self.causal = kernel_size, causal
        self.supports_masking = True
        self.conv = layers.DepthwiseConv1D(
            kernel_size, padding="valid" if causal else "same", use_bias=False
        )

    def build(self, input_shape) -> None:
        steps = None if input_shape[1] is None else input_shape[1] + self._pad()
        self.conv.build((input_shape[0], steps, input_shape[2]))

    def _pad(self) -> int:
        return self.kernel_size - 1 if self.causal else 0

    def call(self, inputs, mask=None):
        x = inputs
        if mask is not None:
            x = x * ops.expand_dims(ops.cast(mask, x.dtype), -1)
        if self.causal:
            x = ops.pad(x, [[0, 0], [self._pad(), 0], [0, 0]])
        return self.conv(x)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kernel_size": self.kernel_size, "causal": self.causal}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class EfficientChannelAttention(layers.Layer):
    """ECA: gate channels by a 1-D conv over their (masked) time averages."""

    def __init__(self, kernel_size: int = 5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kernel_size = kernel_size
        self.supports_masking = True
        self.conv = layers.Conv1D(1, kernel_size, padding="same", use_bias=False)

    def build(self, input_shape) -> None:
        self.conv.build((input_shape[0], input_shape[-1], 1))

    def call(self, inputs, mask=None):
        if mask is None:
            pooled = ops.mean(inputs, axis=1)
        else:
            m = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
            pooled = ops.sum(inputs * m, axis=1) / ops.maximum(ops.sum(m, axis=1), 1.0)
        gate = ops.sigmoid(ops.squeeze(self.conv(ops.expand_dims(pooled, -1)), -1))
        return inputs * ops.expand_dims(gate, 1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kernel_size": self.kernel_size}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LateDropout(layers.Layer):
    """Dropout that only starts after `start_step` training steps.

    From the 2023 Kaggle ISLR winner: heavy dropout before the classifier helps generalisation
    but slows early learning, so the model first learns without it.
    """

    def __init__(self, rate: float, start_step: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rate, self.start_step = rate, start_step
        self.supports_masking = True
        self.dropout = layers.Dropout(rate)

    def build(self, input_shape) -> None:
        self.step = self.add_weight(
            shape=(), initializer="zeros", dtype="int64", trainable=False, name="step"
        )

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        active = ops.greater_equal(self.step, self.start_step)
        self.step.assign_add(1)
        return ops.where(active, self.dropout(inputs, training=True), inputs)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "start_step": self.start_step}


def _stochastic_depth(rate: float) -> layers.Layer:
    # One draw per sample: drops the whole residual branch, as in the Kaggle winner.
    return layers.Dropout(rate, noise_shape=(None, 1, 1))


def _conv_block(x, dim: int, knobs: dict[str, Any]):
    skip = x
    x = layers.Dense(dim * knobs["expand"], activation="swish")(x)
    x = MaskedDepthwiseConv1D(knobs["kernel_size"], causal=knobs["causal"])(x)
    x = layers.BatchNormalization(momentum=0.95)(x)
    if knobs["eca"]:
        x = EfficientChannelAttention()(x)
    x = layers.Dense(dim)(x)
    x = _stochastic_depth(knobs["dropout"])(x)
    return layers.Add()([x, skip])


def _transformer_block(x, dim: int, knobs: dict[str, Any]):
    skip = x
    y = layers.BatchNormalization(momentum=0.95)(x)
    y = layers.MultiHeadAttention(
        knobs["heads"], key_dim=max(1, dim // knobs["heads"]), dropout=knobs["attn_dropout"]
    )(y, y)
    x = layers.Add()([skip, _stochastic_depth(knobs["dropout"])(y)])
    skip = x
    y = layers.BatchNormalization(momentum=0.95)(x)
    y = layers.Dense(dim * knobs["expand"], activation="swish", use_bias=False)(y)
    y = layers.Dense(dim, use_bias=False)(y)
    return layers.Add()([skip, _stochastic_depth(knobs["dropout"])(y)])


def build_transformer(
    seq_len: int,
    n_classes: int,
    knobs: dict[str, Any],
    steps_per_epoch: int = 1,
    width: int = layout.N_FEATURES,
) -> keras.Model:
    """Conv1D + transformer hybrid after the 2023 Kaggle ISLR winner (hoyso48), from scratch."""
    dim = knobs["dim"]
    inputs = keras.Input((seq_len, width), name="features")
    x = PaddingMask()(inputs)
    x = layers.Dense(dim, use_bias=False, name="stem")(x)
    x = layers.BatchNormalization(momentum=0.95, name="stem_bn")(x)
    for _ in range(knobs["depth"]):
        for _ in range(knobs["conv_per_block"]):
            x = _conv_block(x, dim, knobs)
        x = _transformer_block(x, dim, knobs)
    x = layers.Dense(dim * 2, name="top")(x)
    x = layers.GlobalAveragePooling1D()(x)
    start = knobs["late_dropout_epoch"] * steps_per_epoch
    x = LateDropout(knobs["late_dropout"], start_step=start)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="transformer")


def build_lstm(
    seq_len: int, n_classes: int, knobs: dict[str, Any], width: int = layout.N_FEATURES
) -> keras.Model:
    """Per-frame embedding ("static": hand shape, pose) + stacked LSTM ("dynamic": movement).

    The head sees both the LSTM's final state and the masked mean of the frame embeddings, so
    signs told apart by a held hand shape and signs told apart by motion share one model.
    """
    inputs = keras.Input((seq_len, width), name="features")
    x = PaddingMask()(inputs)
    frames = layers.Dense(knobs["frame_dim"], activation="gelu", name="frame_embed")(x)
    frames = layers.Dropout(knobs["dropout"])(frames)
    static = layers.GlobalAveragePooling1D(name="static_pool")(frames)
    x = frames
    for i in range(knobs["layers"]):
        last = i == knobs["layers"] - 1
        x = layers.LSTM(knobs["units"], return_sequences=not last, name=f"lstm_{i}")(x)
        x = layers.Dropout(knobs["dropout"])(x)
    x = layers.Concatenate(name="static_dynamic")([x, static])
    x = layers.Dense(knobs["units"], activation="gelu", name="head")(x)
    x = layers.Dropout(knobs["dropout"])(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="lstm")


BACKBONE = "backbone"


def build_cnn_lstm_rgb(
    n_classes: int, knobs: dict[str, Any], weights: str | None = None
) -> keras.Model:
    """The training guide's RGB model: MobileNetV2 on each frame, then two LSTMs.

    Per frame (TimeDistributed): MobileNetV2 without its top, global average pooling and a
    dense head; then LSTM -> batch norm -> dropout, twice, dense, dense, softmax. Input: uint8
    frames (frames, size, size, 3), rescaled to MobileNetV2's [-1, 1] inside the model. A
    pretrained backbone starts frozen (`set_backbone_trainable` unfreezes it for fine-tuning).
    `weights`: "imagenet", a weights file, or None (see rgb.backbone_weights).
    """
    frames, size = knobs["frames"], knobs["image_size"]
    backbone = keras.applications.MobileNetV2(
        input_shape=(size, size, 3), alpha=knobs["alpha"], include_top=False,
        weights=weights, pooling="avg",
    )  # fmt: skip
    # Pretrained weights start frozen (the guide); random ones train from the start: a frozen
    # random MobileNetV2 gives features of about 1e-12 whatever the image.
    backbone.trainable = weights is None
    per_frame = keras.Sequential(
        [keras.Input((size, size, 3)), layers.Rescaling(1 / 127.5, offset=-1.0), backbone,
         layers.Dense(knobs["frame_dim"], activation="relu", name="frame_head")],
        name=BACKBONE,
    )  # fmt: skip
    inputs = keras.Input((frames, size, size, 3), name="frames")
    x = layers.TimeDistributed(per_frame, name="per_frame")(inputs)
    lstms = (knobs["lstm_units"], knobs["lstm2_units"])
    for i, units in enumerate(lstms):
        x = layers.LSTM(units, return_sequences=i < len(lstms) - 1, name=f"lstm_{i}")(x)
        x = layers.BatchNormalization(name=f"lstm_{i}_bn")(x)
        x = layers.Dropout(knobs["dropout"])(x)
    for i, units in enumerate((knobs["dense_units"], knobs["dense2_units"])):
        x = layers.Dense(units, activation="relu", name=f"dense_{i}")(x)
        x = layers.Dropout(knobs["dropout"])(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="cnn_lstm_rgb")


def set_backbone_trainable(model: keras.Model, trainable: bool) -> None:
    """Freeze or unfreeze MobileNetV2 (its batch norms stay in inference mode when frozen)."""
    per_frame = model.get_layer("per_frame").layer
    next(
        layer for layer in per_frame.layers if isinstance(layer, keras.Model)
    ).trainable = trainable


def build_model(
    cfg: TrainConfig, n_classes: int, steps_per_epoch: int = 1, weights: str | None = None
) -> keras.Model:
    """The model of `cfg.model_type`; `weights` only concerns cnn_lstm_rgb's backbone."""
    if cfg.model_type == "cnn_lstm_rgb":
        return build_cnn_lstm_rgb(n_classes, cfg.knobs, weights)
    width = input_width(cfg)
    if cfg.model_type == "lstm":
        return build_lstm(cfg.seq_len, n_classes, cfg.knobs, width)
    return build_transformer(cfg.seq_len, n_classes, cfg.knobs, steps_per_epoch, width)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Sparse categorical crossentropy with label smoothing (Keras' sparse loss has none)."""

    def __init__(self, n_classes: int, label_smoothing: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_classes, self.label_smoothing = n_classes, label_smoothing

    def call(self, y_true, y_pred):
        one_hot = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), self.n_classes)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, label_smoothing=self.label_smoothing
        )

    def get_config(self) -> dict[str, Any]:
        cfg = {"n_classes": self.n_classes, "label_smoothing": self.label_smoothing}
        return {**super().get_config(), **cfg}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak` over `warmup_steps`, then cosine decay to 0 at
    `total_steps` (the Kaggle ISLR recipe). A function of the optimizer's iteration count
    only, so a training resumed with the optimizer's state continues it exactly."""

    def __init__(self, peak: float, warmup_steps: int, total_steps: int) -> None:
        self.peak, self.warmup_steps, self.total_steps = peak, warmup_steps, total_steps

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = float(max(self.warmup_steps, 1))
        decay = float(max(self.total_steps - self.warmup_steps, 1))
        progress = ops.clip((step - self.warmup_steps) / decay, 0.0, 1.0)
        cosine = 0.5 * self.peak * (1.0 + ops.cos(math.pi * progress))
        rising = self.peak * ops.minimum((step + 1.0) / warmup, 1.0)
        return ops.where(step < self.warmup_steps, rising, cosine)

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps}  # fmt: skip


def learning_rate_schedule(cfg: TrainConfig, steps_per_epoch: int) -> float | WarmupCosine:
    """cfg.learning_rate, as the cosine schedule over the epoch budget when cfg asks for it."""
    if cfg.lr_schedule != "cosine":
        return cfg.learning_rate
    total = cfg.epochs * steps_per_epoch
    warmup = min(cfg.warmup_epochs * steps_per_epoch, total)
    return WarmupCosine(cfg.learning_rate, warmup, total)


def compile_model(
    model: keras.Model, cfg: TrainConfig, n_classes: int, steps_per_epoch: int,
    learning_rate: float | None = None,
) -> None:  # fmt: skip
    """cfg's optimizer (AdamW or Adam) and schedule, crossentropy, top-1 and top-5 accuracy.

    `learning_rate` (cnn_lstm_rgb's fine-tuning phase) is a constant rate instead of cfg's
    schedule. Landmark models learn from one-hot labels (mixup mixes them, see
    pipeline.train_dataset); cnn_lstm_rgb from class ids.
    """
    rate = learning_rate or learning_rate_schedule(cfg, steps_per_epoch)
    if cfg.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(rate, weight_decay=cfg.weight_decay)
    else:
        optimizer = keras.optimizers.Adam(rate)
    k = min(5, n_classes)
    if cfg.model_type == "cnn_lstm_rgb":
        loss: keras.losses.Loss = keras.losses.SparseCategoricalCrossentropy()
        if cfg.label_smoothing > 0:
            loss = SmoothedSparseCrossentropy(n_classes, cfg.label_smoothing)
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                   keras.metrics.SparseTopKCategoricalAccuracy(k=k, name="top5")]  # fmt: skip
    else:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
        metrics = [keras.metrics.CategoricalAccuracy(name="accuracy"),
                   keras.metrics.TopKCategoricalAccuracy(k=k, name="top5")]  # fmt: skip
    model.compile(
        # No XLA for the RGB model: compiling MobileNetV2's backward pass on a CPU made the
        # first fine-tuning epoch take 610 s against 2 s for the next one.
        jit_compile=False if cfg.model_type == "cnn_lstm_rgb" else "auto",
        optimizer=optimizer,
        loss=loss,
        metrics=metrics,
    )
