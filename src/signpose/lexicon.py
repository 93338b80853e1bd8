"""sign.mt lexicon folders: `index.csv` and the poses it names, a folder `CSVPoseLookup` opens.

Columns: path,spoken_language,signed_language,start,end,words,glosses,priority. `path` is
relative to the folder (`poses/<video_id>.pose`, hard links to the results' poses where the file
system allows, copies otherwise), so the folder can be archived and used elsewhere alone.
`start`/`end` are integer milliseconds and `end` is the pose's real duration (sign.mt reads
`end = 0` as "drop the last frame"). sign.mt takes the take of a gloss with the lowest
`priority`: takes are ranked by their QC (`rank_takes`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
from pathlib import Path

import pandas as pd

COLUMNS = ("path", "spoken_language", "signed_language", "start", "end", "words", "glosses",
           "priority")  # fmt: skip
# The QC ratios a take's quality is the mean of (each in [0, 1]; signpose.features.quality).
# The instance table's column (tables.py `<kind>_file`) naming each take's pose, per lexicon.poses
POSE_FILE_COLUMN = {"clean": "clean_pose_file", "raw": "pose_file"}
QUALITY = ("body_ratio", "hand_ratio", "face_ratio", "mean_visibility")
# A take is of usual length when its frame count is no outlier among the folder's (Tukey's
# fences: within FENCE interquartile ranges of the quartiles).
FENCE = 1.5


def duration_ms(frames: int, fps: float) -> int:
    """Rounded up, so that sign.mt's `end // frame_time` gives back every frame."""
    return math.ceil(frames * 1000 / fps - 1e-6)


def entries(kept: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The lexicon's takes: the kept instances (with a clean pose, for `clean`), ranked.

    Columns video_id, gloss, text_variations, frames, fps, priority, from the instance table.
    """
    if kept.empty:
        return pd.DataFrame(columns=["video_id", "gloss", "text_variations", "frames", "fps",
                                     "priority"])  # fmt: skip
    if kind == "clean":
        rows = kept[kept["clean_reason"] == ""]
        frames, fps = rows["clean_frames"], rows["clean_fps"]
    else:
        rows, frames, fps = kept, kept["frames_raw"], kept["fps"]
    out = pd.DataFrame({"video_id": rows["video_id"], "gloss": rows["gloss"],
                        "text_variations": rows["text_variations"],
                        "frames": frames.astype(int), "fps": fps.astype(float)})  # fmt: skip
    return out.assign(priority=rank_takes(rows))


def rank_takes(rows: pd.DataFrame) -> pd.Series:
    """Each take's rank among the takes of its gloss: 0 for the best.

    Takes of usual length (frame count within Tukey's fences over all takes here) come first,
    then higher quality (the mean of the QUALITY ratios), then the video id.
    """
    if rows.empty:
        return pd.Series(dtype=int)
    q1, q3 = rows["frames"].quantile([0.25, 0.75])
    low, high = q1 - FENCE * (q3 - q1), q3 + FENCE * (q3 - q1)
    order = rows.assign(
        _unusual=~rows["frames"].between(low, high),
        _quality=-rows[list(QUALITY)].mean(axis=1),
    ).sort_values(["gloss", "_unusual", "_quality", "video_id"])
    return order.groupby("gloss").cumcount().reindex(rows.index)


def lexicon_csv(takes: pd.DataFrame, prefix: str, spoken: str, signed: str,
                variations: bool = False) -> str:  # fmt: skip
    """The index.csv text for these takes, whose poses are in `prefix` (relative to the index):
    sorted, byte-for-byte reproducible. With `variations`, one more row per paraphrase (the
    `text_variations` column after its first, the original), with the same pose and glosses."""
    rows = sorted(
        (f"{prefix}/{r.video_id}.pose", spoken, signed, 0, duration_ms(r.frames, r.fps),
         words.lower(), r.gloss.upper(), int(r.priority))
        for r in takes.itertuples()
        for words in [r.gloss, *(json.loads(r.text_variations)[1:] if variations else [])]
    )  # fmt: skip
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return out.getvalue()


def link_poses(files: pd.Series, target: str | os.PathLike) -> None:
    """`target`/<video_id>.pose for each video_id → pose file of `files`: a hard link, or a
    copy across file systems."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for vid, src in files.items():
        dst = target / f"{vid}.pose"
        dst.unlink(missing_ok=True)
        try:
            os.link(src, dst)
        except OSError:  # another file system, or one without hard links
            shutil.copyfile(src, dst)
