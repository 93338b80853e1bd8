"""`signpose recognise`: a trained model folder applied to new videos.

A new video goes through exactly the chain the workflow ran for the training data, by the same
library functions with the options the training run recorded next to its model (pipeline.json,
written by `record_chain` in the train job): `clips.make_clip` (trim, crop, scale, encode),
`holistic.estimate` (MediaPipe Holistic), `features.extract` (normalisation, smoothing, QC),
then the model input of `training.data` with the train-only statistics and the label map.

TensorFlow is imported only when a model is loaded (`Recogniser`), never by the folder checks.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from signpose import clips, features, holistic
from signpose.files import atomic_path, write_text_atomic
from signpose.posefile import read_pose, write_pose
from signpose.tombstone import Tombstone
from signpose.training.config import TrainConfig

# The files of a model folder that recognising reads, as the workflow's train and evaluate
# rules name them (workflow/rules/train.smk; the demo-clip tests run that workflow).
MODEL_FILE = "model.keras"
LABELS_FILE = "labels.json"
CONFIG_FILE = "train_config.json"
# The options of every step before training (clip, pose, features) and the train-only
# statistics, recorded beside the model by the train job.
CHAIN_FILE = "pipeline.json"
STATS_FILE = "global_stats.npz"
# Raw MediaPipe landmarks in (signpose.training.landmarks_model), written by evaluate.
LANDMARKS_TFLITE_FILE = "model_landmarks.tflite"

# pipeline.json says what it is, so a folder from another version is refused by name.
FORMAT = "signpose-model"
FORMAT_VERSION = 2  # 2: the model reads train.input (velocity, face subset, ...)
# The pose rule runs with one thread; x264's output depends on its thread count.
CLIP_THREADS = 1


class ModelFolderError(ValueError):
    """A model folder that cannot be used; the message is one line naming the folder."""


class VideoError(ValueError):
    """One video that cannot be recognised; the message is one line naming the video."""


def record_chain(
    chain: dict[str, Any],
    stats_path: str | os.PathLike,
    chain_target: str | os.PathLike,
    stats_target: str | os.PathLike,
) -> None:
    """Write what recognising a new video needs besides the model (the train job puts both in
    the model folder, as CHAIN_FILE and STATS_FILE).

    `chain` holds the workflow's `clip`, `pose` and `features` sections (schema-filled); the
    train-only statistics are copied, so the folder stands alone.
    """
    doc = {"format": FORMAT, "version": FORMAT_VERSION}
    doc |= {key: chain[key] for key in ("clip", "pose", "features")}
    write_text_atomic(chain_target, json.dumps(doc, indent=1, sort_keys=True) + "\n")
    with atomic_path(stats_target) as tmp:
        shutil.copyfile(stats_path, tmp)


@dataclass(frozen=True)
class Chain:
    """The options of every step before training, as a training run recorded them."""

    clip: clips.ClipOptions
    pose: holistic.HolisticOptions
    features: features.FeatureOptions


def read_chain(path: str | os.PathLike) -> Chain:
    """A recorded chain (CHAIN_FILE). Raises ModelFolderError for one from another version,
    ValueError/KeyError/TypeError for a damaged one."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    version = (doc.get("format"), doc.get("version"))
    if version != (FORMAT, FORMAT_VERSION):
        raise ModelFolderError(
            f"{Path(path).parent}: model folder from another version of signpose ({CHAIN_FILE} "
            f"says {version[0]!r} version {version[1]!r}; this one reads {FORMAT!r} version "
            f"{FORMAT_VERSION}): retrain it"
        )
    return Chain(
        clip=clips.ClipOptions(**doc["clip"]),
        pose=holistic.HolisticOptions(**doc["pose"]),
        features=features.FeatureOptions.from_config(doc["features"]),
    )


@dataclass(frozen=True)
class ModelFolder:
    """A model folder's recorded chain: every option a new video must be processed with."""

    path: Path
    chain: Chain
    train: TrainConfig
    labels: list[str]

    @property
    def stats_path(self) -> Path:
        return self.path / STATS_FILE


def open_model_folder(path: str | os.PathLike) -> ModelFolder:
    """Check a model folder and read its recorded options (no TensorFlow)."""
    from signpose.training import data

    folder = Path(path)
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: no such model folder")
    needed = (MODEL_FILE, LABELS_FILE, CONFIG_FILE, CHAIN_FILE, STATS_FILE)
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise ModelFolderError(
            f"{folder}: not a complete signpose model folder: {', '.join(missing)} missing "
            "(train it with this version of signpose)"
        )
    try:
        chain = read_chain(folder / CHAIN_FILE)
        trained = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        trained.pop("threads", None)  # recorded (the train job's), but not a config key
        return ModelFolder(
            path=folder,
            chain=chain,
            train=TrainConfig.from_dict(trained),
            labels=data.read_labels(folder / LABELS_FILE),
        )
    except ModelFolderError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        detail = f"{type(e).__name__}: {e}"
        raise ModelFolderError(f"{folder}: unreadable model folder: {detail}") from None


