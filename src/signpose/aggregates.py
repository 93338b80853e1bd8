"""The jobs that read the whole dataset: tables, lexicons, statistics, training, pictures."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from signpose import layout, lexicon, metadata, paraphrase, plots, stats, summary, tables, tombstone
from signpose.download import mirror
from signpose.files import write_text_atomic

log = logging.getLogger("signpose")


def tables_job(dataset_cfg: dict, qc_paths: list[str], files: dict[str, str],
               variations_json: str, groups: list[str], out: dict[str, str]) -> None:  # fmt: skip
    """`files` maps a kind of per-instance file to its path pattern ("{video_id}" in it);
    `groups` are the report.group_by columns the funnel is also counted by."""
    # The metadata is parsed again here, not handed over from the planning step: a job is its
    # own process (on SLURM, on another node), and a file written while planning would be an
    # output no rule declares. Parsing is deterministic in the file and `dataset_cfg`, which
    # the rule declares (input and params); at WLASL2000 it takes seconds (5-6 s measured on a
    # loaded two-core machine), beside reading the 21,000 QC records.
    dataset = metadata.load(dataset_cfg)
    here = os.path.dirname(out["instances"])
    relative = {kind: os.path.relpath(pattern, here) for kind, pattern in files.items()}
    variations = paraphrase.read_variations(variations_json)
    df = tables.instances_table(dataset, qc_paths, relative, variations)
    # what came from dataset.mirror: a clip (instances layout) or its source (sources layout)
    found = mirror.Mirror.from_config(dataset_cfg)
    urls = {vid: inst.url for vid, inst in dataset.instances.items()}
    df["from_mirror"] = df["video_id"].isin(mirror.mirrored(found, urls))
    tables.write_csv(df, out["instances"])
    tables.write_csv(tables.failures_table(df), out["failures"])
    funnel = tables.funnel_table(df, list(dict.fromkeys(["split", "site", *groups])))
    tables.write_csv(funnel, out["funnel"])
    names = layout.column_names()
    write_text_atomic(out["columns"], "column,name\n" + "".join(
        f"{i},{n}\n" for i, n in enumerate(names)))  # fmt: skip
    log.info("funnel:\n%s", funnel.to_string(index=False))


def lexicon_job(instances_csv: str, index: str, poses_out: str, split: str, kind: str,
                spoken: str, signed: str, variations: bool) -> None:  # fmt: skip
    """The split's lexicon folder: `index` (index.csv) and, in `poses_out` beside it, the poses
    it names; `kind` (`clean` or `raw`) says which of the instance table's poses those are;
    with `variations`, one more row per paraphrase of a label."""
    kept = tables.kept(tables.read_instances(instances_csv), split)
    takes = lexicon.entries(kept, kind)
    files = kept.set_index("video_id")[lexicon.POSE_FILE_COLUMN[kind]]
    lexicon.link_poses(files[takes["video_id"]], poses_out)
    prefix = os.path.relpath(poses_out, os.path.dirname(index))
    write_text_atomic(index, lexicon.lexicon_csv(takes, prefix, spoken, signed, variations))
    log.info("%s: %d takes of %d glosses", split, len(takes), takes["gloss"].nunique())


def feature_items(instances_csv: str, split: str) -> list[tuple[str, str]]:
    """(npy path, gloss) of the kept instances of one split."""
    return _items(tables.kept(tables.read_instances(instances_csv), split), "features_file")


def _items(rows: pd.DataFrame, column: str) -> list[tuple[str, str]]:
    return list(zip(rows[column], rows["gloss"], strict=True))


def stats_job(instances_csv: str, target: str, features_ema_alpha: float) -> None:
    train = tables.kept(tables.read_instances(instances_csv), "train")
    clips = dict(zip(train["video_id"], train["features_file"], strict=True))
    result = stats.global_stats(clips, layout.N_FEATURES, features_ema_alpha)
    stats.write_stats(result, target)
    log.info("stats over %d train clips, %d frames", len(clips), int(result["lengths"].sum()))


def model_items(instances: pd.DataFrame, split: str, cfg, clip_pattern: str,
                scored: bool = False) -> list[tuple[str, str]]:  # fmt: skip
    """What the model of `cfg` reads of each kept instance of `split` in the instance table
    (with `scored`, of each one with features, low_quality too: what evaluation scores):
    (features, gloss), or for cnn_lstm_rgb (clip, gloss), the clip named by the pose rule's
    `clip_pattern`."""
    from signpose.training import rgb

    rows = (tables.with_features if scored else tables.kept)(instances, split)
    if not rgb.is_rgb(cfg):
        return _items(rows, "features_file")
    clips = [clip_pattern.format(video_id=vid) for vid in rows["video_id"]]
    return list(zip(clips, rows["gloss"], strict=True))


def train_job(instances_csv: str, stats_path: str, out: dict[str, str], options: dict,
              threads: int, clip_pattern: str, chain: dict | None = None) -> None:  # fmt: skip
    """`out` names every file `training.train` writes (the fields of TrainOutputs) and, with
    `chain` (the clip, pose and features sections), also `chain` and `model_stats`: the
    recorded chain and a copy of the statistics, what `signpose recognise` reruns on new
    videos. `clip_pattern` names an instance's clip ("{video_id}" in it), for cnn_lstm_rgb."""
    from signpose import recognise, training

    out = dict(out)
    recorded = {key: out.pop(key) for key in ("chain", "model_stats")} if chain else {}
    cfg = training.TrainConfig.from_dict(options, threads)
    instances = tables.read_instances(instances_csv)
    summary = training.train(
        model_items(instances, "train", cfg, clip_pattern),
        model_items(instances, "val", cfg, clip_pattern),
        stats_path,
        training.TrainOutputs(**out),
        cfg,
    )
    if chain:
        recognise.record_chain(chain, stats_path, recorded["chain"], recorded["model_stats"])
    log.info("training: %s", json.dumps(summary))


