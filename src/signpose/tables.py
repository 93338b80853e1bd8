"""The dataset tables: every instance with its fate, the failures, and the funnel.

`instances.csv` is the one file the aggregate stages (lexicon, statistics, training, report)
read, so they depend on a single input instead of 20,000 per-instance files: it is their
manifest, naming each instance's files in its `<kind>_file` columns (`features_file`,
`pose_file`), so no later job composes a per-instance path itself. Those paths are relative to
the table's own folder, so a results folder can move (or be compared with another) whole;
`read_instances` gives them back as paths from the working directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from signpose.metadata import META_PREFIX, SPLITS, Dataset

STAGES = ("download", "clip", "pose", "features")
FUNNEL = ("listed", "downloaded", "clipped", "posed", "kept")


def qc_records(path: str | os.PathLike) -> list[dict]:
    """The QC records of one features shard (qc/shards/<shard>.jsonl): one JSON document a line."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}, line {number}: not a QC record ({e}); delete the file "
                             "and rerun to recompute its shard") from None  # fmt: skip
    return records


def instances_table(
    dataset: Dataset,
    qc_paths: Iterable[str | os.PathLike],
    files: Mapping[str, str],
    variations: Mapping[str, list[str]] | None = None,
) -> pd.DataFrame:
    """One row per listed instance: metadata, source, its files, final status, the stage
    reached, QC. `qc_paths` are the features shards' QC files (`qc_records`). `files` maps a
    kind to its path pattern, e.g. {"pose": "../poses/{video_id}.pose"} (relative to where the
    table is written), and gives the column `<kind>_file`;
    `text_variations` is each label's phrasings (text/variations.json) as a JSON list, the
    label alone when `variations` has none."""
    qc = {rec["video_id"]: rec for path in qc_paths for rec in qc_records(path)}
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
            **{f"{kind}_file": pattern.format(video_id=vid) for kind, pattern in files.items()},
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
    # and how many came from dataset.mirror instead of a download, where the table says
    counted = [*FUNNEL, *(["from_mirror"] if "from_mirror" in df else [])]
    df = df.fillna(dict.fromkeys(groups, ""))
    parts = [df[counted].sum().to_frame().T.assign(group="all", value="all")]
    for group in groups:
        counts = df.groupby(group)[counted].sum().reset_index()
        parts.append(counts.rename(columns={group: "value"}).assign(group=group))
    out = pd.concat(parts, ignore_index=True)
    return out[["group", "value", *counted]].astype({k: int for k in counted})


def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    from signpose.files import write_text_atomic

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, df.to_csv(index=False, lineterminator="\n"))


TEXT_COLUMNS = ("video_id", "gloss", "split", "signer_id", "site", "url", "source_id", "bbox",
                "status", "stage", "reason", "detail", "clean_reason",
                "text_variations")  # fmt: skip
FILE_SUFFIX = "_file"


def read_instances(path: str | os.PathLike) -> pd.DataFrame:
    """instances.csv back as written: glosses and metadata such as "null" or "NA" stay text;
    the `<kind>_file` columns as paths from the working directory."""
    header = pd.read_csv(path, nrows=0).columns
    meta = [c for c in header if c.startswith(META_PREFIX)]  # a user's video_file is data
    files = [c for c in header if c.endswith(FILE_SUFFIX) and c not in meta]
    text = [*TEXT_COLUMNS, *files, *meta]
    df = pd.read_csv(path, dtype=dict.fromkeys(text, str),
                     keep_default_na=False, na_values=[""])  # fmt: skip
    df = df.fillna(dict.fromkeys(text, ""))
    folder = os.path.dirname(path)
    for column in files:
        df[column] = [os.path.normpath(os.path.join(folder, p)) for p in df[column]]
    return df


def read_funnel(path: str | os.PathLike) -> pd.DataFrame:
    """funnel.csv back as written: a split, site or group value named "NA" stays text."""
    return pd.read_csv(path, dtype={"group": str, "value": str}, keep_default_na=False)


def kept(instances: pd.DataFrame, split: str) -> pd.DataFrame:
    """The kept instances of one split ("all" for every split), in table order."""
    return _of_split(instances[instances["status"] == "kept"], split)


# Statuses of the instances whose features exist: `low_quality` clips are kept on disk, flagged.
WITH_FEATURES = ("kept", "low_quality")


def with_features(instances: pd.DataFrame, split: str) -> pd.DataFrame:
    """The instances of one split that have features, kept or flagged low_quality, in table
    order: what evaluation scores (a published test figure counts every test clip; the QC
    flag only keeps doubtful clips out of training)."""
    return _of_split(instances[instances["status"].isin(WITH_FEATURES)], split)


def _of_split(rows: pd.DataFrame, split: str) -> pd.DataFrame:
    return rows if split == "all" else rows[rows["split"] == split]


def split_counts(instances: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per split: instances listed, with features, with a signer id, and with a signer seen in
    training (one of a kept train instance, which the model trains on)."""
    signed = instances["signer_id"].fillna("").astype(str) != ""
    trained = set(kept(instances[signed], "train")["signer_id"])
    out = {}
    for split in SPLITS:
        rows = instances["split"] == split
        out[split] = {
            "n_listed": int(rows.sum()),
            "n_with_features": int((rows & instances["status"].isin(WITH_FEATURES)).sum()),
            "n_signer_known": int((rows & signed).sum()),
            "n_signer_seen_in_train": int((rows & instances["signer_id"].isin(trained)).sum()),
        }
    return out
