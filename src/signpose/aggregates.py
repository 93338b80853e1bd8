"""The jobs that read the whole dataset: tables, lexicons, statistics, training, pictures."""

from __future__ import annotations

import json
import logging
import os

import numpy as np

from signpose import layout, lexicon, metadata, paraphrase, plots, stats, summary, tables
from signpose.files import write_text_atomic

log = logging.getLogger("signpose")


def tables_job(dataset_cfg: dict, qc_paths: list[str], variations_json: str,
               out: dict[str, str]) -> None:  # fmt: skip
    variations = paraphrase.read_variations(variations_json)
    df = tables.instances_table(metadata.load(dataset_cfg), qc_paths, variations)
    tables.write_csv(df, out["instances"])
    tables.write_csv(tables.failures_table(df), out["failures"])
    funnel = tables.funnel_table(df)
    tables.write_csv(funnel, out["funnel"])
    names = layout.column_names()
    write_text_atomic(out["columns"], "column,name\n" + "".join(
        f"{i},{n}\n" for i, n in enumerate(names)))  # fmt: skip
    log.info("funnel:\n%s", funnel.to_string(index=False))


def lexicon_job(instances_csv: str, target: str, split: str, poses_dir: str, spoken: str,
                signed: str, priority: int, variations: bool) -> None:  # fmt: skip
    kept = tables.kept(tables.read_instances(instances_csv), split)
    lexicon_dir = os.path.dirname(target)
    text = lexicon.lexicon_csv(kept, poses_dir, lexicon_dir, spoken, signed, priority,
                               variations)  # fmt: skip
    write_text_atomic(target, text)
    log.info("%s: %d kept instances", split, len(kept))


def feature_items(instances_csv: str, split: str, features_dir: str) -> list[tuple[str, str]]:
    """(npy path, gloss) of the kept instances of one split."""
    kept = tables.kept(tables.read_instances(instances_csv), split)
    return [(f"{features_dir}/{r.video_id}.npy", r.gloss) for r in kept.itertuples()]


def stats_job(instances_csv: str, target: str, features_dir: str) -> None:
    train = tables.kept(tables.read_instances(instances_csv), "train")
    clips = {v: f"{features_dir}/{v}.npy" for v in train["video_id"]}
    result = stats.global_stats(clips, layout.N_FEATURES)
    stats.write_stats(result, target)
    log.info("stats over %d train clips, %d frames", len(clips), int(result["lengths"].sum()))


def train_job(instances_csv: str, stats_path: str, model_path: str, features_dir: str,
              options: dict) -> None:  # fmt: skip
    from signpose import training

    cfg = training.TrainConfig.from_dict(options)
    summary = training.train(
        feature_items(instances_csv, "train", features_dir),
        feature_items(instances_csv, "val", features_dir),
        stats_path,
        os.path.dirname(model_path),
        cfg,
    )
    log.info("training: %s", json.dumps(summary))


def evaluate_job(instances_csv: str, stats_path: str, model_path: str, features_dir: str,
                 options: dict) -> None:  # fmt: skip
    from signpose import training

    cfg = training.TrainConfig.from_dict(options)
    items = {s: feature_items(instances_csv, s, features_dir) for s in ("val", "test")}
    metrics = training.evaluate(os.path.dirname(model_path), items, stats_path, cfg)
    log.info("metrics: %s", json.dumps(metrics)[:2000])


def dataset_summary_job(instances_csv: str, target: str, dataset_name: str, split_note: str,
                        groups: list[str]) -> None:  # fmt: skip
    instances = tables.read_instances(instances_csv)
    write_text_atomic(target, summary.dataset_html(instances, dataset_name, split_note, groups))


def metrics_summary_job(metrics_json: str, instances_csv: str, target: str,
                        groups: list[str]) -> None:  # fmt: skip
    with open(metrics_json, encoding="utf-8") as f:
        metrics = json.load(f)
    page = summary.metrics_html(metrics, tables.read_instances(instances_csv), groups)
    write_text_atomic(target, page)


def qc_plots_job(instances_csv: str, target: str) -> None:
    plots.save(plots.qc_figure(tables.read_instances(instances_csv)), target)


def group_plots_job(instances_csv: str, target: str, groups: list[str]) -> None:
    plots.save(plots.group_figure(tables.read_instances(instances_csv), groups), target)


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