def evaluate_job(instances_csv: str, stats_path: str, trained: dict[str, str],
                 out: dict[str, str], options: dict, threads: int,
                 clip_pattern: str) -> None:  # fmt: skip
    """`trained` names the files of the training run it reads (the fields of Trained), `out`
    every file it writes (those of EvaluateOutputs)."""
    from signpose import training

    cfg = training.TrainConfig.from_dict(options, threads)
    splits = ("val", "test")
    instances = tables.read_instances(instances_csv)
    items = {s: model_items(instances, s, cfg, clip_pattern, scored=True) for s in splits}
    counts = tables.split_counts(instances)
    metrics = training.evaluate(
        training.Trained(**trained),
        items,
        stats_path,
        training.EvaluateOutputs(**out),
        cfg,
        {s: counts[s] for s in splits},
    )
    log.info("metrics: %s", json.dumps(metrics)[:2000])


def select_seed_job(seeds: list[int], metrics_paths: list[str], stats_path: str,
                    out: dict[str, str], chain: dict) -> None:  # fmt: skip
    """`train.seeds`: each seed's evaluation (`metrics_paths`, in the order of `seeds`) has its
    training run and predictions.csv beside it. The run best on val is copied to `out` (a
    file of the same name in its folder for each of the fields of TrainOutputs), with the
    recorded chain (`chain`, `model_stats`) as `train_job` writes it; `out["seeds"]` gets
    each seed's figures and their spread."""
    import shutil

    from signpose import recognise
    from signpose.training import seeds as over_seeds

    out = dict(out)
    written = {key: out.pop(key) for key in ("chain", "model_stats", "seeds")}
    folders = {seed: Path(path).parent for seed, path in zip(seeds, metrics_paths, strict=True)}
    order = list(folders)
    metrics = [json.loads(Path(path).read_text("utf-8")) for path in metrics_paths]
    predictions = [str(folders[s] / "predictions.csv") for s in order]
    hits = [over_seeds.top1_hits(over_seeds.read_predictions(p), "test") for p in predictions]
    spread = over_seeds.summarise(order, metrics, over_seeds.hits_matrix(hits, predictions))
    kept = folders[spread["kept_seed"]]
    for target in out.values():
        source = kept / Path(target).name
        if source.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)
    recognise.record_chain(chain, stats_path, written["chain"], written["model_stats"])
    write_text_atomic(written["seeds"], json.dumps(spread, indent=1) + "\n")
    log.info("seeds: kept %s of %s; test %s", spread["kept_seed"], order, spread["test"])


