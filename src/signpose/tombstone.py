"""Tombstones: a per-instance target that records why there is no real file.

A dead link or an unreadable video is data, not an error: the stage writes a small JSON
document at its target path so that Snakemake sees the job as done, later dry-runs stay clean,
and every later stage (and the tables) can tell the instance's fate. Real targets (mp4, .pose,
.npy) never start with the magic prefix, so one read of a few bytes tells them apart.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from signpose.files import write_text_atomic

MAGIC = b'{"signpose_tombstone"'


@dataclass(frozen=True)
class Tombstone:
    stage: str  # the stage that gave up: download, clip, pose, features
    reason: str  # short machine-friendly class, e.g. "http_404", "no_frames"
    detail: str = ""  # one human line: the error message, never secrets


def write(path: str | os.PathLike, tomb: Tombstone) -> None:
    doc = {"signpose_tombstone": 1, "stage": tomb.stage, "reason": tomb.reason}
    doc["detail"] = tomb.detail
    write_text_atomic(path, json.dumps(doc, ensure_ascii=False) + "\n")


def read(path: str | os.PathLike) -> Tombstone | None:
    """The tombstone at `path`, or None when `path` holds a real file."""
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            return None
        doc = json.loads(MAGIC + f.read())
    return Tombstone(stage=doc["stage"], reason=doc["reason"], detail=doc.get("detail", ""))
