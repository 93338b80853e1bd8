"""The lexicon directory opens as is in sign.mt's own reader (spoken-to-signed)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import SHARED, needs
from signpose.aggregates import lexicon_job
from signpose.holistic import HolisticOptions, estimate, write_pose
from signpose.lexicon import COLUMNS, duration_ms

VIDEOS = {
    "00001": ("pose_test_video.mp4", 'It\'s "HELLO"/hi'),
    "00002": ("pose_sample_video.mp4", "book"),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A results root with real poses and an instances table (one dead, one low quality)."""
    root = tmp_path_factory.mktemp("results")
    (root / "poses").mkdir()
    rows = []
    for vid, (name, gloss) in VIDEOS.items():
        pose = estimate(SHARED / "media" / name, HolisticOptions())
        write_pose(pose, root / "poses" / f"{vid}.pose")
        rows.append({"video_id": vid, "gloss": gloss, "split": "train", "status": "kept",
                     "frames_raw": pose.body.data.shape[0], "fps": pose.body.fps})  # fmt: skip
    rows.append({"video_id": "00003", "gloss": "dead", "split": "train", "status": "dead"})
    rows.append({"video_id": "00004", "gloss": "x", "split": "test", "status": "low_quality"})
    pd.DataFrame(rows).to_csv(root / "instances.csv", index=False)
    return root


def build(results, split="train", variations=False):
    target = results / "lexicon" / split / "index.csv"
    lexicon_job(str(results / "instances.csv"), str(target), split, str(results / "poses"),
                "en", "ase", 0, variations)  # fmt: skip
    return target


@needs(SHARED / "media" / "pose_test_video.mp4")
def test_every_gloss_comes_back_through_sign_mt(results):
    from spoken_to_signed.gloss_to_pose import gloss_to_pose
    from spoken_to_signed.gloss_to_pose.lookup import CSVPoseLookup

    target = build(results)
    text = target.read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(COLUMNS)
    assert len(text.splitlines()) == 3  # kept only: the dead and low-quality rows are out
    lookup = CSVPoseLookup(str(target.parent))
    table = pd.read_csv(results / "instances.csv", dtype={"video_id": str}).set_index("video_id")
    for vid, (_, gloss) in VIDEOS.items():
        frames = int(table.loc[vid, "frames_raw"])
        found = lookup.lookup(gloss.lower(), gloss.upper(), "en", "ase")
        assert found.pose.body.data.shape[0] == frames  # `end` keeps the last frame
        result = gloss_to_pose([(gloss.lower(), gloss.upper())], lookup, "en", "ase")
        # sign.mt trims resting frames at the ends when it concatenates, never adds any
        assert 0 < result.pose.body.data.shape[0] <= frames


@needs(SHARED / "media" / "pose_test_video.mp4")
def test_lexicon_is_reproducible_and_empty_splits_are_valid(results):
    first = build(results).read_bytes()
    assert build(results).read_bytes() == first
    assert build(results, "test").read_text() == ",".join(COLUMNS) + "\n"


def test_duration_keeps_every_frame():
    for frames, fps in [(58, 29.92), (57, 25.0), (9, 24.0), (1, 30.0), (100, 29.97)]:
        end = duration_ms(frames, fps)
        frame_time = 1000 / fps
        assert end // frame_time == frames


@needs(SHARED / "media" / "pose_test_video.mp4")
def test_every_phrasing_finds_the_same_pose_through_sign_mt(results, tmp_path):
    from spoken_to_signed.gloss_to_pose.lookup import CSVPoseLookup

    table = pd.read_csv(results / "instances.csv", dtype={"video_id": str})
    phrasings = {g: [g, f"{g} please", f"the {g}, please"] for g in table["gloss"]}
    table["text_variations"] = [json.dumps(phrasings[g]) for g in table["gloss"]]
    table.to_csv(results / "instances.csv", index=False)
    try:
        target = build(results, variations=True)
        assert len(target.read_text().splitlines()) == 1 + 3 * len(VIDEOS)
        lookup = CSVPoseLookup(str(target.parent))
        for vid, (_, gloss) in VIDEOS.items():
            frames = int(table.set_index("video_id").loc[vid, "frames_raw"])
            for words in phrasings[gloss]:
                found = lookup.lookup(words.lower(), gloss.upper(), "en", "ase")
                assert found.pose.body.data.shape[0] == frames
        # off (the default), the paraphrases stay out
        assert len(build(results, variations=False).read_text().splitlines()) == 1 + len(VIDEOS)
    finally:
        table.drop(columns="text_variations").to_csv(results / "instances.csv", index=False)
