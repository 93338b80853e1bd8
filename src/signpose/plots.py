"""Pictures for the report: QC distributions and skeleton renderings of kept clips."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from signpose.files import atomic_path  # noqa: E402
from signpose.summary import label  # noqa: E402
from signpose.tables import FUNNEL  # noqa: E402

DRAWN_COMPONENTS = ["POSE_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS",
                    "RIGHT_HAND_LANDMARKS"]  # fmt: skip


def save(fig, target: str | os.PathLike) -> None:
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def qc_figure(instances: pd.DataFrame, funnel: pd.DataFrame):
    """Funnel per split (tables.funnel_table), failure reasons, and the QC distributions of
    clips with poses."""
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    by_split = funnel[funnel["group"] == "split"].set_index("value")[list(FUNNEL)]
    by_split.T.plot.bar(ax=axes[0, 0], rot=30)
    axes[0, 0].legend(title=None, fontsize=8, ncols=3, loc="upper center", frameon=False)
    axes[0, 0].set_ylim(0, by_split.to_numpy().max() * 1.15)
    axes[0, 0].set_title("Funnel per split (instances)")
    reasons = instances[instances["status"] != "kept"]
    labels = reasons["stage"] + ": " + reasons["reason"].replace("", "?")
    counts = labels.value_counts().head(12)
    ax = axes[0, 1]
    if counts.empty:
        ax.text(0.5, 0.5, "no failures", ha="center", va="center")
    else:
        counts.sort_values().plot.barh(ax=ax)
    ax.set_title("Why instances were lost or flagged")
    posed = instances[instances["status"].isin(["kept", "low_quality"])]
    hist(axes[0, 2], posed, ["frames"], "Frames per clip (after trimming)")
    hist(axes[1, 0], posed, ["body_ratio", "left_hand_ratio", "right_hand_ratio", "face_ratio"],
         "Detection ratio per part")  # fmt: skip
    hist(axes[1, 1], posed, ["mean_visibility"], "Mean upper-body visibility")
    hist(axes[1, 2], posed, ["motion_p50", "motion_p95"],
         "Motion energy (torso units / s; last bin ≥ p99)", upper_quantile=99)  # fmt: skip
    fig.tight_layout()
    return fig


GROUP_VALUES = 25  # the most frequent values drawn per group column; the rest are one bar
STATUS_COLOURS = {"kept": "tab:green", "low_quality": "tab:orange", "dead": "tab:red",
                  "missing": "tab:gray"}  # fmt: skip


def group_figure(instances: pd.DataFrame, columns: list[str]):
    """Per report.group_by column: instances per value, split by final status."""
    bars = [min(instances[c].nunique(dropna=False), GROUP_VALUES + 1) for c in columns]
    fig, axes = plt.subplots(len(columns), 1, figsize=(9, sum(0.35 * b + 1.2 for b in bars)),
                             height_ratios=[b + 2 for b in bars], squeeze=False)  # fmt: skip
    for ax, column in zip(axes[:, 0], columns, strict=True):
        values = instances[column].fillna("").replace("", "(empty)").astype(str)
        top = values.value_counts().index[:GROUP_VALUES]
        rest = f"({values.nunique() - len(top)} other values)"
        values = values.where(values.isin(top), rest)
        counts = pd.crosstab(values, instances["status"]).reindex(columns=list(STATUS_COLOURS),
                                                                 fill_value=0)  # fmt: skip
        counts = counts.loc[counts.sum(axis=1).sort_values().index]
        counts.plot.barh(ax=ax, stacked=True, color=list(STATUS_COLOURS.values()), width=0.8)
        ax.set_title(f"Instances per {label(instances, column)}, by final status")
        ax.set_ylabel("")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def hist(ax, df: pd.DataFrame, columns: list[str], title: str,
         upper_quantile: float | None = None) -> None:  # fmt: skip
    ax.set_title(title)
    data = [df[c].dropna().to_numpy(float) for c in columns if c in df]
    if not any(len(d) for d in data):
        ax.text(0.5, 0.5, "no clips with poses", ha="center", va="center")
        return
    if upper_quantile is not None:
        # One runaway clip would squash every other clip into the first bin: pile outliers
        # into the last one instead.
        upper = np.percentile(np.concatenate(data), upper_quantile)
        data = [np.minimum(d, upper) for d in data]
    ax.hist(data, bins=20, label=columns[: len(data)], alpha=0.8)
    if len(data) > 1:
        ax.legend(fontsize=8)


def skeleton_figure(poses: list, titles: list[str]):
    """The middle frame of each pose, drawn by pose-format's own visualizer."""
    from pose_format.pose_visualizer import PoseVisualizer

    n = max(1, len(poses))
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, pose, title in zip(axes.flat, poses, titles, strict=False):
        pose = pose.get_components(DRAWN_COMPONENTS)
        frames = list(PoseVisualizer(pose).draw())
        ax.imshow(np.asarray(frames[len(frames) // 2])[..., ::-1])
        ax.set_title(title, fontsize=9)
    if not poses:
        axes.flat[0].text(0.5, 0.5, "no kept clips", ha="center", va="center")
    fig.tight_layout()
    return fig
