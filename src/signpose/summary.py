"""One-page HTML summaries for the report: Snakemake's report shows HTML inline but offers CSV
files only as downloads, so the tables a user reads first are rendered here."""

from __future__ import annotations

import html

import pandas as pd

from signpose.tables import FUNNEL, funnel_table

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


def table(df: pd.DataFrame) -> str:
    # Metadata strings (glosses, URLs) end up in these cells: always escape them.
    return df.to_html(index=False, escape=True, border=0, float_format=lambda v: f"{v:.3g}")


def reasons_table(instances: pd.DataFrame) -> pd.DataFrame:
    """Count of instances per (stage, status, reason), with a few example video ids."""
    lost = instances[instances["status"] != "kept"].fillna({"reason": ""})
    cols = ["stage", "status", "reason"]
    if lost.empty:
        return pd.DataFrame(columns=[*cols, "instances", "examples"])
    grouped = lost.groupby(cols, sort=False)["video_id"]
    out = grouped.agg(instances="size", examples=lambda v: " ".join(sorted(v)[:EXAMPLES]))
    return out.reset_index().sort_values(["instances", *cols], ascending=[False, True, True, True])


def qc_medians(instances: pd.DataFrame) -> pd.DataFrame:
    """Median QC figures of the clips that got poses, kept and low-quality apart."""
    posed = instances[instances["status"].isin(["kept", "low_quality"])]
    cols = [c for c in QC_COLUMNS if c in posed]
    counts = posed.groupby("status").size().rename("clips")
    return pd.concat([counts, posed.groupby("status")[cols].median()], axis=1).reset_index()


def dataset_html(instances: pd.DataFrame, dataset_name: str) -> str:
    funnel = funnel_table(instances)
    funnel["kept %"] = (100 * funnel["kept"] / funnel["listed"].clip(lower=1)).round(1)
    overall = funnel.iloc[0]
    steps = " → ".join(f"{stage} {overall[stage]}" for stage in FUNNEL)
    kept = f"<b>{overall['kept']}</b> of <b>{overall['listed']}</b> listed instances were kept"
    headline = f"<p>{kept} ({overall['kept %']}%). Each step of the funnel: {steps}.</p>"
    return page(
        f"Dataset {dataset_name}: what was produced and what was lost",
        [
            ("Funnel", headline + table(funnel)),
            ("Why instances were lost or flagged", table(reasons_table(instances))),
            ("QC medians of the clips with poses", table(qc_medians(instances))),
        ],
    )


SPLIT_FIGURES = {"n_evaluated": "items evaluated",
                 "n_excluded_unknown_gloss": "excluded (gloss not in train)",
                 "loss": "loss", "top1": "top-1", "top5": "top-5",
                 "mean_per_class_top1": "mean per-class top-1",
                 "majority_baseline_top1": "majority-class top-1"}  # fmt: skip


def comparison_table(runs: dict[str, tuple[dict, dict]]) -> pd.DataFrame:
    """One row per model type: (metrics.json, train_summary.json) -> the figures compared.

    Accuracy is on the test split (val when there is no test split).
    """
    rows = []
    for kind, (metrics, trained) in runs.items():
        splits = metrics["splits"]
        split = "test" if "test" in splits else next(iter(splits), "")
        figures = splits.get(split, {})
        lite = metrics.get("tflite", {})
        rows.append({
            "model type": kind, "split": split, "top-1": figures.get("top1"),
            "top-5": figures.get("top5"),
            "mean per-class top-1": figures.get("mean_per_class_top1"),
            "parameters": trained["params"], "train time (s)": trained["seconds"],
            "TFLite MB": lite["bytes"] / 1e6 if "bytes" in lite else None,
            "TFLite ms per clip": lite.get("ms_per_clip"),
        })  # fmt: skip
    return pd.DataFrame(rows)


def metrics_html(metrics: dict, compared: dict[str, tuple[dict, dict]] | None = None) -> str:
    """The evaluation in `model/metrics.json` as tables: per split, then per class.

    `compared` (model type -> its metrics and train summary) adds a first table comparing the
    model types trained on the same split (`train.compare`).
    """
    splits = metrics["splits"]
    overview = pd.DataFrame(
        {name: [splits[s].get(key) for s in splits] for key, name in SPLIT_FIGURES.items()},
        index=list(splits),
    ).rename_axis("split")
    per_class = pd.concat(
        {s: pd.DataFrame(splits[s].get("per_class", {})).T for s in splits}, axis=1
    )
    per_class.columns = [f"{s} {k}" for s, k in per_class.columns]
    chance = f"{metrics['n_classes']} classes, chance top-1 {metrics['chance_top1']:.3g}."
    sections = [("Accuracy per split", f"<p>{chance}</p>" + table(overview.reset_index()))]
    if compared:
        sections.insert(0, ("Model types on the same split", table(comparison_table(compared))))
    if "tflite" in metrics:
        t = metrics["tflite"]
        sections.append(("TFLite export", f"<p>Agrees with the Keras model on {t['agreement']:.1%} "
                                          f"of the {t['n']} {t['split']} items.</p>"))  # fmt: skip
    sections.append(("Per class", table(per_class.rename_axis("gloss").reset_index())))
    return page("Evaluation", sections)