@dataclass(frozen=True)
class Landmarks:
    """One video after the workflow's per-instance steps: its pose and its features."""

    pose: Any  # pose_format.Pose
    features: np.ndarray  # (frames, 540) float32
    qc: dict[str, Any]


def video_landmarks(
    video: str | os.PathLike,
    folder: ModelFolder,
    start_s: float = 0.0,
    end_s: float | None = None,
    bbox: tuple[float, float, float, float] | None = None,
) -> Landmarks:
    """Clip, poses and features of one video, as the workflow's pose and features jobs make them.

    Raises VideoError (one line) for a missing, unreadable or empty video, a trim outside it,
    or a clip where the signer is not found well enough (with the detection ratios).
    """
    src = Path(video)
    if not src.is_file() or not os.access(src, os.R_OK):
        raise VideoError(f"{src}: no such readable file")
    with tempfile.TemporaryDirectory(prefix="signpose-recognise-") as tmp:
        clip = Path(tmp) / "clip.mp4"
        chain = folder.chain
        try:
            made = clips.make_clip(src, clip, start_s, end_s, bbox, chain.clip, CLIP_THREADS)
        except RuntimeError as e:  # ffmpeg gave up on a file it could open (names the file)
            raise VideoError(str(e)) from None
        if isinstance(made, Tombstone):
            raise VideoError(_failure(src, made))
        estimated = holistic.estimate(clip, chain.pose)
        if isinstance(estimated, Tombstone):
            raise VideoError(_failure(src, estimated))
        # Through the .pose file, as the features job reads it: the same numbers to the bit.
        write_pose(estimated, Path(tmp) / "clip.pose")
        pose = read_pose(Path(tmp) / "clip.pose")
    feats, qc = features.extract(pose, chain.features)
    if qc["failed"]:
        raise VideoError(f"{src}: signer not found well enough to recognise: {_ratios(qc)}")
    return Landmarks(pose, feats, qc)


def _failure(src: Path, tomb: Tombstone) -> str:
    # The clip is a temporary file: name the user's video instead, once.
    detail = tomb.detail.split(": ", 1)[-1] if tomb.detail.startswith("/") else tomb.detail
    return f"{src}: {detail} ({tomb.reason})"


def _ratios(qc: dict[str, Any]) -> str:
    return (
        f"body in {qc['body_ratio']:.0%} and a hand in {qc['hand_ratio']:.0%} of "
        f"{qc['frames']} frames, mean visibility {qc['mean_visibility']:.2f} "
        f"(fails {', '.join(qc['failed'])}; thresholds in the model's {CHAIN_FILE})"
    )


class Recogniser:
    """The model of a folder, loaded once; `probabilities` for one video's landmarks."""

    def __init__(self, folder: ModelFolder, tflite: bool = False) -> None:
        """`tflite`: use model_landmarks.tflite (raw landmarks in) instead of model.keras."""
        from signpose.training import rgb

        if rgb.is_rgb(folder.train):
            raise ModelFolderError(
                f"{folder.path}: a {folder.train.model_type} model; signpose recognise runs the "
                "landmark models (lstm, transformer)"
            )
        self.folder, self.tflite = folder, tflite
        if tflite:
            from signpose.training import lite_runtime

            path = folder.path / LANDMARKS_TFLITE_FILE
            if not path.is_file():
                raise ModelFolderError(
                    f"{folder.path}: no {LANDMARKS_TFLITE_FILE} (the evaluate step writes it "
                    "when train.tflite is on)"
                )
            self.lite = lite_runtime.LandmarksInterpreter(path)
            return
        import keras

        import signpose.training.models  # noqa: F401 - registers the custom layers
        from signpose.training import data

        self.stats = data.load_stats(folder.stats_path, folder.train.std_floor)
        self.model = keras.models.load_model(folder.path / MODEL_FILE, compile=False)

    def probabilities(self, marks: Landmarks) -> np.ndarray:
        from signpose.training import data

        if self.tflite:
            return self.lite.predict(marks.pose)
        cfg = self.folder.train
        split = data.split_of([marks.features])
        data.smooth(split, cfg.input["ema_alpha"])
        return data.predict_split(self.model.predict_on_batch, split, self.stats, cfg)[1][0]


def ranked(probs: np.ndarray, labels: list[str], k: int) -> list[dict[str, Any]]:
    """The k most probable glosses, ranked as evaluate ranks them."""
    from signpose.training import data

    return [{"gloss": labels[c], "probability": float(probs[c])} for c in data.top_k(probs, k)]
