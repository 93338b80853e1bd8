from __future__ import annotations

import copy
import json
import os
import time

import pytest

from conftest import WLASL_300, WLASL_2000, needs
from signpose import metadata
from signpose.config import with_defaults
from signpose.metadata import MetadataError


def load(dataset: dict) -> metadata.Dataset:
    """`metadata.load` of a `dataset` section, its defaults filled as the workflow's are."""
    return metadata.load(with_defaults({"name": "test", **dataset}, section="dataset"))


def counts(ds: metadata.Dataset) -> tuple[int, int, int, int]:
    split = [len(ds.by_split(s)) for s in metadata.SPLITS]
    return (len(ds.instances), *split)


@needs(WLASL_300)
@pytest.mark.parametrize(
    "subset, expected",
    [(100, (2038, 1442, 338, 258)), (300, (5117, 3549, 900, 668))],
)
def test_wlasl_subsets_match_published_counts(subset, expected):
    ds = load({"metadata": str(WLASL_300), "subset": subset})
    assert counts(ds) == expected


@needs(WLASL_2000)
@pytest.mark.parametrize("subset", [100, 300, 1000, 2000])
def test_full_size_subsets_match_the_official_split_files(subset):
    nslt = json.loads((WLASL_2000.parent / f"nslt_{subset}.json").read_text())
    ds = load({"metadata": str(WLASL_2000), "subset": subset})
    assert set(ds.instances) == set(nslt)
    for vid, inst in ds.instances.items():
        assert inst.split == nslt[vid]["subset"]


@needs(WLASL_300)
def test_youtube_sources_are_downloaded_once():
    ds = load({"metadata": str(WLASL_300)})
    youtube = [i for i in ds.instances.values() if "youtu" in i.site]
    shared = {i.source_id for i in youtube}
    assert len(shared) < len(youtube)  # many instances cut from one video
    assert all(len(s) == 11 for s in shared)
    assert set(ds.urls) == {i.source_id for i in ds.instances.values()}


GOOD = {
    "bbox": [10, 20, 200, 220],
    "fps": 25,
    "frame_end": -1,
    "frame_start": 1,
    "instance_id": 0,
    "signer_id": 7,
    "source": "test",
    "split": "train",
    "url": "https://example.org/v/a.mp4",
    "variation_id": 0,
    "video_id": "00001",
}


def wlasl(*instances, gloss="book"):
    return [{"gloss": gloss, "instances": list(instances)}]


def with_(**changes):
    rec = copy.deepcopy(GOOD)
    rec.update(changes)
    return rec


