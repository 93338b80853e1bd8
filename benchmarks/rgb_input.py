"""cnn_lstm_rgb's input: frames decoded in the input pipeline, or a per-instance frames target?

    .venv/bin/python benchmarks/rgb_input.py --clips results/demo/clips            # 30 x 224
    .venv/bin/python benchmarks/rgb_input.py --clips results/demo/clips --frames 8 --size 64

For up to --n clips: seconds to decode and sample one clip (what the pipeline does per clip),
seconds to np.load the same frames from a stored .npy (what a frames target would give), the
bytes of that .npy (disk per 1,000 clips), and training-step time of the model at this size
with each input (tf.data, parallel map, prefetch; --batch clips per step; the model's own step
on a ready batch for reference). Planning cost of a frames target is not measured here: it is
one more job per instance, priced from the per-job figures of benchmarks/planning.py and
overhead.py (benchmarks/README.md). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from signpose import tombstone  # noqa: E402
from signpose.training import rgb  # noqa: E402


def median_seconds(fn, items) -> float:
    times = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def seconds_per_step(ds, steps: int) -> float:
    batches = iter(ds.repeat())
    next(batches)  # warm-up: worker threads, first calls
    started = time.perf_counter()
    for _ in range(steps):
        next(batches)
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", required=True, help="a results/<dataset>/clips folder")
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    clips = [p for p in sorted(Path(args.clips).glob("*.mp4")) if tombstone.read(p) is None]
    clips = [str(p) for p in clips[: args.n]]
    out: dict = {"clips": len(clips), "frames": args.frames, "size": args.size}
    out["decode_s_per_clip"] = median_seconds(
        lambda p: rgb.sample_frames(p, args.frames, args.size), clips
    )
    with tempfile.TemporaryDirectory() as tmp:
        stored = []
        for i, p in enumerate(clips):
            path = Path(tmp) / f"{i}.npy"
            np.save(path, rgb.sample_frames(p, args.frames, args.size))
            stored.append(str(path))
        out["load_s_per_clip"] = median_seconds(np.load, stored)
        out["npy_bytes_per_clip"] = os.path.getsize(stored[0])
        out["npy_gb_per_1000_clips"] = out["npy_bytes_per_clip"] * 1000 / 1e9
        out |= training_steps(args, clips, stored)
    print(json.dumps(out, indent=1))


def training_steps(args, clips: list[str], stored: list[str]) -> dict:
    import tensorflow as tf

    from signpose.training.config import TrainConfig
    from signpose.training.fit import limit_threads
    from signpose.training.models import build_model, compile_model

    limit_threads(args.threads)
    knobs = {"frames": args.frames, "image_size": args.size, "weights": "none"}
    options = {"model_type": "cnn_lstm_rgb", "batch_size": args.batch}
    cfg = TrainConfig.from_dict(options | {"model": {"cnn_lstm_rgb": knobs}}, args.threads)
    model = build_model(cfg, 10)
    compile_model(model, cfg, 10, 1)
    labels = np.arange(len(clips), dtype=np.int32) % 10
    split = rgb.ClipSplit(clips, labels, {})
    decoded = rgb.clip_dataset(split, args.frames, args.size, args.batch, seed=0,
                               threads=args.threads)  # fmt: skip

    def load(i):
        return np.load(stored[int(i)])

    def from_disk(i):
        x = tf.numpy_function(load, [i], tf.uint8)
        x.set_shape([args.frames, args.size, args.size, 3])
        return x, tf.gather(labels, i)

    options = tf.data.Options()
    options.threading.private_threadpool_size = args.threads
    loaded = (tf.data.Dataset.range(len(stored)).shuffle(len(stored), seed=0)
              .map(from_disk, num_parallel_calls=tf.data.AUTOTUNE).batch(args.batch)
              .prefetch(tf.data.AUTOTUNE).with_options(options))  # fmt: skip
    ready = tf.data.Dataset.from_tensors(next(iter(decoded))).repeat()
    figures = {}
    for name, ds in (("model_only", ready), ("decode_in_pipeline", decoded),
                     ("frames_target", loaded)):  # fmt: skip
        model.fit(ds.repeat(), steps_per_epoch=1, epochs=1, verbose=0)  # warm-up, tracing
        started = time.perf_counter()
        model.fit(ds.repeat(), steps_per_epoch=args.steps, epochs=1, verbose=0)
        figures[f"train_s_per_step_{name}"] = (time.perf_counter() - started) / args.steps
        figures[f"input_s_per_batch_{name}"] = seconds_per_step(ds, args.steps)
    return figures


if __name__ == "__main__":
    main()
