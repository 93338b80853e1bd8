"""The report's Lexicon page: a sentence concatenated from the lexicon, some entries, its numbers.

The sentence is what a user of the lexicon gets: spoken-to-signed's own `CSVPoseLookup` opens the
lexicon folder and its `gloss_to_pose` concatenates the glosses (trimming, smoothing, wrists),
and pose-format's `PoseVisualizer` draws it. Animations are GIFs inside the page, so the page is
one file that every browser plays, inside Snakemake's report or alone.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

import pandas as pd

from signpose.summary import page, table

SENTENCE_GLOSSES = 3
ENTRIES = 4
SIDE = 256  # pixels of each drawing


def sentence(index: pd.DataFrame, n: int = SENTENCE_GLOSSES) -> list[tuple[str, str]]:
    """(word, gloss) of the `n` glosses with the most takes (ties: alphabetical)."""
    takes = index.groupby(["words", "glosses"]).size().reset_index(name="takes")
    best = takes.sort_values(["takes", "glosses"], ascending=[False, True]).head(n)
    return list(zip(best["words"], best["glosses"], strict=True))


def drawable(pose):
    """The pose centred and scaled onto a SIDE x SIDE canvas, as sign.mt draws its poses."""
    from pose_format.utils.generic import normalize_pose_size, pose_normalization_info

    pose = pose.normalize(pose_normalization_info(pose.header))
    normalize_pose_size(pose, SIDE)
    return pose


def gif(pose) -> bytes:
    """pose-format's own drawing of every frame, as an animated GIF at the pose's rate."""
    from pose_format.pose_visualizer import PoseVisualizer

    visualizer = PoseVisualizer(pose)
    return visualizer.save_gif(None, visualizer.draw())


def img(data: bytes, alt: str) -> str:
    src = "data:image/gif;base64," + base64.b64encode(data).decode("ascii")
    return f"<img src='{src}' alt='{html.escape(alt)}' width='{SIDE}' height='{SIDE}'>"


def numbers(index: pd.DataFrame, folder: Path, instances: pd.DataFrame) -> pd.DataFrame:
    """Glosses, takes per gloss, mean bytes per entry of the raw and the clean poses (their
    paths from the instance table)."""
    ids = [os.path.basename(p).removesuffix(".pose") for p in index["path"]]
    takes = instances.set_index("video_id").loc[ids]
    per_gloss = index.groupby("glosses").size()

    def mean_bytes(column: str) -> float:
        sizes = [os.stat(p).st_size for p in takes[column] if os.path.exists(p)]
        return sum(sizes) / len(sizes) if sizes else 0.0

    raw, clean = mean_bytes("pose_file"), mean_bytes("clean_pose_file")
    folder_bytes = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    most = per_gloss.max() if len(per_gloss) else 0
    rows = {
        "glosses": f"{len(per_gloss):,}",
        "takes": f"{len(index):,}",
        "takes per gloss (mean / max)": f"{len(index) / max(1, len(per_gloss)):.2f} / {most}",
        "bytes per entry, raw poses": f"{raw:,.0f}",
        "bytes per entry, clean poses": f"{clean:,.0f}",
        "clean / raw": f"{clean / raw:.1%}" if raw else "",
        "bytes in the folder": f"{folder_bytes:,}",
    }
    return pd.DataFrame({"figure": list(rows), "value": list(rows.values())})


def lexicon_html(folder: str | os.PathLike, instances: pd.DataFrame, spoken: str,
                 signed: str) -> str:  # fmt: skip
    """The page for the lexicon folder `folder` (its index.csv and poses); `instances` is the
    instance table (tables.read_instances), for the raw and clean poses' sizes."""
    from spoken_to_signed.gloss_to_pose import gloss_to_pose
    from spoken_to_signed.gloss_to_pose.lookup import CSVPoseLookup

    folder = Path(folder)
    index = pd.read_csv(folder / "index.csv", dtype=str, keep_default_na=False)
    sections = [("Numbers", table(numbers(index, folder, instances)))]
    if index.empty:
        return page("Lexicon", [*sections, ("Sentence", "<p>The lexicon is empty.</p>")])
    lookup = CSVPoseLookup(str(folder))
    words = sentence(index)
    result = gloss_to_pose(words, lookup, spoken, signed)
    glosses = " ".join(g for _, g in words)
    caption = (f"<p><b>{html.escape(glosses)}</b>: {len(words)} glosses looked up in this folder "
               f"by spoken-to-signed's <code>CSVPoseLookup</code> and concatenated by its "
               f"<code>gloss_to_pose</code> ({len(result.pose.body.data)} frames at "
               f"{result.pose.body.fps:g} fps), drawn by pose-format's "
               f"<code>PoseVisualizer</code>.</p>")  # fmt: skip
    sections.append(("Sentence", caption + img(gif(drawable(result.pose)), glosses)))
    entries = []
    for word, gloss in sentence(index, ENTRIES):
        pose = lookup.lookup(word, gloss, spoken, signed).pose
        label = f"{gloss} ({len(pose.body.data)} frames)"
        entries.append(f"<figure style='display:inline-block'>{img(gif(drawable(pose)), gloss)}"
                       f"<figcaption>{html.escape(label)}</figcaption></figure>")  # fmt: skip
    sections.append(("Entries: the priority-0 take of some glosses", "".join(entries)))
    return page("Lexicon", sections)
