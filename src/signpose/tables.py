"""The dataset tables: every instance with its fate, the failures, and the funnel.

`instances.csv` is the one file the aggregate stages (lexicon, statistics, training) read, so
they depend on a single input instead of 20,000 per-instance files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from signpose.metadata import META_PREFIX, Dataset

STAGES = ("download", "clip", "pose", "features")
FUNNEL = ("listed", "downloaded", "clipped", "posed", "kept")


def qc_record(path: str | os.PathLike) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def instances_table(
    dataset: Dataset,
    qc_paths: Iterable[str | os.PathLike],
    variations: Mapping[str, list[str]] | None = None,
) -> pd.DataFrame:
    """One row per listed instance: metadata, source, final status, the stage reached, QC;
    `text_variations` is each label's phrasings (text/variations.json) as a JSON list, the
    label alone when `variations` has none."""
    qc = {rec["video_id"]: rec for rec in map(qc_record, qc_paths)}
    phrasings = {g: json.dumps(v, ensure_ascii=False) for g, v in (variations or {}).items()}
    rows = []
    for vid, inst in dataset.instances.items():
        rec = qc.get(vid, {"status": "missing", "stage": "", "reason": "no QC record"})
        failed_at = STAGES.index(rec["stage"]) if rec["status"] == "dead" else len(STAGES)
        row = {
            "video_id": vid,
            "gloss": inst.gloss,
            "split": inst.split,
            "signer_id": inst.signer_id,
            "site": inst.site,
            "url": inst.url,
            "source_id": inst.source_id,
            "frame_start": inst.frame_start,
            "frame_end": inst.frame_end,
            "metadata_fps": inst.fps,
            "bbox": " ".join(f"{v:g}" for v in inst.bbox) if inst.bbox else "",
            **dict(inst.extra),  # the user's metadata, as meta_<column>
            "text_variations": phrasings.get(inst.gloss)
            or json.dumps([inst.gloss], ensure_ascii=False),
            "status": rec["status"],
            "stage": rec["stage"],
            "reason": rec.get("reason", ""),
            "detail": rec.get("detail", ""),
            "downloaded": failed_at > 0,
            "clipped": failed_at > 1,
            "posed": failed_at > 2,
        }
        skip = {"video_id", "status", "stage", "reason", "detail", "failed"}
        row.update({k: v for k, v in rec.items() if k not in skip})
        rows.append(row)
    return pd.DataFrame(rows)


def failures_table(instances: pd.DataFrame) -> pd.DataFrame:
    cols = ["video_id", "gloss", "split", "site", "url", "status", "stage", "reason", "detail"]
    return instances.loc[instances["status"] != "kept", cols]


def funnel_table(
    instances: pd.DataFrame, groups: Sequence[str] = ("split", "site")
) -> pd.DataFrame:
    """listed → downloaded → clipped → posed → kept, overall and per value of each of `groups`
    (an empty value, a WLASL field some instances lack, is its own group "")."""
    df = instances.assign(listed=True, kept=instances["status"] == "kept")
    df = df.fillna(dict.fromkeys(groups, ""))
    parts = [df[list(FUNNEL)].sum().to_frame().T.assign(group="all", value="all")]
    for group in groups:
        counts = df.groupby(group)[list(FUNNEL)].sum().reset_index()
        parts.append(counts.rename(columns={group: "value"}).assign(group=group))
    out = pd.concat(parts, ignore_index=True)
    return out[["group", "value", *FUNNEL]].astype({k: int for k in FUNNEL})


def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    from signpose.files import write_text_atomic

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, df.to_csv(index=False, lineterminator="\n"))


TEXT_COLUMNS = ("video_id", "gloss", "split", "signer_id", "site", "url", "source_id", "bbox",
                "status", "stage", "reason", "detail", "text_variations")  # fmt: skip


def read_instances(path: str | os.PathLike) -> pd.DataFrame:
    """instances.csv back as written: glosses and metadata such as "null" or "NA" stay text."""
    header = pd.read_csv(path, nrows=0).columns
    text = [*TEXT_COLUMNS, *(c for c in header if c.startswith(META_PREFIX))]
    df = pd.read_csv(path, dtype=dict.fromkeys(text, str),
                     keep_default_na=False, na_values=[""])  # fmt: skip
    return df.fillna(dict.fromkeys(text, ""))


def kept(instances: pd.DataFrame, split: str) -> pd.DataFrame:
    """The kept instances of one split ("all" for every split), in table order."""
    rows = instances[instances["status"] == "kept"]
    return rows if split == "all" else rows[rows["split"] == split]
