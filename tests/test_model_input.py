"""The model input of train.input and the recipe's parts (issue 19): NumPy against TensorFlow.

`training.data.make_batch` (training, evaluation, `signpose recognise` with Keras) and
`training.landmarks_model.model_input` (model_landmarks.tflite) compute the same input twice;
here they are held to 1e-4 on clips with lost hands and frames, for each switch of train.input.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from signpose import features, layout
from signpose.training import TrainConfig, augment, data

SEQ_LEN = 16


def clips(seed: int = 0, n: int = 4) -> list[np.ndarray]:
    """Raw feature rows: random postures, hands lost in places, one frame lost entirely, the
    left hand dominant in clip 1 and one hand-shape outlier (an edge-on hand) in clip 2."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        frames = int(rng.integers(5, 30))
        x = rng.normal(0, 0.5, (frames, layout.N_FEATURES)).astype(np.float32)
        x[rng.random(frames) < 0.3, layout.LEFT_HAND] = np.nan
        x[rng.random(frames) < 0.2, layout.RIGHT_HAND] = np.nan
        x[frames // 2] = np.nan
        if i == 1:
            x[:, layout.RIGHT_HAND] = np.nan
        if i == 2:
            x[1, layout.RIGHT_HAND.start + 27] = 40.0
        out.append(x)
    return out


# The features' own smoothing (features.ema_alpha), which the model's input undoes.
FEATURES_ALPHA = 0.2


def published(seqs: list[np.ndarray]) -> data.Split:
    """The clips as the features stage writes them: smoothed with FEATURES_ALPHA."""
    return data.split_of([features.ema(seq, FEATURES_ALPHA) for seq in seqs])


def stats_of(seqs: list[np.ndarray]) -> data.Stats:
    rows = np.concatenate(seqs)
    mean, std = np.nanmean(rows, axis=0), np.nanstd(rows, axis=0)
    return data.Stats(
        mean.astype(np.float32), (1 / np.maximum(std, 0.1)).astype(np.float32), FEATURES_ALPHA
    )


def config(**inputs) -> TrainConfig:
    return TrainConfig.from_dict({"seq_len": SEQ_LEN, "input": inputs})


VARIANTS = {
    "defaults": {},
    "acceleration": {"acceleration": True},
    "no velocity, no z": {"velocity": False, "use_z": False},
    "every5 face, no canonical hand": {"face": "every5", "canonical_hand": False},
    "smoothed, tight clip": {"ema_alpha": 0.5, "clip": 1.5},
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_numpy_and_the_tflite_graph_make_the_same_input(variant):
    import tensorflow as tf

    from signpose.training import landmarks_model

    cfg = config(**VARIANTS[variant])
    seqs = clips()
    stats = stats_of(seqs)
    split = published(seqs)
    data.resmooth(split, FEATURES_ALPHA, cfg.input["ema_alpha"])
    plain, flipped = data.make_inputs(split, stats, cfg), data.make_inputs(split, stats, cfg,
                                                                           flip=True)  # fmt: skip
    assert plain.shape == (len(seqs), SEQ_LEN, data.input_width(cfg))
    assert np.abs(plain).max() <= cfg.input["clip"]
    for i, seq in enumerate(seqs):
        x = tf.constant(seq)
        if cfg.input["ema_alpha"] < 1:
            x = landmarks_model._ema(x, cfg.input["ema_alpha"])
        graph = landmarks_model.model_input(x, stats, cfg).numpy()
        assert graph.shape == (2, SEQ_LEN, data.input_width(cfg))  # the clip, its mirror
        np.testing.assert_allclose(graph[0], plain[i], atol=1e-4, err_msg=f"{variant}, clip {i}")
        np.testing.assert_allclose(graph[1], flipped[i], atol=1e-4, err_msg=f"{variant}, {i}")


@pytest.mark.parametrize("alpha", [1.0, 0.3])
def test_the_models_smoothing_replaces_the_features_own(alpha):
    """train.input.ema_alpha 1.0 gives back the unsmoothed clip, and another alpha the clip
    as features.ema would have smoothed it, gaps included."""
    seqs = clips()
    split = published(seqs)
    data.resmooth(split, FEATURES_ALPHA, alpha)
    for seq, start, n in zip(seqs, split.offsets, split.lengths, strict=True):
        want = features.ema(seq, alpha) if alpha < 1 else seq
        np.testing.assert_allclose(split.bank[start : start + n], want, atol=2e-5)


def test_velocity_is_the_frame_difference_and_clip_bounds_an_edge_on_hand():
    cfg = config(face="every5", canonical_hand=False)
    seqs = clips()
    stats = stats_of(seqs)
    x = data.make_inputs(data.split_of(seqs), stats, cfg)
    width = len(data.input_columns(cfg))
    positions, velocity = x[..., :width], x[..., width : 2 * width]
    assert not velocity[:, 0].any()  # nothing before the first frame
    unclipped = np.abs(positions).max(axis=1) < cfg.input["clip"]  # (clip, column)
    diff = positions[:, 1:] - positions[:, :-1]
    both = (positions[:, 1:] != 0) & (positions[:, :-1] != 0) & unclipped[:, None]
    both &= np.abs(velocity[:, 1:]) < cfg.input["clip"]
    np.testing.assert_allclose(velocity[:, 1:][both], diff[both], atol=1e-5)
    shapes = x[..., 3 * width if cfg.input["acceleration"] else 2 * width :]
    assert np.abs(shapes).max() == cfg.input["clip"]  # the 40-unit outlier, clipped


def test_a_left_handed_clip_reads_as_its_right_handed_mirror():
    seqs = clips()
    cfg, stats = config(), stats_of(seqs)
    left = seqs[1]  # only the left hand is ever seen
    mirrored = augment.mirror(left)
    a = data.make_inputs(data.split_of([left]), stats, cfg)
    b = data.make_inputs(data.split_of([mirrored]), stats, cfg)
    np.testing.assert_array_equal(a, b)
    assert data.left_dominant(left[None])[0] and not data.left_dominant(mirrored[None])[0]


def test_the_face_the_model_reads():
    every5 = config(face="every5", velocity=False, use_z=False)
    parts = config(velocity=False)
    assert len(data.input_columns(every5)) == 33 * 3 + 42 * 2 + 94 * 2  # pose visibility kept
    assert len(data.input_columns(parts)) == 33 * 4 + 42 * 3 + len(layout.FACE_PARTS) * 3
    names = layout.column_names()
    assert not any(names[c].endswith("_z") for c in data.input_columns(every5))


@pytest.mark.parametrize(
    ("change", "message"),
    [({"ema_alpha": 0.5}, "train.input.ema_alpha=1.0, cfg has 0.5"),
     ({"clip": 2.0}, "train.input.clip="),
     ({"canonical_hand": False}, "train.input.canonical_hand=True, cfg has False")],
)  # fmt: skip
def test_evaluating_with_other_inputs_than_training_is_refused(change, message):
    """Same widths, other values: the evaluation names the input key that differs."""
    from types import SimpleNamespace

    from signpose.training.evaluation import _check_config

    trained = config().to_dict()
    model = SimpleNamespace(input_shape=(None, SEQ_LEN, data.input_width(config())))
    _check_config(trained, model, config())
    with pytest.raises(ValueError, match=message):
        _check_config(trained, model, config(**change))


# --- augmentations ---------------------------------------------------------------------------


def batch(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(6, 20, layout.N_FEATURES)).astype(np.float32)


def test_temporal_mask_blanks_one_run_of_real_frames():
    x = batch()
    valid = np.ones(x.shape[:2], bool)
    valid[0, 10:] = False  # padding
    augment.random_temporal_mask(x, np.random.default_rng(1), 1.0, valid)
    lost = np.isnan(x).all(axis=-1)
    assert lost.any(axis=1).all() and not lost[~valid].any()
    for row, real in zip(lost, valid.sum(axis=1), strict=True):
        run = np.flatnonzero(row)
        assert 1 <= len(run) <= max(1, real // 4) and (np.diff(run) == 1).all()
    untouched = batch()
    augment.random_temporal_mask(untouched, np.random.default_rng(1), 0.0, valid)
    assert not np.isnan(untouched).any()


def test_spatial_mask_hides_one_whole_part_in_every_frame():
    x = batch()
    augment.random_spatial_mask(x, np.random.default_rng(2), 1.0)
    parts = (layout.POSE, layout.LEFT_HAND, layout.RIGHT_HAND, layout.FACE)
    for clip in x:
        hidden = [np.isnan(clip[:, p]).all() for p in parts]
        assert sum(hidden) == 1 and np.isnan(clip).sum() == clip[:, parts[hidden.index(True)]].size


def test_affine_with_shear_keeps_the_nan_pattern_and_the_shape():
    x = batch()
    x[0, 3, layout.RIGHT_HAND] = np.nan
    x[2, :, layout.FACE] = np.nan
    before = np.isnan(x)
    augment.random_affine(x, np.random.default_rng(3), rotate_deg=30, scale=0.2, shift=0.05,
                          shear=0.2)  # fmt: skip
    assert x.shape == before.shape
    np.testing.assert_array_equal(np.isnan(x), before)


def test_shear_alone_moves_x_by_y():
    x = np.zeros((1, 1, layout.N_FEATURES), np.float32)
    xi, yi, _ = augment.coordinate_columns()
    x[..., yi] = 1.0
    augment.random_affine(x, np.random.default_rng(4), rotate_deg=0, scale=0, shift=0, shear=0.2)
    k = x[0, 0, xi]
    assert np.allclose(k, k[0]) and 0 < abs(k[0]) <= 0.2
    np.testing.assert_allclose(x[0, 0, yi], 1.0)


def test_mixup_labels_sum_to_one_and_inputs_mix_with_the_same_weight():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(8, 4, 3)).astype(np.float32)
    y = data.one_hot(rng.integers(0, 5, 8), 5)
    mixed_x, mixed_y = augment.mixup(x, y, np.random.default_rng(6), 0.2)
    assert mixed_x.shape == x.shape and mixed_y.shape == y.shape
    np.testing.assert_allclose(mixed_y.sum(axis=1), 1.0, rtol=1e-6)
    lam = augment.mixup(x, y, np.random.default_rng(6), 0.2)[1]  # the same draw again
    np.testing.assert_array_equal(lam, mixed_y)
    assert (mixed_y.max(axis=1) >= 0.5).all()


def test_a_training_batch_with_the_whole_recipe_is_finite_and_repeatable():
    seqs = clips()
    cfg, stats = config(), stats_of(seqs)
    split = data.split_of(seqs)
    a = data.make_batch(split, np.arange(4), stats, cfg, np.random.default_rng(7))
    b = data.make_batch(split, np.arange(4), stats, cfg, np.random.default_rng(7))
    assert a.shape == (4, SEQ_LEN, data.input_width(cfg)) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)


# --- the recipe's optimiser side ------------------------------------------------------------


def test_warmup_then_cosine_schedule_values():
    from signpose.training.models import WarmupCosine, learning_rate_schedule

    cfg = TrainConfig.from_dict({"epochs": 10, "warmup_epochs": 2, "learning_rate": 0.01})
    schedule = learning_rate_schedule(cfg, steps_per_epoch=5)
    assert isinstance(schedule, WarmupCosine)
    assert (schedule.warmup_steps, schedule.total_steps) == (10, 50)
    lr = {step: float(schedule(step)) for step in (0, 4, 9, 10, 30, 50, 80)}
    assert lr[0] == pytest.approx(0.001) and lr[4] == pytest.approx(0.005)
    assert lr[9] == pytest.approx(0.01) and lr[10] == pytest.approx(0.01)
    assert lr[30] == pytest.approx(0.005, rel=1e-5)  # half-way through the decay
    assert lr[50] == pytest.approx(0.0, abs=1e-9) and lr[80] == pytest.approx(0.0, abs=1e-9)
    again = WarmupCosine.from_config(schedule.get_config())
    assert float(again(37)) == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi * 27 / 40)))
    plateau = TrainConfig.from_dict({"lr_schedule": "plateau", "learning_rate": 0.01})
    assert learning_rate_schedule(plateau, 5) == 0.01


def test_a_nan_loss_stops_training_with_one_line():
    import keras

    from signpose.training.fit import StopOnNaN

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.ones((8, 3), np.float32)
    x[5] = np.inf
    y = data.one_hot(np.zeros(8, int), 2)
    with pytest.raises(FloatingPointError) as err:
        model.fit(
            x, y, batch_size=4, epochs=2, callbacks=[StopOnNaN()], verbose=0, shuffle=False
        )  # row 5 in the second batch, always
    message = str(err.value)
    assert "\n" not in message
    assert message == ("training stopped: the loss became nan at epoch 1, batch 2; lower "
                       "train.learning_rate or train.input.clip")  # fmt: skip
