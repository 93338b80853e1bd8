"""One-page HTML summaries for the report: Snakemake's report shows HTML inline but offers CSV
files only as downloads, so the tables a user reads first are rendered here."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import pandas as pd

from signpose.metadata import META_PREFIX, SPLITS
from signpose.tables import FUNNEL, split_counts

STYLE = """<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f0f0f0; }
</style>"""
EXAMPLES = 5
QC_COLUMNS = ["frames", "body_ratio", "left_hand_ratio", "right_hand_ratio", "face_ratio",
              "mean_visibility", "motion_p50", "motion_p95"]  # fmt: skip


def page(title: str, sections: list[tuple[str, str]]) -> str:
    title = html.escape(title)
    body = "".join(f"<h2>{html.escape(h)}</h2>\n{content}\n" for h, content in sections)
    head = f"<head><meta charset='utf-8'><title>{title}</title>{STYLE}</head>"
    return f"<!DOCTYPE html>\n<html>{head}<body><h1>{title}</h1>\n{body}</body></html>\n"


def table(df: pd.DataFrame, na_rep: str = "—") -> str:
    # Metadata strings (glosses, URLs) end up in these cells: always escape them.
    return df.to_html(
        index=False, escape=True, border=0, float_format=lambda v: f"{v:.3g}", na_rep=na_rep
    )


# A figure that is not defined (null in metrics.json: top-5 with 5 classes or fewer, top-1 of
# an empty split) reads as such on the evaluation page.
UNDEFINED = "n/a"
# The split the checkpoint, early stopping and the learning-rate schedule watch.
SELECTION = "val"
SELECTION_NOTE = ("<p>val is the <b>selection split</b>: the checkpoint kept, early stopping and "
                  "the learning-rate schedule all watch it, so its figures are optimistic. test "
                  "is scored once, at the end.</p>")  # fmt: skip


def split_label(name: str) -> str:
    """A split's name as a page shows it: val is labelled as the selection split."""
    return f"{name} (selection)" if name == SELECTION else name


