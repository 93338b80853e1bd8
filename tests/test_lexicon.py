"""Clean poses and the lexicon folders, opened by sign.mt's own reader (spoken-to-signed)."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import SAMPLE, VIDEO
from signpose import tombstone
from signpose.aggregates import lexicon_job
from signpose.cleanpose import CleanOptions, anonymise, clean, component_presence
from signpose.config import with_defaults
from signpose.holistic import HolisticOptions, estimate
from signpose.jobs.features import features_job
from signpose.lexicon import COLUMNS, duration_ms, rank_takes
from signpose.posefile import read_pose, write_pose

# video_id: (video, gloss, split); one gloss with two takes, one take dead
TAKES = {
    "00001": (VIDEO, 'It\'s "HELLO"/hi', "train"),
    "00002": (SAMPLE, "book", "train"),
    "00003": (VIDEO, "go", "train"),
    "00004": (SAMPLE, "go", "test"),
    "00005": (None, "dead", "train"),
}
FEATURES = with_defaults({}, "features")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A results root as the workflow leaves it: raw and clean poses, QC, instances table."""
    root = tmp_path_factory.mktemp("results")
    raw = {v: estimate(v, HolisticOptions()) for v in {VIDEO, SAMPLE}}
    rows = []
    for vid, (video, gloss, split) in TAKES.items():
        pose_path = root / "poses" / f"{vid}.pose"
        if video is None:
            tombstone.write(pose_path, tombstone.Tombstone("download", "http_404"))
        else:
            write_pose(raw[video], pose_path)
        qc = features_job(str(pose_path), str(root / "features" / f"{vid}.npy"),
                          str(root / "poses_clean" / f"{vid}.pose"), vid, FEATURES)  # fmt: skip
        files = {"pose_file": f"poses/{vid}.pose", "clean_pose_file": f"poses_clean/{vid}.pose"}
        rows.append({**qc, "gloss": gloss, "split": split, **files,
                     "text_variations": json.dumps([gloss])})  # fmt: skip
    pd.DataFrame(rows).to_csv(root / "instances.csv", index=False)
    return root


def build(results, split="train", kind="clean", variations=False):
    folder = results / f"lexicon-{kind}" / split
    lexicon_job(str(results / "instances.csv"), str(folder / "index.csv"), str(folder / "poses"),
                split, kind, "en", "ase", variations)  # fmt: skip
    return folder


def test_every_split_opens_in_sign_mt_and_a_sentence_concatenates(results, tmp_path):
    from spoken_to_signed.gloss_to_pose import gloss_to_pose
    from spoken_to_signed.gloss_to_pose.lookup import CSVPoseLookup

    for split in ("train", "test", "all"):
        folder = build(results, split)
        # the folder alone, moved elsewhere, is the whole lexicon
        moved = tmp_path / split
        shutil.copytree(folder, moved)
        lookup = CSVPoseLookup(str(moved))
        index = pd.read_csv(moved / "index.csv", dtype=str, keep_default_na=False)
        assert list(index.columns) == list(COLUMNS) and "dead" not in set(index["words"])
        for row in index.itertuples():
            found = lookup.lookup(row.words, row.glosses, "en", "ase")
            assert found.pose.body.fps == 25  # one frame rate for the whole lexicon
            assert len(found.pose.body.data) > 0
    lookup = CSVPoseLookup(str(build(results, "train")))
    sentence = [('it\'s "hello"/hi', 'IT\'S "HELLO"/HI'), ("book", "BOOK"), ("go", "GO")]
    result = gloss_to_pose(sentence, lookup, "en", "ase")
    lengths = [len(lookup.lookup(w, g, "en", "ase").pose.body.data) for w, g in sentence]
    assert 0 < len(result.pose.body.data) <= sum(lengths)


def test_the_folder_holds_hard_links_and_relative_paths(results):
    folder = build(results, "all")
    index = pd.read_csv(folder / "index.csv", dtype=str)
    for path in index["path"]:
        assert not os.path.isabs(path) and ".." not in path
        vid = os.path.basename(path).removesuffix(".pose")
        assert os.path.samefile(folder / path, results / "poses_clean" / f"{vid}.pose")
    # reproducible, and the raw kind points at MediaPipe's own files
    assert build(results, "all").joinpath("index.csv").read_bytes() == (
        folder / "index.csv").read_bytes()  # fmt: skip
    raw = build(results, "all", kind="raw")
    row = pd.read_csv(raw / "index.csv", dtype=str).iloc[0]
    assert os.path.samefile(raw / row["path"], results / "poses" / os.path.basename(row["path"]))


def test_a_clean_pose_is_small_and_the_last_frame_is_kept(results):
    table = pd.read_csv(results / "instances.csv", dtype={"video_id": str})
    for r in table[table["status"] == "kept"].itertuples():
        raw = (results / "poses" / f"{r.video_id}.pose").stat().st_size
        small = (results / "poses_clean" / f"{r.video_id}.pose").stat().st_size
        assert small <= 0.4 * raw, (r.video_id, small / raw)
        assert duration_ms(r.clean_frames, r.clean_fps) // (1000 / r.clean_fps) == r.clean_frames


def test_takes_are_ranked_by_qc(results):
    rows = pd.DataFrame({
        "video_id": ["a", "b", "c", "d", "e"], "gloss": ["x", "x", "x", "y", "y"],
        "frames": [50, 55, 400, 52, 53],
        "body_ratio": [0.6, 1.0, 1.0, 1.0, 1.0], "hand_ratio": [0.6, 0.9, 1.0, 0.9, 0.9],
        "face_ratio": [1.0, 1.0, 1.0, 1.0, 1.0], "mean_visibility": [0.9, 0.9, 0.9, 0.9, 0.9],
    })  # fmt: skip
    # b beats a on quality; c is the best quality but of unusual length; d, e tie: by id
    assert rank_takes(rows).tolist() == [1, 0, 2, 0, 1]
    index = pd.read_csv(build(results, "all") / "index.csv", dtype=str)
    go = index[index["words"] == "go"]
    assert sorted(go["priority"]) == ["0", "1"]


