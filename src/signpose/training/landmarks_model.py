"""A TFLite model that needs nothing but MediaPipe: raw Holistic landmarks in, probabilities out.

`model.tflite` takes features that are already normalised; an app would have to reimplement the
torso normalisation, smoothing, resampling, hand shapes and train-only statistics to use it.
`model_landmarks.tflite` does all of that inside its graph, the same arithmetic as
`signpose.features` (feature_matrix, ema, trim of empty ends) and `signpose.training.data`
(sample_positions, gather_frames, canonical_hand, model_features), written once more in TensorFlow
ops because a graph cannot call NumPy. The agreement test holds the two to the same numbers.

Inputs (any number of frames F; P = 576 points, 586 with refined faces, pose-format's order:
pose 33, face 468|478, left hand 21, right hand 21, pose world 33):
    landmarks   [F, P, 3] float32  MediaPipe's normalised x, y (0..1 of the image) and z;
                                   NaN or 0 where a part was not detected
    visibility  [F, 33]   float32  the pose landmarks' visibility (0 where no body)
    image_size  [2]       float32  width and height of the frames, in pixels
Output: probabilities [n_classes] float32, in labels.json order.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from signpose import features, layout
from signpose.files import atomic_path
from signpose.posefile import REQUIRED_COMPONENTS
from signpose.training import data
from signpose.training.config import TrainConfig

POSE_POINTS, HAND_POINTS = layout.POSE_POINTS, layout.HAND_POINTS
_NAN = float("nan")


def _isnan(x: tf.Tensor) -> tf.Tensor:
    # x != x is NaN's definition, and a TFLite builtin (IsNan is not).
    return tf.not_equal(x, x)


def _median(v: tf.Tensor) -> tf.Tensor:
    """np.median of a 1-D tensor (mean of the two middle values when the count is even)."""
    n = tf.size(v)
    top = tf.math.top_k(v, k=n, sorted=True).values  # descending
    return (top[(n - 1) // 2] + top[n // 2]) / 2


def _found(points: tf.Tensor) -> tf.Tensor:
    """(F,) bool: a component is detected in a frame when any of its values is non-zero."""
    return tf.reduce_any(tf.not_equal(points, 0.0), axis=[1, 2])


def _torso_frame(body: tf.Tensor, has: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """features.torso_frame: per-frame centre (frames without a body borrow the nearest), scale."""
    torso = tf.gather(body, [features.L_SHOULDER, features.R_SHOULDER, features.L_HIP,
                             features.R_HIP], axis=1)  # fmt: skip
    centre = tf.reduce_mean(torso, axis=1)
    idx = tf.cast(tf.reshape(tf.where(has), [-1]), tf.int32)
    k = tf.size(idx)
    frames = tf.range(tf.shape(body)[0])
    pos = tf.cumsum(tf.cast(has, tf.int32), exclusive=True)  # searchsorted(idx, frames)
    safe_k = tf.maximum(k, 1)
    after = tf.gather(idx, tf.clip_by_value(pos, 0, safe_k - 1))
    before = tf.gather(idx, tf.clip_by_value(pos - 1, 0, safe_k - 1))
    nearest = tf.where(frames - before < after - frames, before, after)
    xy = tf.gather(body, idx)[..., :2]

    def dist(a: int, b: int) -> tf.Tensor:
        return tf.norm(xy[:, a] - xy[:, b], axis=1)

    mid_sh = (xy[:, features.L_SHOULDER] + xy[:, features.R_SHOULDER]) / 2
    mid_hip = (xy[:, features.L_HIP] + xy[:, features.R_HIP]) / 2
    spans = [dist(features.L_SHOULDER, features.R_SHOULDER), dist(features.L_HIP, features.R_HIP),
             tf.norm(mid_sh - mid_hip, axis=1)]  # fmt: skip
    scale = tf.cond(k > 0, lambda: _median(tf.concat(spans, axis=0)), lambda: tf.constant(_NAN))
    scale = tf.where(scale > 0, scale, _NAN)
    centre = tf.cond(
        k > 0,
        lambda: tf.gather(centre, nearest),
        lambda: tf.fill(tf.shape(centre), _NAN),
    )
    return centre, scale


def _ema(x: tf.Tensor, alpha: float) -> tf.Tensor:
    """features.ema: restarts after a gap (NaN) instead of bridging it."""
    n = tf.shape(x)[0]

    def step(t, prev, out):
        blend = alpha * x[t] + (1 - alpha) * prev
        row = tf.where(_isnan(prev), x[t], blend)
        return t + 1, row, tf.concat([out, row[None]], axis=0)

    _, _, out = tf.while_loop(
        lambda t, prev, out: t < n,
        step,
        (tf.constant(1), x[0], x[:1]),
        shape_invariants=(tf.TensorShape([]), x.shape[1:], tf.TensorShape([None, x.shape[1]])),
    )
    return out


def feature_graph(
    landmarks: tf.Tensor, visibility: tf.Tensor, image_size: tf.Tensor, face_points: int,
    opts: features.FeatureOptions,
) -> tf.Tensor:  # fmt: skip
    """features.extract's feature matrix (F', 540) from raw landmarks, in TensorFlow ops."""
    lm = tf.where(_isnan(landmarks), 0.0, landmarks)
    # pose-format's pixels (x*W, y*H), and z times the width as features.parts_from_pose does.
    px = lm * tf.stack([image_size[0], image_size[1], image_size[0]])
    vis = tf.where(_isnan(visibility), 0.0, visibility)
    face_end = POSE_POINTS + face_points
    body, face = px[:, :POSE_POINTS], px[:, POSE_POINTS:face_end]
    left = px[:, face_end : face_end + HAND_POINTS]
    right = px[:, face_end + HAND_POINTS : face_end + 2 * HAND_POINTS]
    found = {"body": _found(body), "left": _found(left), "right": _found(right),
             "face": _found(face)}  # fmt: skip
    face = tf.gather(face, list(layout.FACE_INDICES), axis=1)
    if opts.trim_empty_ends:  # features.nonempty_span; a clip with nothing at all stays whole
        active = tf.reshape(tf.where(found["body"] | found["left"] | found["right"]), [-1])
        n = tf.shape(px, out_type=tf.int64)[0]
        start = tf.cond(tf.size(active) > 0, lambda: active[0], lambda: tf.constant(0, tf.int64))
        stop = tf.cond(tf.size(active) > 0, lambda: active[-1] + 1, lambda: n)
        body, vis, left, right, face = (p[start:stop] for p in (body, vis, left, right, face))
        found = {k: v[start:stop] for k, v in found.items()}
    centre, scale = _torso_frame(body, found["body"])
    frames = tf.shape(body)[0]

    def norm(points: tf.Tensor, seen: tf.Tensor) -> tf.Tensor:
        out = (points - centre[:, None, :]) / scale
        return tf.where(seen[:, None, None], out, _NAN)

    pose = tf.concat(
        [norm(body, found["body"]), tf.where(found["body"][:, None], vis, _NAN)[..., None]], axis=2
    )
    cols = [norm(p, found[k]) for p, k in ((left, "left"), (right, "right"), (face, "face"))]
    matrix = tf.concat([tf.reshape(c, [frames, -1]) for c in (pose, *cols)], axis=1)
    matrix = tf.reshape(matrix, [-1, layout.N_FEATURES])  # a static width for the loop
    return _ema(matrix, opts.ema_alpha)


def fixed_length(x: tf.Tensor, seq_len: int, mode: str) -> tf.Tensor:
    """data.sample_positions + data.gather_frames (no augmentation) of one sequence."""
    last = tf.cast(tf.shape(x)[0] - 1, tf.float32)
    u = tf.linspace(0.0, 1.0, seq_len)
    if mode == "resample":
        pos, valid = u * last, tf.ones([seq_len], tf.bool)
    else:
        span = float(seq_len - 1)
        pos = tf.maximum(0.0, (last - span) / 2) + u * span
        valid = pos <= last + 1e-6
    p = tf.clip_by_value(pos, 0.0, last)
    i0 = tf.floor(p)
    i1 = tf.minimum(i0 + 1, last)
    w = (p - i0)[:, None]
    a, b = tf.gather(x, tf.cast(i0, tf.int32)), tf.gather(x, tf.cast(i1, tf.int32))
    nearest = tf.where(w < 0.5, a, b)
    out = (b - a) * w + a
    out = tf.where(_isnan(out), nearest, out)
    return tf.where(valid[:, None], out, _NAN)


def hand_shapes(x: tf.Tensor) -> tf.Tensor:
    """data.hand_shapes of a (batch, frames, 540) tensor."""
    shapes = []
    for part, sign in ((layout.LEFT_HAND, -1.0), (layout.RIGHT_HAND, 1.0)):
        hand = tf.reshape(x[..., part], [-1, x.shape[1], HAND_POINTS, 3])
        hand = hand * tf.constant([sign, 1.0, 1.0])
        hand = hand - hand[..., :1, :]
        size = tf.norm(hand[..., data._MIDDLE_MCP, :2], axis=-1)[..., None, None]
        hand = hand / tf.where(size > 1e-6, size, _NAN)
        shapes.append(tf.reshape(hand, [-1, x.shape[1], data.HAND_SHAPE_WIDTH // 2]))
    left, right = shapes
    seen = [tf.reduce_sum(tf.cast(~_isnan(s[..., 0]), tf.int32), axis=-1) for s in shapes]
    left_first = (seen[0] > seen[1])[:, None, None]
    first = tf.where(left_first, left, right)
    second = tf.where(left_first, right, left)
    return tf.concat([first, second], axis=-1)


def mirror(x: tf.Tensor) -> tf.Tensor:
    """augment.mirror: swap left and right columns, negate every x."""
    sign = [1.0] * layout.N_FEATURES
    for c in layout.x_columns():
        sign[c] = -1.0
    return tf.gather(x, layout.mirror_permutation(), axis=-1) * tf.constant(sign)


def _differences(x: tf.Tensor) -> tf.Tensor:
    """data._differences along axis 1."""
    return tf.concat([tf.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], axis=1)


def model_input(x: tf.Tensor, stats: data.Stats, cfg: TrainConfig) -> tf.Tensor:
    """data.make_batch (no augmentation) of one (frames, 540) sequence: (batch, seq_len, width),
    the sequence and (cfg.tta_flip) its mirror image."""
    knobs = cfg.input
    x = fixed_length(x, cfg.seq_len, cfg.length_mode)[None]
    if knobs["canonical_hand"]:
        seen = [tf.reduce_sum(tf.cast(~_isnan(x[..., part.start]), tf.int32))
                for part in (layout.LEFT_HAND, layout.RIGHT_HAND)]  # fmt: skip
        x = tf.where(seen[0] > seen[1], mirror(x), x)
    if cfg.tta_flip:
        x = tf.concat([x, mirror(x)], axis=0)
    columns = data.input_columns(cfg)
    z = (tf.gather(x, columns, axis=-1) - stats.mean[columns]) * stats.inv_std[columns]
    parts = [z]
    if knobs["velocity"] or knobs["acceleration"]:
        velocity = _differences(z)
        if knobs["velocity"]:
            parts.append(velocity)
        if knobs["acceleration"]:
            parts.append(_differences(velocity))
    if cfg.hand_shape:
        shapes = hand_shapes(x)
        if not knobs["use_z"]:
            shapes = tf.reshape(shapes, [-1, cfg.seq_len, 2 * HAND_POINTS, 3])[..., :2]
            shapes = tf.reshape(shapes, [-1, cfg.seq_len, 4 * HAND_POINTS])
        parts.append(shapes)
    out = tf.concat(parts, axis=-1)
    out = tf.where(_isnan(out), 0.0, out)
    return tf.clip_by_value(out, -knobs["clip"], knobs["clip"])


def holistic_points(face_points: int) -> int:
    """Points per frame of a pose-format Holistic pose (pose world last, unused)."""
    return POSE_POINTS + face_points + 2 * HAND_POINTS + POSE_POINTS


def face_points(refine_face_landmarks: bool) -> int:
    """Face-mesh points of a Holistic pose: 478 with the refined iris, else 468."""
    return REQUIRED_COMPONENTS["FACE_LANDMARKS"][int(refine_face_landmarks)]


def input_signature(face_points: int) -> list[tf.TensorSpec]:
    return [
        tf.TensorSpec([None, holistic_points(face_points), 3], tf.float32, name="landmarks"),
        tf.TensorSpec([None, POSE_POINTS], tf.float32, name="visibility"),
        tf.TensorSpec([2], tf.float32, name="image_size"),
    ]


def export_landmarks_tflite(
    model: keras.Model, stats: data.Stats, cfg: TrainConfig,
    opts: features.FeatureOptions, face_points: int, path: str | os.PathLike,
) -> dict[str, Any]:  # fmt: skip
    """Write model_landmarks.tflite, built-in ops only (no Flex runtime needed on a device).

    The route Keras' own LiteRT export takes (ExportArchive, SavedModel, converter), so the
    model's variables are initialised and frozen the same way as in model.tflite.
    """

    def probabilities(landmarks, visibility, image_size):
        x = feature_graph(landmarks, visibility, image_size, face_points, opts)
        if cfg.input["ema_alpha"] < 1.0:  # data.smooth: the model's own smoothing on top
            x = _ema(x, cfg.input["ema_alpha"])
        inputs = model_input(x, stats, cfg)
        # With cfg.tta_flip the batch is the clip and its mirror image: their mean, as
        # data.predict_split takes it.
        return {"probabilities": tf.reduce_mean(model(inputs, training=False), axis=0)}

    with tempfile.TemporaryDirectory() as saved:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serve", probabilities, input_signature=input_signature(face_points))
        archive.write_out(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            flat = converter.convert()
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(flat)
    return {"bytes": len(flat), "points": holistic_points(face_points)}


def export_with_chain(
    chain_path: str | os.PathLike, model: keras.Model, stats: data.Stats, cfg: TrainConfig,
    path: str | os.PathLike,
) -> dict[str, Any]:  # fmt: skip
    """model_landmarks.tflite with the pose and feature options the training run recorded."""
    from signpose.recognise import read_chain

    chain = read_chain(chain_path)
    face = face_points(chain.pose.refine_face_landmarks)
    return export_landmarks_tflite(model, stats, cfg, chain.features, face, path)
