"""Videos the user already has: a folder in one of the two layouts of WLASL's start_kit.

- `sources` (start_kit's `raw_videos/`): what its downloader fetched, untrimmed; YouTube
  sources named by their YouTube id, every other source by the `video_id` of its instance.
  A file there stands in for the download of that source; clips are cut from it as usual.
- `instances` (start_kit's `videos/`): what its `preprocess.py` wrote, one clip per
  `video_id`, already cut to the instance's frame range; it is never trimmed again.

Files are only read. The folder is listed once per run (planning), not once per job.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signpose.sites import youtube_id

NOT_IN_MIRROR = "not_in_mirror"


@dataclass(frozen=True)
class Mirror:
    dir: Path
    layout: str  # sources | instances
    fallback: str  # download | none

    @classmethod
    def from_config(cls, dataset: Mapping[str, Any]) -> Mirror | None:
        """The validated dataset section's `mirror`, or None when there is none."""
        section = dataset["mirror"]
        if section["dir"] is None:
            return None
        return cls(Path(section["dir"]), section["layout"], section["fallback"])

    def files(self) -> dict[str, Path]:
        """Every file of the folder by its name without extension (first in name order)."""
        try:
            entries = sorted(os.scandir(self.dir), key=lambda e: e.name)
        except OSError as err:
            raise ValueError(f"dataset.mirror.dir {self.dir}: {err.strerror}") from None
        found: dict[str, Path] = {}
        for entry in entries:
            if entry.is_file() and not entry.name.startswith("."):
                found.setdefault(Path(entry.name).stem, Path(entry.path))
        return found


def source_names(url: str, video_ids: Iterable[str]) -> list[str]:
    """The names a source may have in a `sources` mirror: start_kit's downloader names YouTube
    videos by their id and every other source by the video_id of its instance."""
    vid = youtube_id(url)
    return [vid] if vid is not None else sorted(video_ids)


def source_file(files: Mapping[str, Path], names: Iterable[str]) -> Path | None:
    return next((files[n] for n in names if n in files), None)


def mirrored(found: Mirror | None, urls: Mapping[str, str]) -> dict[str, Path]:
    """What each instance takes from the mirror, by video_id: its clip (`instances` layout) or
    the file standing in for its source (`sources`); instances the mirror lacks are left out.

    `urls` maps every video_id to its source URL; instances that share a source share its file.
    """
    if found is None:
        return {}
    files = found.files()
    if found.layout == "instances":
        return {vid: files[vid] for vid in urls if vid in files}
    by_url: dict[str, list[str]] = {}
    for vid, url in urls.items():
        by_url.setdefault(url.strip(), []).append(vid)
    taken = {}
    for url, vids in by_url.items():
        path = source_file(files, source_names(url, vids))
        if path is not None:
            taken.update(dict.fromkeys(vids, path))
    return taken
