"""The jobs that read the whole dataset: tables, lexicons, statistics, training, pictures."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from signpose import layout, lexicon, metadata, plots, stats, summary, tables
from signpose.files import write_text_atomic

log = logging.getLogger("signpose")


def tables_job(dataset_cfg: dict, qc_paths: list[str], out: dict[str, str]) -> None:
    df = tables.instances_table(metadata.load(dataset_cfg), qc_paths)
    tables.write_csv(df, out["instances"])
    tables.write_csv(tables.failures_table(df), out["failures"])
    funnel = tables.funnel_table(df)
    tables.write_csv(funnel, out["funnel"])
    names = layout.column_names()
    write_text_atomic(out["columns"], "column,name\n" + "".join(
        f"{i},{n}\n" for i, n in enumerate(names)))  # fmt: skip
    log.info("funnel:\n%s", funnel.to_string(index=False))


def lexicon_job(instances_csv: str, target: str, split: str, poses_dir: str, spoken: str,
                signed: str, priority: int) -> None:  # fmt: skip
    kept = tables.kept(tables.read_instances(instances_csv), split)
    lexicon_dir = os.path.dirname(target)
    text = lexicon.lexicon_csv(kept, poses_dir, lexicon_dir, spoken, signed, priority)
    write_text_atomic(target, text)
    log.info("%s: %d kept instances", split, len(kept))


def feature_items(instances_csv: str, split: str, features_dir: str) -> list[tuple[str, str]]:
    """(npy path, gloss) of the kept instances of one split."""
    kept = tables.kept(tables.read_instances(instances_csv), split)
    return [(f"{features_dir}/{r.video_id}.npy", r.gloss) for r in kept.itertuples()]


def stats_job(instances_csv: str, target: str, features_dir: str) -> None:
    paths = [p for p, _ in feature_items(instances_csv, "train", features_dir)]
    result = stats.global_stats(paths, layout.N_FEATURES)
    stats.write_stats(result, target)
    log.info("stats over %d train clips, %d frames", len(paths), int(result["lengths"].sum()))


def model_items(instances_csv: str, split: str, features_dir: str, clips_dir: str,
                cfg) -> list[tuple[str, str]]:  # fmt: skip
    """What the model of `cfg` reads of each kept instance: its features, or (cnn_lstm_rgb)
    its clip."""
    from signpose.training import rgb

    items = feature_items(instances_csv, split, features_dir)
    return rgb.clip_items(items, clips_dir) if rgb.is_rgb(cfg) else items


def train_job(instances_csv: str, stats_path: str, model_path: str, features_dir: str,
              options: dict, chain: dict | None, clips_dir: str) -> None:  # fmt: skip
    """Train; with `chain` (the clip, pose and features options), record it and the
    statistics beside the model: what `signpose recognise` reruns on new videos."""
    from signpose import recognise, training

    cfg = training.TrainConfig.from_dict(options)
    summary = training.train(
        model_items(instances_csv, "train", features_dir, clips_dir, cfg),
        model_items(instances_csv, "val", features_dir, clips_dir, cfg),
        stats_path,
        os.path.dirname(model_path),
        cfg,
    )
    if chain is not None:
        recognise.record_chain(os.path.dirname(model_path), chain, stats_path)
    log.info("training: %s", json.dumps(summary))


def evaluate_job(instances_csv: str, stats_path: str, model_path: str, features_dir: str,
                 options: dict, clips_dir: str) -> None:  # fmt: skip
    from signpose import training

    cfg = training.TrainConfig.from_dict(options)
    items = {s: model_items(instances_csv, s, features_dir, clips_dir, cfg)
             for s in ("val", "test")}  # fmt: skip
    metrics = training.evaluate(os.path.dirname(model_path), items, stats_path, cfg)
    log.info("metrics: %s", json.dumps(metrics)[:2000])


def dataset_summary_job(instances_csv: str, target: str, dataset_name: str) -> None:
    page = summary.dataset_html(tables.read_instances(instances_csv), dataset_name)
    write_text_atomic(target, page)


def metrics_summary_job(metrics_json: str, target: str,
                        runs: dict[str, tuple[str, str]] | None = None) -> None:  # fmt: skip
    """The evaluation page; `runs` (model type -> its metrics.json and train_summary.json)
    adds the table that compares the model types trained on the same split."""
    with open(metrics_json, encoding="utf-8") as f:
        metrics = json.load(f)
    compared = None
    if runs:
        compared = {kind: tuple(json.loads(Path(p).read_text(encoding="utf-8")) for p in paths)
                    for kind, paths in runs.items()}  # fmt: skip
    write_text_atomic(target, summary.metrics_html(metrics, compared))


def qc_plots_job(instances_csv: str, target: str) -> None:
    plots.save(plots.qc_figure(tables.read_instances(instances_csv)), target)


def skeletons_job(instances_csv: str, target: str, poses_dir: str, count: int, seed: int) -> None:
    from signpose.features import read_pose

    kept = tables.kept(tables.read_instances(instances_csv), "all")
    rng = np.random.default_rng(seed)
    chosen = kept.iloc[sorted(rng.choice(len(kept), min(count, len(kept)), replace=False))]
    poses, titles = [], []
    for r in chosen.itertuples():
        poses.append(read_pose(f"{poses_dir}/{r.video_id}.pose"))
        titles.append(f"{r.gloss} ({r.video_id}, {r.split})")
    plots.save(plots.skeleton_figure(poses, titles), target)