@pytest.mark.parametrize(
    "records, field",
    [
        (wlasl(GOOD, with_(url="https://example.org/b.mp4")), "'video_id'"),
        (wlasl(with_(split="dev")), "'split'"),
        (wlasl(with_(frame_start=10, frame_end=5)), "'frame_end'"),
        (wlasl(with_(frame_start=0)), "'frame_start'"),
        (wlasl(with_(url="ftp://example.org/a.mp4")), "'url'"),
        (wlasl(with_(url="javascript:alert(1)")), "'url'"),
        (wlasl(with_(url="file:///etc/passwd")), "'url'"),
        (wlasl(with_(url="videos/a.mp4")), "'url'"),
        (wlasl(with_(bbox=[1, 2, 3])), "'bbox'"),
        (wlasl(with_(bbox=[1, 2, "x", 4])), "'bbox'"),
        (wlasl(with_(bbox=[1, 2, float("nan"), 4])), "'bbox'"),
        (wlasl(with_(video_id="../../etc")), "'video_id'"),
        (wlasl(with_(video_id="a;rm -rf ~")), "'video_id'"),
        (wlasl(with_(video_id="a\x00b")), "'video_id'"),
        (wlasl(with_(fps="25")), "'fps'"),
        (wlasl(GOOD, gloss="x" * 10_000_000), "'gloss'"),
        (wlasl({k: v for k, v in GOOD.items() if k != "url"}), "'url'"),
        ([{"gloss": "a"}], "'instances'"),
        # JSON's NaN and Infinity literals, wrong types, ids that are paths, hostile strings
        (wlasl(with_(fps=float("nan"))), "'fps'"),
        (wlasl(with_(fps=float("inf"))), "'fps'"),
        (wlasl(with_(fps=True)), "'fps'"),
        (wlasl(with_(frame_start=1.5)), "'frame_start'"),
        (wlasl(with_(frame_end="-1")), "'frame_end'"),
        (wlasl(with_(split=None)), "'split'"),
        (wlasl(with_(video_id=1)), "'video_id'"),
        (wlasl(with_(video_id="a/b")), "'video_id'"),
        (wlasl(with_(video_id="..")), "'video_id'"),
        (wlasl(with_(video_id="$(touch pwned)")), "'video_id'"),
        (wlasl(with_(url=123)), "'url'"),
        (wlasl(with_(url="https://example.org/" + "a" * 10_000_000)), "'url'"),
        (wlasl(with_(url="https://example.org/\ud800.mp4")), "'url'"),
        (wlasl(with_(bbox=[1, 2, float("inf"), 4])), "'bbox'"),
        (wlasl(with_(bbox=[50, 50, 10, 10])), "'bbox'"),
        (wlasl(with_(signer_id="\udcff")), "'signer_id'"),
        (wlasl(GOOD, gloss="a\x00b"), "'gloss'"),
        (wlasl(GOOD, gloss=" "), "'gloss'"),
        (wlasl(GOOD, gloss=7), "'gloss'"),
        (wlasl(GOOD, gloss="lone \ud800 surrogate"), "'gloss'"),
        (wlasl({k: v for k, v in GOOD.items() if k != "video_id"}), "'video_id'"),
        (wlasl({k: v for k, v in GOOD.items() if k != "split"}), "'split'"),
        (wlasl({k: v for k, v in GOOD.items() if k != "frame_start"}), "'frame_start'"),
        (wlasl("not a record"), "not an object"),
        ([["gloss", "instances"]], "'gloss'"),
    ],
)
def test_bad_records_fail_with_one_line_naming_record_and_field(write_json, records, field):
    path = write_json(records)
    with pytest.raises(MetadataError) as err:
        load({"metadata": str(path)})
    message = str(err.value)
    assert "\n" not in message
    assert len(message) < 400
    assert str(path) in message
    assert field in message
    assert "entry 0" in message


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"{not json", "invalid JSON"),
        (b'{"gloss": 1}', "top level"),
        (b"null", "top level"),
        (b"[]", "no instances"),
        (b"\xff\xfe[]", "UTF-8"),
        (b'[{"gloss": "caf\xe9", "instances": []}]', "not UTF-8 at byte 15"),
        (b"", "invalid JSON"),
    ],
)
def test_unreadable_files_are_named(tmp_path, content, problem):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(MetadataError, match=problem):
        load({"metadata": str(path)})


@pytest.mark.parametrize(
    "entries, subset",
    [
        ([], None),
        ([{"gloss": "a", "instances": []}, {"gloss": "b", "instances": []}], None),
        ([{"gloss": "a", "instances": []}, {"gloss": "b", "instances": [GOOD]}], 1),
    ],
    ids=["empty_list", "empty_glosses", "subset_of_empty_glosses"],
)
def test_no_instances_at_all_is_named(write_json, entries, subset):
    path = write_json(entries)
    with pytest.raises(MetadataError) as err:
        load({"metadata": str(path), "subset": subset})
    assert str(err.value) == f"{path}: no instances (a run over nothing is a mistake)"


@pytest.mark.parametrize("fmt", ["wlasl", "csv"])
def test_a_missing_metadata_file_is_named(tmp_path, fmt):
    path = tmp_path / "nope" / "meta.json"
    with pytest.raises(MetadataError) as err:
        load({"metadata": str(path), "format": fmt})
    assert str(err.value) == f"{path}: metadata file not found"


