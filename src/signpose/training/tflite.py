"""TFLite export and the check that the exported model predicts what the Keras model does."""

from __future__ import annotations

import os
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from signpose.files import atomic_path
from signpose.training import lite_runtime


def export_tflite(model: keras.Model, path: str | os.PathLike) -> dict[str, Any]:
    """Write a batch-1 .tflite of `model` (one sign at a time, as on a phone).

    Built-in ops are tried first, since Select-TF ops need the larger Flex runtime on device;
    batch 1 is what lets the LSTM's loop lower to built-ins. Falls back to Select-TF ops.
    """
    signature = [keras.InputSpec(shape=(1, *model.input_shape[1:]), dtype="float32")]
    builtins = [tf.lite.OpsSet.TFLITE_BUILTINS]
    with_select = [*builtins, tf.lite.OpsSet.SELECT_TF_OPS]
    attempts = (("builtins", builtins), ("select_tf_ops", with_select))
    error: Exception | None = None
    for ops_name, ops in attempts:
        try:
            with atomic_path(path) as tmp:
                model.export(
                    str(tmp),
                    format="litert",
                    verbose=False,
                    input_signature=signature,
                    target_spec={"supported_ops": ops},
                )
            return {"ops": ops_name, "bytes": os.path.getsize(path)}
        except Exception as e:  # the converter raises many kinds; try the next op set
            error = e
    raise RuntimeError(f"TFLite conversion failed: {error}") from error


def tflite_predict(path: str | os.PathLike, inputs: np.ndarray) -> np.ndarray:
    """Class probabilities from the .tflite, one instance at a time."""
    interpreter = lite_runtime.interpreter(path)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]["index"]
    out = interpreter.get_output_details()[0]["index"]
    probs = []
    for x in inputs:
        interpreter.set_tensor(inp, x[None].astype(np.float32))
        interpreter.invoke()
        probs.append(interpreter.get_tensor(out)[0].copy())
    return np.stack(probs) if probs else np.zeros((0, 0), np.float32)


def tflite_agreement(
    path: str | os.PathLike, model: keras.Model, inputs: np.ndarray, batch_size: int = 64
) -> float:
    """Fraction of `inputs` on which the TFLite and Keras models pick the same class."""
    if len(inputs) == 0:
        return float("nan")
    keras_top = model.predict(inputs, batch_size=batch_size, verbose=0).argmax(axis=-1)
    lite_top = tflite_predict(path, inputs).argmax(axis=-1)
    return float(np.mean(keras_top == lite_top))


def tflite_seconds_per_clip(
    path: str | os.PathLike, inputs: np.ndarray, n: int = 16, threads: int = 1
) -> float:
    """Median seconds of one clip through the .tflite on `threads` CPU threads (as on a phone)."""
    interpreter = lite_runtime.interpreter(path, threads)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]["index"]
    seconds = []
    for x in inputs[:n]:
        interpreter.set_tensor(inp, x[None].astype(np.float32))
        started = time.perf_counter()
        interpreter.invoke()
        seconds.append(time.perf_counter() - started)
    return float(np.median(seconds)) if seconds else float("nan")