def test_a_dead_instance_gets_an_empty_clean_pose_and_no_lexicon_entry(results):
    from pose_format import Pose

    path = results / "poses_clean" / "00005.pose"
    pose = Pose.read(path.read_bytes())
    assert len(pose.body.data) == 0 and tombstone.read(path).reason == "http_404"
    names = [c.name for c in pose.header.components]  # reduced: no world landmarks
    assert names == ["POSE_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS",
                     "RIGHT_HAND_LANDMARKS"]  # fmt: skip


def options(**changes) -> CleanOptions:
    return CleanOptions(**{**FEATURES["clean"], **changes})


def test_no_body_to_normalise_by_is_flagged(results, tmp_path):
    pose = read_pose(results / "poses" / "00001.pose")
    pose.body.confidence[:, :, :33] = 0  # no body landmark in any frame
    assert clean(pose, options()).reason == "no_body"
    write_pose(pose, tmp_path / "nobody.pose")
    qc = features_job(str(tmp_path / "nobody.pose"), str(tmp_path / "x.npy"),
                      str(tmp_path / "clean.pose"), "x", FEATURES)  # fmt: skip
    assert qc["clean_reason"] == "no_body"
    assert tombstone.read(tmp_path / "clean.pose").reason == "no_body"


def wrists(pose) -> np.ndarray:
    """(frames, 4) normalised x, y of both wrists."""
    from pose_format.utils.generic import pose_normalization_info

    pose = pose.normalize(pose_normalization_info(pose.header))
    idx = [pose.header.get_point_index("POSE_LANDMARKS", f"{s}_WRIST") for s in ("LEFT", "RIGHT")]
    return np.asarray(pose.body.data[:, 0, idx, :2].filled(np.nan)).reshape(len(pose.body.data), 4)


@pytest.mark.parametrize("hide_face_in_frame_0", [False, True])
def test_anonymised_poses_keep_every_component_and_the_motion(results, hide_face_in_frame_0):
    from pose_format.utils.generic import reduce_holistic

    raw = reduce_holistic(read_pose(results / "poses" / "00002.pose"))
    if hide_face_in_frame_0:  # the case where remove_appearance loses the face in every frame
        face = raw.header.get_point_index("FACE_LANDMARKS", raw.header.components[1].points[0])
        n = len(raw.header.components[1].points)
        raw.body.confidence[0, :, face : face + n] = 0
        raw.body.data[0, :, face : face + n] = np.ma.masked
    before = component_presence(raw)
    if hide_face_in_frame_0:  # what anonymise guards against (pose-anonymization==0.0.1)
        from pose_anonymization.appearance import remove_appearance

        assert not component_presence(remove_appearance(raw.copy()))[:, 1].any()
    out = anonymise(raw.copy())
    assert (component_presence(out) >= before).all()
    a, b = wrists(raw), wrists(out)
    seen = ~np.isnan(a).any(axis=1) & ~np.isnan(b).any(axis=1)
    for col in range(4):
        if np.std(a[seen, col]) > 0:
            assert np.corrcoef(a[seen, col], b[seen, col])[0, 1] > 0.95


def test_the_lexicon_page_plays_a_sentence_from_the_clean_lexicon(results):
    import base64
    import io
    import re

    from PIL import Image

    from signpose.aggregates import lexicon_page_job

    folder = build(results, "all")
    target = results / "report" / "lexicon.html"
    lexicon_page_job(str(results / "instances.csv"), str(folder / "index.csv"), str(target),
                     "en", "ase")  # fmt: skip
    page = target.read_text(encoding="utf-8")
    gifs = [base64.b64decode(g) for g in re.findall(r"data:image/gif;base64,([^']+)", page)]
    assert len(gifs) == 1 + 3  # the sentence and one drawing per gloss (3 glosses here)
    frames = [Image.open(io.BytesIO(g)).n_frames for g in gifs]
    assert frames[0] > 10 and all(n > 1 for n in frames)
    assert "GO BOOK" in page or "GO IT" in page  # the best-covered gloss (2 takes) first
    assert "clean / raw" in page and "gloss_to_pose" in page


def test_every_phrasing_finds_the_same_pose_through_sign_mt(results):
    from spoken_to_signed.gloss_to_pose.lookup import CSVPoseLookup

    original = pd.read_csv(results / "instances.csv", dtype={"video_id": str})
    phrasings = {g: [g, f"{g} please", f"the {g}, please"] for g in original["gloss"]}
    table = original.assign(text_variations=[json.dumps(phrasings[g]) for g in original["gloss"]])
    table.to_csv(results / "instances.csv", index=False)
    try:
        takes = len(pd.read_csv(build(results, "all") / "index.csv"))  # off: the originals
        folder = build(results, "all", variations=True)
        index = pd.read_csv(folder / "index.csv", dtype=str, keep_default_na=False)
        assert len(index) == 3 * takes
        lookup = CSVPoseLookup(str(folder))
        for gloss in set(original[original["status"] == "kept"]["gloss"]):
            frames = {len(lookup.lookup(words.lower(), gloss.upper(), "en", "ase").pose.body.data)
                      for words in phrasings[gloss]}  # fmt: skip
            assert len(frames) == 1 and frames.pop() > 0, gloss
    finally:
        original.to_csv(results / "instances.csv", index=False)
