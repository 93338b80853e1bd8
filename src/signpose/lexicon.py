"""sign.mt lexicon directories: `index.csv` that `CSVPoseLookup(directory)` opens as is.

Columns: path,spoken_language,signed_language,start,end,words,glosses,priority. `path` is
relative to the directory; `start`/`end` are integer milliseconds and `end` is the pose's real
duration (sign.mt reads `end = 0` as "drop the last frame").
"""

from __future__ import annotations

import csv
import io
import json
import math
import os

import pandas as pd

COLUMNS = ("path", "spoken_language", "signed_language", "start", "end", "words", "glosses",
           "priority")  # fmt: skip


def duration_ms(frames: int, fps: float) -> int:
    """Rounded up, so that sign.mt's `end // frame_time` gives back every frame."""
    return math.ceil(frames * 1000 / fps - 1e-6)


def lexicon_csv(
    kept: pd.DataFrame,
    pose_dir: str | os.PathLike,
    lexicon_dir: str | os.PathLike,
    spoken: str,
    signed: str,
    priority: int,
    variations: bool = False,
) -> str:
    """The index.csv text for these kept instances: sorted, byte-for-byte reproducible. With
    `variations`, one more row per paraphrase (the `text_variations` column after its first,
    the original), with the same pose and glosses."""
    rel = os.path.relpath(pose_dir, lexicon_dir)
    rows = sorted(
        (
            f"{rel}/{r.video_id}.pose",
            spoken,
            signed,
            0,
            duration_ms(int(r.frames_raw), float(r.fps)),
            words.lower(),
            r.gloss.upper(),
            priority,
        )
        for r in kept.itertuples()
        for words in [r.gloss, *(json.loads(r.text_variations)[1:] if variations else [])]
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return out.getvalue()
