"""Training input pipeline (issue #6): does tf.data keep the model fed on CPU?

    .venv/bin/python benchmarks/training_input.py [--clips 400] [--batch 32 64] [--threads N]
                                                  [--steps 10] [--repeats 2] [--json FILE]

Writes --clips synthetic feature files of WLASL shape (30-120 frames, median about 60, 540
columns, lost hands and frames as NaN) in the workflow's layout (features/<video_id>.npy, plus
stats/global_stats.npz made by the workflow's own code) in a temporary directory. Then, for both
model types at their default (WLASL) sizes, 64 frames per clip and each batch size, it times
  model      one ready batch, fed again and again through the same `fit` machinery;
and, for each input pipeline,
  input      the pipeline alone: batches per second, nothing consuming them;
  train      the model fed by the pipeline, as in training;
with these pipelines:
  memory+overlap  what training uses: every clip loaded once into an in-memory bank, batches
                  built (resampled, augmented, normalised) by a parallel map and prefetched;
  memory, serial  the same batches, built one at a time when the model asks for them;
  disk+overlap    no cache: every batch reads its clips' .npy files again, parallel + prefetch;
  disk, serial    no cache, no overlap: a plain training loop that reads files per batch.
data share = (time to make one batch) / (time of one training step); stall share = (train step
time - model step time) / train step time, i.e. what the input side really costs. The goal of
the issue is a data share below 10% on CPU. Every figure is the best of --repeats runs of
--steps steps after a warm-up. Prints a table and writes JSON (and the table as Markdown next
to it). About 10 minutes on two cores with the defaults.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from provenance import save

from signpose import layout, stats
from signpose.training import TrainConfig, data, pipeline
from signpose.training.config import MODEL_TYPES
from signpose.training.fit import measure_throughput
from signpose.training.rgb import RGB_MODEL_TYPE

SEQ_LEN = 64
GLOSSES = 100
JSON_NAME = "signpose-training-input.json"
FEATURE_MODELS = [m for m in MODEL_TYPES if m != RGB_MODEL_TYPE]  # rgb_input.py times the other


def write_clips(root: Path, n: int, seed: int = 0) -> tuple[list[tuple[str, str]], Path]:
    """n feature files under root/features and train-only stats under root/stats."""
    rng = np.random.default_rng(seed)
    (root / "features").mkdir(parents=True)
    items = []
    for i in range(n):
        frames = int(np.clip(rng.lognormal(np.log(60), 0.35), 30, 120))
        x = np.cumsum(rng.normal(0, 0.02, (frames, layout.N_FEATURES)), axis=0)
        x[rng.random(frames) < 0.3, layout.LEFT_HAND] = np.nan
        x[rng.random(frames) < 0.1, layout.RIGHT_HAND] = np.nan
        x[rng.random(frames) < 0.03] = np.nan
        path = root / "features" / f"bench{i:05d}.npy"
        np.save(path, x.astype(np.float32))
        items.append((str(path), f"gloss{i % GLOSSES:03d}"))
    stats_path = root / "stats" / "global_stats.npz"
    stats_path.parent.mkdir()
    clips = {Path(path).stem: path for path, _ in items}
    # Random walks, not smoothed: nothing for the model's own smoothing to undo.
    stats.write_stats(stats.global_stats(clips, layout.N_FEATURES, 1.0), stats_path)
    return items, stats_path


def from_disk(split: data.Split, st: data.Stats, cfg: TrainConfig, overlap: bool):
    """The training pipeline, except that each batch loads its clips' files again."""
    index = {str(label): int(label) for label in np.unique(split.labels)}

    def batch_fn(idx: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        items = [(split.paths[i], str(split.labels[i])) for i in idx]
        loaded = data.load_split(items, index)
        return data.make_batch(loaded, np.arange(len(idx)), st, cfg, rng)

    return pipeline.train_dataset(split, st, cfg, overlap=overlap, batch_fn=batch_fn)


PIPELINES = {
    "memory+overlap": pipeline.train_dataset,
    "memory, serial": lambda split, st, cfg: pipeline.train_dataset(split, st, cfg, False),
    "disk+overlap": lambda split, st, cfg: from_disk(split, st, cfg, True),
    "disk, serial": lambda split, st, cfg: from_disk(split, st, cfg, False),
}


def table(rows: list[dict]) -> str:
    head = "| model | batch | pipeline | input steps/s | model steps/s | train steps/s |"
    head += " data share | stall share |"
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['batch_size']} | {r['pipeline']} | {r['input_steps_per_s']:.1f}"
            f" | {r['model_steps_per_s']:.2f} | {r['train_steps_per_s']:.2f}"
            f" | {100 * r['data_share']:.1f}% | {100 * r['stall_share']:.1f}% |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=400)
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--models", nargs="+", choices=FEATURE_MODELS, default=FEATURE_MODELS)
    parser.add_argument("--pipelines", nargs="+", choices=PIPELINES, default=list(PIPELINES))
    parser.add_argument("--threads", type=int, default=0, help="0: every core TF sees")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, default=Path(tempfile.gettempdir()) / JSON_NAME)
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="signpose-train-bench-") as tmp:
        items, stats_path = write_clips(Path(tmp), args.clips)
        for model_type in args.models:
            for batch in args.batch:
                # Default (WLASL-size) knobs of each model: no `model` section given.
                options = {"model_type": model_type, "seq_len": SEQ_LEN, "batch_size": batch}
                cfg = TrainConfig.from_dict(options, threads=args.threads)
                started = time.perf_counter()
                chosen = {name: PIPELINES[name] for name in args.pipelines}
                figures = measure_throughput(
                    items, stats_path, cfg, args.steps, args.repeats, chosen
                )
                print(f"{model_type} batch {batch}: {time.perf_counter() - started:.0f} s",
                      flush=True)  # fmt: skip
                for name, pipe in figures.pop("pipelines").items():
                    rows.append({"model": model_type, "pipeline": name, **figures, **pipe})
    result = {
        "command": " ".join(["benchmarks/training_input.py", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "clips": args.clips,
        "seq_len": SEQ_LEN,
        "features": layout.N_FEATURES,
        "rows": rows,
    }
    markdown = table(rows)
    print(markdown)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    save(args.json, "training_input", result)
    args.json.with_suffix(".md").write_text(markdown + "\n")
    print(f"wrote {args.json} and {args.json.with_suffix('.md')}")


if __name__ == "__main__":
    main()