@pytest.mark.parametrize(
    "change, named",
    [
        ({"fps": "25"}, "field 'fps': '25' is not a positive number"),
        ({"fps": True}, "field 'fps': True is not a positive number"),
        ({"frame_start": 1.5}, "field 'frame_start': 1.5 is not an integer >= 1"),
        ({"frame_end": "-1"}, "field 'frame_end': '-1' is neither -1 nor >= frame_start 1"),
        ({"split": None}, "field 'split': unknown split None"),
        ({"video_id": 1}, "field 'video_id': 1 is not 1-128 characters"),
        # a URL or gloss of the wrong type is named with what is wrong, not its value
        ({"url": 123}, "field 'url': missing, too long, not a string or not Unicode"),
        ({"gloss": 7}, "entry 0: field 'gloss': missing or not a string"),
    ],
)
def test_wrong_types_are_named_with_their_value(write_json, change, named):
    gloss = change.pop("gloss", "book")
    path = write_json(wlasl(with_(**change), gloss=gloss))
    with pytest.raises(MetadataError) as err:
        load({"metadata": str(path)})
    assert str(err.value).startswith(f"{path}: entry 0") and named in str(err.value)


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(wlasl(GOOD)).encode())
    assert list(load({"metadata": str(path)}).instances) == ["00001"]
    csv_path = tmp_path / "bom.csv"
    csv_path.write_bytes(b"\xef\xbb\xbfvideo_file,gloss\nclips/a.mp4,hello\n")
    ds = load({"metadata": str(csv_path), "format": "csv", "allow_local_files": True})
    assert ds.instances["a"].gloss == "hello"


