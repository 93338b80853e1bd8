"""Running .tflite models with LiteRT (ai-edge-litert), without importing TensorFlow.

`ai_edge_litert.interpreter.Interpreter` replaces the deprecated `tf.lite.Interpreter`; it is a
small package of its own, so `signpose recognise --tflite` starts without TensorFlow.
"""

from __future__ import annotations

import os

import numpy as np

from signpose.layout import POSE_POINTS


def interpreter(path: str | os.PathLike, threads: int | None = None):
    """A LiteRT interpreter of the .tflite at `path` (None threads: LiteRT's default)."""
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(path), num_threads=threads)


class LandmarksInterpreter:
    """model_landmarks.tflite, loaded once; `predict` for one clip's raw landmarks."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        self.runner = interpreter(path, threads).get_signature_runner()

    def predict(self, pose) -> np.ndarray:
        """Class probabilities of one clip's pose-format Holistic pose."""
        return self.predict_landmarks(*pose_landmarks(pose))

    def predict_landmarks(
        self, landmarks: np.ndarray, visibility: np.ndarray, size: tuple[int, int]
    ) -> np.ndarray:
        out = self.runner(
            landmarks=np.asarray(landmarks, np.float32),
            visibility=np.asarray(visibility, np.float32),
            image_size=np.asarray(size, np.float32),
        )
        return out["probabilities"]


def pose_landmarks(pose) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """A pose-format Holistic pose as the model's inputs: what MediaPipe gave, per frame.

    pose-format keeps x and y in pixels and z as MediaPipe's raw value; the pose component's
    confidence is the landmarks' visibility.
    """
    w, h = pose.header.dimensions.width, pose.header.dimensions.height
    points = np.asarray(pose.body.data.filled(0)[:, 0], np.float32) / np.float32([w, h, 1])
    visibility = np.asarray(pose.body.confidence[:, 0, :POSE_POINTS], np.float32)
    return points, visibility, (w, h)