def reasons_table(instances: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Count of instances per (*by, stage, status, reason), with a few example video ids."""
    lost = instances[instances["status"] != "kept"].fillna({"reason": ""})
    cols = [*by, "stage", "status", "reason"]
    if lost.empty:
        return pd.DataFrame(columns=[*cols, "instances", "examples"])
    grouped = lost.groupby(cols, sort=False)["video_id"]
    out = grouped.agg(instances="size", examples=lambda v: " ".join(sorted(v)[:EXAMPLES]))
    order = [*by, "instances", "stage", "status", "reason"]
    ascending = [c != "instances" for c in order]
    return out.reset_index().sort_values(order, ascending=ascending)[
        [*cols, "instances", "examples"]
    ]


def lost_section(instances: pd.DataFrame, by: Mapping[str, str] | None = None) -> str:
    """The reasons table; `by` maps columns to break it down by to their headings."""
    reasons = reasons_table(instances, list(by or {})).rename(columns=by or {})
    return table(reasons) if len(reasons) else "<p>Every instance was kept.</p>"


def label(instances: pd.DataFrame, column: str) -> str:
    """A report.group_by column's heading: the user's own name (category for meta_category),
    unless the project has a column of that name (a user's `status` stays meta_status)."""
    name = column.removeprefix(META_PREFIX)
    return name if name == column or name not in instances.columns else column


def qc_medians(instances: pd.DataFrame) -> pd.DataFrame:
    """Median QC figures of the clips that got poses, kept and low-quality apart."""
    posed = instances[instances["status"].isin(["kept", "low_quality"])]
    cols = [c for c in QC_COLUMNS if c in posed]
    counts = posed.groupby("status").size().rename("clips")
    return pd.concat([counts, posed.groupby("status")[cols].median()], axis=1).reset_index()


def splits_section(instances: pd.DataFrame, split_note: str) -> str:
    """Instances per split, the share obtained and how many have a signer the model trains on
    (signer overlap); `split_note` says where a signer-aware split missed the requested
    fractions, or what a signer-independent split obtained."""
    counts = instances["split"].value_counts().reindex(SPLITS, fill_value=0)
    overlap = split_counts(instances)
    shares = pd.DataFrame({"split": SPLITS, "instances": counts.values,
                           "share": (counts / max(1, counts.sum())).round(3).values,
                           **{name: [overlap[s][key] for s in SPLITS]
                              for key, name in SIGNER_FIGURES.items()}})  # fmt: skip
    note = f"<p><b>Note:</b> {html.escape(split_note)}.</p>" if split_note else ""
    return note + SIGNER_NOTE + table(shares)


SIGNER_FIGURES = {"n_signer_known": "with a signer id",
                  "n_signer_seen_in_train": "signer seen in train"}  # fmt: skip
SIGNER_NOTE = (
    "<p>A signer seen in train is one of a kept train instance: an instance of "
    "another split by that signer measures recognition of a known signer.</p>"
)


def by_group_sections(
    instances: pd.DataFrame, funnel: pd.DataFrame, columns: Sequence[str]
) -> list[tuple[str, str]]:
    """For each report.group_by column: its funnel rows (counted by the tables job) and the
    loss reasons per value."""
    sections = []
    for column in columns:
        name = label(instances, column)
        rows = funnel[funnel["group"] == column].drop(columns="group")
        rows = rows.assign(kept_pct=(100 * rows["kept"] / rows["listed"].clip(lower=1)).round(1))
        rows = rows.rename(columns={"kept_pct": "kept %", "value": name})
        rows = rows.sort_values(["listed", name], ascending=[False, True])
        lost = lost_section(instances.fillna({column: ""}), {column: name})
        sections.append((f"Funnel by {name}", table(rows)))
        sections.append((f"Lost or flagged by {name}", lost))
    return sections


def dataset_html(instances: pd.DataFrame, funnel: pd.DataFrame, dataset_name: str,
                 split_note: str = "", groups: Sequence[str] = ()) -> str:  # fmt: skip
    """The funnel (tables.funnel_table, as written to funnel.csv), the splits, the reasons,
    the QC, and per report.group_by column its funnel and reasons."""
    by_group = by_group_sections(instances, funnel, groups)
    funnel = funnel[funnel["group"].isin(["all", "split", "site"])].copy()
    funnel["kept %"] = (100 * funnel["kept"] / funnel["listed"].clip(lower=1)).round(1)
    overall = funnel.iloc[0]
    steps = " → ".join(f"{stage} {overall[stage]}" for stage in FUNNEL)
    kept = f"<b>{overall['kept']}</b> of <b>{overall['listed']}</b> listed instances were kept"
    headline = f"<p>{kept} ({overall['kept %']}%). Each step of the funnel: {steps}.</p>"
    return page(
        f"Dataset {dataset_name}: what was produced and what was lost",
        [
            ("Funnel", headline + table(funnel)),
            ("Splits", splits_section(instances, split_note)),
            ("Why instances were lost or flagged", lost_section(instances)),
            ("QC medians of the clips with poses", table(qc_medians(instances))),
            *by_group,
        ],
    )


# The per-split figures of model/metrics.json, in two tables: how many instances each split
# lists and scores, and the scores (each beside its n, so a figure is never read without it).
SPLIT_COUNTS = {"n_listed": "listed", "n_with_features": "with features",
                "n_evaluated": "scored",
                "n_excluded_unknown_gloss": "not scored: gloss not in train",
                "n_skipped_tombstone": "not scored: no poses",
                "n_skipped_empty": "not scored: no frames",
                "n_signer_seen_in_train": "signer seen in train"}  # fmt: skip
SPLIT_SCORES = {"n_evaluated": "scored", "loss": "loss", "top1": "top-1", "top5": "top-5",
                "top1_all": "top-1 of all listed", "top5_all": "top-5 of all listed",
                "mean_per_class_top1": "mean per-class top-1",
                "majority_baseline_top1": "majority-class top-1"}  # fmt: skip
SPLIT_FIGURES = SPLIT_COUNTS | SPLIT_SCORES
SCORING_NOTE = ("<p>Every listed instance with features is scored, low_quality clips too; "
                "top-1 and top-5 are over the scored ones, <i>of all listed</i> counts every "
                "listed instance that could not be scored (no features, a gloss without train "
                "clips) as wrong, as published WLASL figures do. Top-5 with 5 classes or fewer "
                "is 1 by construction: n/a.</p>")  # fmt: skip


def unevaluated_note(splits: dict[str, dict]) -> str:
    """Which splits had nothing to evaluate, and why, in words. Small datasets, and sentence
    datasets whose val/test sentences never occur in train, end here: a normal outcome."""
    notes = []
    for name, figures in splits.items():
        if figures.get("n_evaluated"):
            continue
        listed = figures.get("n_listed", figures.get("n_items", 0))
        if not listed:
            notes.append(f"{name} is empty (no instance in this split)")
        else:
            unknown = figures.get("n_excluded_unknown_gloss", 0)
            notes.append(f"{name}: none of its {listed} items could be evaluated ({unknown} with "
                         "a gloss not in train, the others without poses or frames)")  # fmt: skip
    if not notes:
        return ""
    return f"<p>Not evaluated: {html.escape('; '.join(notes))}.</p>"


def tflite_note(tflite: dict) -> str:
    if "agreement" in tflite:
        return (f"<p>Agrees with the Keras model on {tflite['agreement']:.1%} "
                f"of the {tflite['n']} {tflite['split']} items.</p>")  # fmt: skip
    return "<p>Exported; its agreement with the Keras model was not checked: no item evaluated.</p>"


def accuracy_by_group(metrics: dict, instances: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per split and value of `column`: the evaluated classes with an instance of that value in
    that split, their items, the item-weighted top-1 and the mean per-class top-1. A class whose
    instances carry several values (a per-signer column) counts under each of them."""
    name = label(instances, column)
    rows = []
    for split, figures in metrics["splits"].items():
        per_class = figures.get("per_class") or {}
        in_split = instances[instances["split"] == split].fillna({column: ""})
        for value, glosses in in_split.groupby(column)["gloss"].agg(set).items():
            classes = [per_class[g] for g in sorted(glosses) if g in per_class]
            if not classes:
                continue
            n = sum(c["n"] for c in classes)
            top1 = sum(c["n"] * c["top1"] for c in classes) / n
            mean_top1 = sum(c["top1"] for c in classes) / len(classes)
            rows.append({"split": split_label(split), name: value, "classes": len(classes),
                         "items": n,
                         "top1": top1, "mean per-class top1": mean_top1})  # fmt: skip
    return pd.DataFrame(rows, columns=["split", name, "classes", "items", "top1",
                                       "mean per-class top1"])  # fmt: skip


def comparison_table(runs: dict[str, tuple[dict, dict]]) -> pd.DataFrame:
    """One row per model type: (metrics.json, train_summary.json) -> the figures compared.

    Accuracy is on the test split (val, the selection split, when there is no test split).
    """
    rows = []
    for kind, (metrics, trained) in runs.items():
        splits = metrics["splits"]
        split = "test" if "test" in splits else next(iter(splits), "")
        figures = splits.get(split, {})
        lite = metrics.get("tflite", {})
        rows.append({
            "model type": kind, "split": split_label(split), "top-1": figures.get("top1"),
            "top-5": figures.get("top5"), "top-1 of all listed": figures.get("top1_all"),
            "mean per-class top-1": figures.get("mean_per_class_top1"),
            "parameters": trained["params"], "train time (s)": trained["seconds"],
            "TFLite MB": lite["bytes"] / 1e6 if "bytes" in lite else None,
            "TFLite ms per clip": lite.get("ms_per_clip"),
        })  # fmt: skip
    return pd.DataFrame(rows)


def seeds_section(over: dict) -> str:
    """`train.seeds`: test top-1 over the seeds (mean ± sd, bootstrap interval), the seed kept
    and each seed's figures, from model/seeds.json (`training.seeds.summarise`)."""
    split, boot = over["split"], over["bootstrap"]

    def spread(key: str) -> str:
        f = over[split][key]
        if f["mean"] is None:
            return UNDEFINED
        sd = UNDEFINED if f["sd"] is None else f"{f['sd']:.3f}"
        ci = UNDEFINED if f["ci95"] is None else "{:.3f}–{:.3f}".format(*f["ci95"])
        return f"{f['mean']:.3f} ± {sd} (95% interval {ci})"

    seeds = ", ".join(map(str, over["seeds"]))
    text = (f"<p>The model was trained once per seed ({seeds}) on the same split. {split} top-1: "
            f"<b>{spread('top1')}</b>; of all listed: {spread('top1_all')} (mean ± sd over the "
            f"seeds; the interval is a bootstrap of the seed-averaged top-1 over the {split} "
            f"instances, {boot['resamples']} resamples, seed {boot['seed']}, the same draw for "
            f"every seed). The model in model/ is seed <b>{over['kept_seed']}</b>'s, kept for "
            f"its {html.escape(over['kept_by'])}.</p>")  # fmt: skip
    rows = pd.DataFrame(over["per_seed"]).T.apply(pd.to_numeric)
    # "val_top1_all" -> "val (selection) top-1 of all listed"
    rows.columns = [f"{split_label(name)} {SPLIT_FIGURES[key]}"
                    for name, key in (c.split("_", 1) for c in rows)]  # fmt: skip
    return text + table(rows.rename_axis("seed").reset_index(), na_rep=UNDEFINED)


def split_table(splits: dict[str, dict], figures: dict[str, str]) -> str:
    """One row per split, one column per figure of `figures` (key -> heading)."""
    rows = pd.DataFrame(
        {name: [splits[s].get(key) for s in splits] for key, name in figures.items()},
        index=[split_label(s) for s in splits],
    ).apply(pd.to_numeric)  # an all-None column (an empty split) shows as n/a too
    return table(rows.rename_axis("split").reset_index(), na_rep=UNDEFINED)


def metrics_html(
    metrics: dict,
    instances: pd.DataFrame | None = None,
    groups: Sequence[str] = (),
    compared: dict[str, tuple[dict, dict]] | None = None,
    over_seeds: dict | None = None,
) -> str:
    """The evaluation in `model/metrics.json` as tables: per split, then per class; with the
    instances table, per value of each `groups` column too. `compared` (model type -> its
    metrics and train summary) adds a first table comparing the model types trained on the
    same split (`train.compare`), `over_seeds` (model/seeds.json) the figures over the seeds
    (`train.seeds`). Undefined figures (null) read n/a; val is labelled the selection split."""
    splits = metrics["splits"]
    chance = f"{metrics['n_classes']} classes, chance top-1 {metrics['chance_top1']:.3g}."
    accuracy = (f"<p>{chance}</p>" + SELECTION_NOTE + SCORING_NOTE + unevaluated_note(splits)
                + split_table(splits, SPLIT_SCORES))  # fmt: skip
    sections = [("Accuracy per split", accuracy),
                ("Instances per split", split_table(splits, SPLIT_COUNTS))]  # fmt: skip
    if over_seeds:
        sections.insert(0, ("Over seeds", seeds_section(over_seeds)))
    if compared:
        compared_table = table(comparison_table(compared), na_rep=UNDEFINED)
        sections.insert(0, ("Model types on the same split", compared_table))
    if "tflite" in metrics:
        sections.append(("TFLite export", tflite_note(metrics["tflite"])))
    per_class = {
        split_label(s): pd.DataFrame(splits[s]["per_class"]).T
        for s in splits
        if splits[s].get("per_class")
    }
    if per_class:
        by_class = pd.concat(per_class, axis=1)
        by_class.columns = [f"{s} {k}" for s, k in by_class.columns]
        sections.append(("Per class", table(by_class.rename_axis("gloss").reset_index())))
    else:
        sections.append(("Per class", "<p>No item was evaluated in any split.</p>"))
    for column in groups if instances is not None else ():
        by_group = accuracy_by_group(metrics, instances, column)
        content = table(by_group) if len(by_group) else "<p>No item was evaluated.</p>"
        sections.append((f"Accuracy by {label(instances, column)}", content))
    return page("Evaluation", sections)