def dataset_summary_job(instances_csv: str, funnel_csv: str, target: str, dataset_name: str,
                        split_note: str, groups: list[str]) -> None:  # fmt: skip
    instances, funnel = tables.read_instances(instances_csv), tables.read_funnel(funnel_csv)
    page = summary.dataset_html(instances, funnel, dataset_name, split_note, groups)
    write_text_atomic(target, page)


def metrics_summary_job(metrics_json: str, instances_csv: str, target: str, groups: list[str],
                        runs: dict[str, tuple[str, str]] | None = None,
                        seeds_json: str | None = None) -> None:  # fmt: skip
    """The evaluation page; `runs` (model type -> its metrics.json and train_summary.json)
    adds the table that compares the model types trained on the same split, `seeds_json`
    (`train.seeds`: select_seed_job's summary) the figures over the seeds."""
    with open(metrics_json, encoding="utf-8") as f:
        metrics = json.load(f)
    compared = None
    if runs:
        compared = {kind: tuple(json.loads(Path(p).read_text(encoding="utf-8")) for p in paths)
                    for kind, paths in runs.items()}  # fmt: skip
    over_seeds = json.loads(Path(seeds_json).read_text("utf-8")) if seeds_json else None
    instances = tables.read_instances(instances_csv)
    page = summary.metrics_html(metrics, instances, groups, compared, over_seeds)
    write_text_atomic(target, page)


def qc_plots_job(instances_csv: str, funnel_csv: str, target: str) -> None:
    instances, funnel = tables.read_instances(instances_csv), tables.read_funnel(funnel_csv)
    plots.save(plots.qc_figure(instances, funnel), target)


def group_plots_job(instances_csv: str, target: str, groups: list[str]) -> None:
    plots.save(plots.group_figure(tables.read_instances(instances_csv), groups), target)


def skeletons_job(instances_csv: str, target: str, count: int, seed: int) -> None:
    from signpose.posefile import read_pose

    kept = tables.kept(tables.read_instances(instances_csv), "all")
    rng = np.random.default_rng(seed)
    chosen = kept.iloc[sorted(rng.choice(len(kept), min(count, len(kept)), replace=False))]
    poses, titles = [], []
    for r in chosen.itertuples():
        poses.append(read_pose(r.pose_file))
        titles.append(f"{r.gloss} ({r.video_id}, {r.split})")
    plots.save(plots.skeleton_figure(poses, titles), target)


def lexicon_page_job(instances_csv: str, index: str, target: str, spoken: str,
                     signed: str) -> None:  # fmt: skip
    from signpose.lexicon_page import lexicon_html

    instances = tables.read_instances(instances_csv)
    write_text_atomic(target, lexicon_html(os.path.dirname(index), instances, spoken, signed))


def upgrade_tombstones_job(folders: list[str], pose_options: dict) -> None:
    from signpose.holistic import HolisticOptions, empty_pose_bytes

    empty = empty_pose_bytes(HolisticOptions(**pose_options))
    upgraded = tombstone.upgrade_all(folders, empty)
    log.info("upgraded %d old-form tombstones: %s", len(upgraded), [str(p) for p in upgraded])