def test_non_utf8_csv_is_named(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("video_file,gloss\na.mp4,café\n".encode("latin-1"))
    with pytest.raises(MetadataError, match=f"{path}: not UTF-8 at byte"):
        load({"metadata": str(path), "format": "csv", "allow_local_files": True})


def test_negative_bbox_is_a_hint_clamped_by_the_clip_stage(write_json):
    # YOLO boxes poke out of the frame; test_clips.test_crop_is_clamped_even_and_optional
    # checks the clamping
    path = write_json(wlasl(with_(bbox=[-20, -10, 100, 200])))
    assert load({"metadata": str(path)}).instances["00001"].bbox == (-20, -10, 100, 200)


def test_private_hosts_pass_metadata_and_are_refused_at_download(write_json):
    # the download stage owns the check (test_download.test_private_hosts_are_refused_by_default)
    # because a public name can resolve to a private address
    path = write_json(wlasl(with_(url="http://169.254.169.254/latest/meta-data")))
    assert load({"metadata": str(path)}).instances["00001"].site == "169.254.169.254"


def test_free_text_glosses_are_kept_verbatim(write_json):
    gloss = 'it\'s a "sign" / ../ünïcödé'
    ds = load({"metadata": str(write_json(wlasl(GOOD, gloss=gloss)))})
    assert ds.instances["00001"].gloss == gloss


def test_local_files_only_where_allowed(write_json):
    path = write_json(wlasl(with_(url="videos/a.mp4")))
    ds = load({"metadata": str(path), "allow_local_files": True})
    assert ds.instances["00001"].site == "local"


def test_trim_times_follow_wlasl_semantics(write_json):
    path = write_json(wlasl(with_(frame_start=26, frame_end=50)))
    inst = load({"metadata": str(path)}).instances["00001"]
    assert inst.start_s == pytest.approx(1.0)
    assert inst.end_s == pytest.approx(2.0)
    assert load({"metadata": str(write_json(wlasl(GOOD)))}).instances["00001"].end_s is None


def test_csv_without_split_column_gets_a_deterministic_signer_aware_split(tmp_path):
    rows = ["video_file,sentence_id,sentence,category,signer"]
    for i in range(200):
        rows.append(f"clips/s{i:03d}.mp4,{i},sentence number {i},cat,signer{i % 20}")
    path = tmp_path / "ghsl.csv"
    path.write_text("\n".join(rows) + "\n")
    cfg = {
        "metadata": str(path),
        "format": "csv",
        "allow_local_files": True,
        "csv": {"label_column": "sentence", "signer_column": "signer"},
    }
    first = load(cfg)
    assert first.instances == load(cfg).instances
    splits_of_signer: dict[str, set[str]] = {}
    for inst in first.instances.values():
        splits_of_signer.setdefault(inst.signer_id, set()).add(inst.split)
    assert all(len(s) == 1 for s in splits_of_signer.values())
    assert {i.split for i in first.instances.values()} == {"train", "val", "test"}
    assert first.instances["s007"].gloss == "sentence number 7"


def test_csv_missing_column_is_named(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("file,gloss\na.mp4,hello\n")
    with pytest.raises(MetadataError, match="'video_file'"):
        load({"metadata": str(path), "format": "csv", "allow_local_files": True})


def test_a_fifo_as_metadata_fails_at_once_naming_it(tmp_path):
    fifo = tmp_path / "meta.json"
    os.mkfifo(fifo)  # nobody writes to it: a reader would wait forever
    started = time.monotonic()
    for fmt in ("wlasl", "csv"):
        with pytest.raises(MetadataError) as err:
            load({"metadata": str(fifo), "format": fmt})
        assert str(err.value) == f"{fifo}: a FIFO (named pipe), not a metadata file"
    assert time.monotonic() - started < 1
    with pytest.raises(MetadataError, match=f"^{tmp_path}: a directory, not a metadata file$"):
        load({"metadata": str(tmp_path)})


def test_json_nested_too_deeply_is_named(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(MetadataError) as err:
        load({"metadata": str(path)})
    assert str(err.value).startswith(f"{path}: JSON nested too deeply to read")
    assert "\n" not in str(err.value)


def test_the_label_cap_is_a_config_bound(write_json):
    sentence = "a long sentence " * 100  # 1,600 characters
    path = write_json(wlasl(GOOD, gloss=sentence))
    with pytest.raises(MetadataError, match=r"1600 characters \(at most 1000: dataset.max_label"):
        load({"metadata": str(path)})
    ds = load({"metadata": str(path), "max_label_chars": 2000})
    assert ds.instances["00001"].gloss == sentence


def three_signers(tmp_path, fractions=None) -> metadata.Dataset:
    rows = ["video_file,gloss,signer"]
    rows += [f"s{i}.mp4,sign {i},signer{i % 3}" for i in range(6)]
    path = tmp_path / "three.csv"
    path.write_text("\n".join(rows) + "\n")
    cfg = {"metadata": str(path), "format": "csv", "allow_local_files": True,
           "csv": {"signer_column": "signer"}, "split_fractions": fractions or {}}  # fmt: skip
    return load(cfg)


def test_a_split_that_misses_its_fractions_says_what_it_got(tmp_path):
    ds = three_signers(tmp_path)
    got = {s: len(ds.by_split(s)) for s in metadata.SPLITS}
    assert sum(got.values()) == 6 and got["train"] < 6 * 0.8 - 0.3  # three signers, kept whole
    assert ds.split_note.startswith("signer-aware split: the requested fractions train 0.80/val ")
    obtained = "/".join(f"{s} {got[s] / 6:.2f}" for s in metadata.SPLITS)
    assert f"with 3 signers, each kept whole in one split; obtained {obtained} (" in ds.split_note
    # fractions that whole signers meet are not reported
    assert three_signers(tmp_path, {"train": 1.0, "val": 0.0}).split_note == ""


def ghsl_csv(tmp_path, rows: list[str]) -> dict:
    path = tmp_path / "ghsl.csv"
    path.write_text("video_file,sentence_id,sentence,category,signer\n" + "\n".join(rows) + "\n")
    return {"metadata": str(path), "format": "csv", "allow_local_files": True,
            "csv": {"label_column": "sentence", "signer_column": "signer"}}  # fmt: skip


def test_every_csv_column_travels_with_its_instance_under_a_meta_name(tmp_path):
    cfg = ghsl_csv(tmp_path, ['a.mp4,S1,"Hello, how are you?",greeting,NA',
                              "b.mp4,S2,$(rm -rf ~);`id`,null,../../etc/passwd"])  # fmt: skip
    ds = load(cfg)
    assert dict(ds.instances["a"].extra) == {
        "meta_video_file": "a.mp4", "meta_sentence_id": "S1",
        "meta_sentence": "Hello, how are you?", "meta_category": "greeting", "meta_signer": "NA",
    }  # fmt: skip
    # values are data: kept verbatim, never a file name
    assert dict(ds.instances["b"].extra)["meta_sentence"] == "$(rm -rf ~);`id`"
    assert dict(ds.instances["b"].extra)["meta_signer"] == "../../etc/passwd"


def test_the_tables_keep_every_metadata_column_as_text(tmp_path):
    from signpose import tables

    cfg = ghsl_csv(tmp_path, ["a.mp4,007,Hello,NA,s1", "b.mp4,8,Bye,,s2"])
    df = tables.instances_table(load(cfg), [], {})
    tables.write_csv(df, tmp_path / "instances.csv")
    back = tables.read_instances(tmp_path / "instances.csv").set_index("video_id")
    assert back.loc["a", "meta_sentence_id"] == "007"  # not the number 7
    assert back.loc["a", "meta_category"] == "NA"  # not a missing value
    assert back.loc["b", "meta_category"] == ""
    assert list(back.loc["b", ["meta_sentence", "meta_signer", "gloss"]]) == ["Bye", "s2", "Bye"]
    assert back.loc["b", "text_variations"] == '["Bye"]'  # without paraphrases: the label alone


def test_wlasl_fields_the_loader_does_not_use_are_kept(write_json):
    path = write_json(wlasl(with_(label_id="x", note={"a": [1, "é"]})))
    inst = load({"metadata": str(path)}).instances["00001"]
    assert dict(inst.extra) == {"meta_instance_id": "0", "meta_source": "test",
                                "meta_variation_id": "0", "meta_label_id": "x",
                                "meta_note": '{"a": [1, "é"]}'}  # fmt: skip
    assert inst.gloss == "book"  # a field named like an internal key plays no role


def test_a_label_id_makes_two_spellings_one_class(tmp_path):
    cfg = ghsl_csv(tmp_path, ["a.mp4,S1,Hello there,g,s1", "b.mp4,S1,hello there!,g,s2",
                              "c.mp4,S2,Hello there!,g,s3"])  # fmt: skip
    plain = load(cfg)
    assert len({i.gloss for i in plain.instances.values()}) == 3
    cfg["csv"]["label_id_column"] = "sentence_id"
    ds = load(cfg)
    glosses = [i.gloss for i in ds.instances.values()]
    assert glosses == ["Hello there", "Hello there", "Hello there!"]
    assert dict(ds.instances["b"].extra)["meta_sentence"] == "hello there!"  # spelling kept


@pytest.mark.parametrize(
    "rows, problem",
    [
        (["a.mp4,,Hello,g,s1"], "line 2: field 'label_id': empty"),
        (["a.mp4,S1,Hello,g"], "line 2: not the 5 columns of the header"),
        (["a.mp4,S1,Hello,g,s1,extra"], "line 2: not the 5 columns of the header"),
    ],
)
def test_broken_csv_rows_are_named(tmp_path, rows, problem):
    cfg = ghsl_csv(tmp_path, rows)
    cfg["csv"]["label_id_column"] = "sentence_id"
    with pytest.raises(MetadataError, match=problem):
        load(cfg)


def test_a_column_named_twice_is_refused_and_an_unnamed_one_numbered(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("video_file,gloss,note,note\na.mp4,hi,1,2\n")
    cfg = {"metadata": str(path), "format": "csv", "allow_local_files": True}
    with pytest.raises(MetadataError, match="column 'note' appears twice in the header"):
        load(cfg)
    path.write_text("video_file,gloss,\na.mp4,hi,\n")  # a trailing comma from a spreadsheet
    assert dict(load(cfg).instances["a"].extra)["meta_column_3"] == ""


def test_report_groups_name_metadata_columns_by_their_own_names(tmp_path, write_json):
    ds = load(ghsl_csv(tmp_path, ["a.mp4,S1,Hello,g,s1"]))
    got = metadata.group_columns(ds, ["category", "split", "meta_signer"])
    assert got == ["meta_category", "split", "meta_signer"]
    with pytest.raises(MetadataError, match=r"^report.group_by: no column 'categry' in the meta"):
        metadata.group_columns(ds, ["categry"])
    # WLASL instances need not share their fields
    other = with_(video_id="00002", extra_field="x")
    wl = load({"metadata": str(write_json(wlasl(GOOD, other)))})
    assert metadata.group_columns(wl, ["extra_field", "source"]) == [
        "meta_extra_field", "meta_source"]  # fmt: skip


def signer_independent(path, seed=0, subset=None) -> metadata.Dataset:
    return load({"metadata": str(path), "subset": subset, "split": "signer_independent",
                 "seed": seed})  # fmt: skip


def signers_by_split(ds: metadata.Dataset) -> dict[str, set[str]]:
    return {s: {ds.instances[v].signer_id for v in ds.by_split(s)} for s in metadata.SPLITS}


@needs(WLASL_300)
def test_the_signer_independent_split_of_wlasl_keeps_signers_apart_and_glosses_trained():
    official = load({"metadata": str(WLASL_300), "subset": 100})
    overlap = signers_by_split(official)
    assert overlap["train"] & overlap["test"]  # the official split shares signers
    ds = signer_independent(WLASL_300, subset=100)
    assert set(ds.instances) == set(official.instances)
    by_split = signers_by_split(ds)
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not by_split[a] & by_split[b], (a, b)
    trained = {ds.instances[v].gloss for v in ds.by_split("train")}
    assert trained == {i.gloss for i in ds.instances.values()}  # every gloss has train clips
    n, train, val, test = counts(ds)
    # WLASL's signers are of very different sizes: placed by size, the shares still hold
    for got, share in ((train, 0.8), (val, 0.1), (test, 0.1)):
        assert abs(got / n - share) < 0.03, (train, val, test)
    assert ds.split_note.startswith("signer-independent split (dataset.seed 0): obtained train ")
    assert f"({train}/{val}/{test} of {len(ds.instances)} instances, " in ds.split_note
    # reproducible by seed, and another seed is another split
    again, other = signer_independent(WLASL_300, subset=100), signer_independent(WLASL_300, 1, 100)
    assert {v: i.split for v, i in again.instances.items()} == {
        v: i.split for v, i in ds.instances.items()}  # fmt: skip
    assert {v: i.split for v, i in other.instances.items()} != {
        v: i.split for v, i in ds.instances.items()}  # fmt: skip


def instance(vid: str, gloss: str, signer: str) -> metadata.Instance:
    return metadata.Instance(vid, gloss, "train", "u", "s", 1, -1, 25.0, None, signer, "local")


def test_a_gloss_without_train_gets_its_smallest_signer_moved_unless_a_split_would_empty():
    # s0 signs "a" once and "b" twice; s1..s19 sign "a" once each; "c" by s16 (twice) and s17
    rows = [instance("v0", "a", "s0"), instance("b1", "b", "s0"), instance("b2", "b", "s0")]
    rows += [instance(f"v{i}", "a", f"s{i}") for i in range(1, 20)]
    rows += [instance("c1", "c", "s16"), instance("c2", "c", "s16"), instance("c3", "c", "s17")]
    rows = {r.video_id: r for r in rows}
    unit_of = {v: r.signer_id for v, r in rows.items()}
    place = {"s0": "test", **{f"s{i}": "train" if i <= 10 else "val" if i <= 15 else "test"
                              for i in range(1, 20)}}  # fmt: skip
    before = dict(place)
    metadata.give_every_gloss_train(rows, unit_of, place)
    assert place == before | {"s0": "train", "s17": "train"}  # "b" and "c" now have train
    # one signer per gloss: moving any would empty its split, so the glosses stay untrained
    alone = {f"v{i}": instance(f"v{i}", f"g{i}", f"s{i}") for i in range(3)}
    place = {"s0": "train", "s1": "val", "s2": "test"}
    metadata.give_every_gloss_train(alone, {v: r.signer_id for v, r in alone.items()}, place)
    assert place == {"s0": "train", "s1": "val", "s2": "test"}


def test_balanced_places_fill_each_split_to_its_share_in_the_order_given():
    size = {"big": 8, "a": 1, "b": 1, "c": 1, "d": 1}
    shares = {"train": 0.6, "val": 0.2, "test": 0.2}
    assert metadata.balanced_places(size, ["a", "big", "b", "c", "d"], shares) == {
        "a": "train", "big": "train", "b": "val", "c": "test", "d": "val"}  # fmt: skip
