from __future__ import annotations

import pandas as pd

from signpose.summary import accuracy_by_group, dataset_html, metrics_html, reasons_table
from signpose.tables import funnel_table, read_funnel, split_counts, write_csv


def instances() -> pd.DataFrame:
    def row(vid, split, status, stage, reason="", frames=50.0, signer="s1", **flags):
        posed = status in ("kept", "low_quality")
        return {"video_id": vid, "gloss": "book", "split": split, "signer_id": signer,
                "site": "youtube", "status": status, "stage": stage, "reason": reason,
                "downloaded": flags.get("downloaded", True), "clipped": flags.get("clipped", True),
                "posed": posed, "frames": frames if posed else None,
                "body_ratio": 1.0 if posed else None}  # fmt: skip

    return pd.DataFrame([
        row("v1", "train", "kept", "features", frames=40),
        row("v2", "train", "kept", "features", frames=60),
        row("v3", "train", "low_quality", "features", "min_hand_ratio", frames=30, signer="s2"),
        row("v4", "test", "dead", "download", "http_404", downloaded=False, clipped=False),
        row("v5", "test", "dead", "download", "http_404", downloaded=False, clipped=False,
            signer=""),
        row("v6", "val", "dead", "clip", "trim_outside_video", clipped=False, signer="s2"),
    ])  # fmt: skip


def test_reasons_are_counted_with_examples_most_frequent_first():
    table = reasons_table(instances())
    assert table.to_dict("records")[0] == {"stage": "download", "status": "dead",
                                           "reason": "http_404", "instances": 2,
                                           "examples": "v4 v5"}  # fmt: skip
    assert table["instances"].sum() == 4


def funnel_csv_of(df: pd.DataFrame, tmp_path, groups=()) -> pd.DataFrame:
    """The funnel as the report jobs get it: written to funnel.csv once, then read back."""
    write_csv(funnel_table(df, ["split", "site", *groups]), tmp_path / "funnel.csv")
    return read_funnel(tmp_path / "funnel.csv")


def test_dataset_page_has_the_funnel_the_reasons_and_the_qc_medians(tmp_path):
    page = dataset_html(instances(), funnel_csv_of(instances(), tmp_path), "wlasl100")
    assert "<b>2</b> of <b>6</b> listed instances were kept (33.3%)" in page
    assert "listed 6 → downloaded 4 → clipped 3 → posed 3 → kept 2" in page
    for heading in ("Funnel", "Why instances were lost or flagged", "QC medians"):
        assert f"<h2>{heading}" in page
    assert "trim_outside_video" in page and "min_hand_ratio" in page
    # kept: 2 clips, median 50 frames; low quality: 1 clip of 30 frames
    assert "<td>kept</td>\n      <td>2</td>\n      <td>50</td>" in page
    assert "<td>low_quality</td>\n      <td>1</td>\n      <td>30</td>" in page


def test_dataset_page_without_failures(tmp_path):
    ok = instances().iloc[:2]
    assert "(100.0%)" in dataset_html(ok, funnel_csv_of(ok, tmp_path), "demo")


def test_the_funnel_reads_back_as_written_even_for_a_site_named_na(tmp_path):
    df = instances().assign(site=["NA", "NA", "null", "youtube", "youtube", "youtube"])
    assert funnel_csv_of(df, tmp_path).equals(funnel_table(df))


def test_metrics_page_has_every_split_the_baseline_tflite_and_each_class():
    def split(top1, majority, per_class):
        return {"n_evaluated": 3, "n_excluded_unknown_gloss": 1, "top1": top1, "top5": 1.0,
                "mean_per_class_top1": top1, "majority_baseline_top1": majority,
                "per_class": per_class}  # fmt: skip

    metrics = {
        "n_classes": 2, "chance_top1": 0.5,
        "splits": {"val": split(0.667, 0.333, {"book": {"n": 2, "top1": 1.0}}),
                   "test": split(0.333, 0.667, {"book": {"n": 1, "top1": 0.0},
                                                "drink": {"n": 2, "top1": 0.5}})},
        "tflite": {"split": "test", "n": 3, "agreement": 1.0},
    }  # fmt: skip
    page = metrics_html(metrics)
    for text in ("<td>val (selection)</td>", "<td>test</td>", "<td>0.667</td>",
                 "majority-class top-1", "on 100.0% of the 3 test items", "<td>drink</td>",
                 "test top1", "val (selection) top1", "the <b>selection split</b>"):  # fmt: skip
        assert text in page


def test_a_split_note_and_the_shares_are_on_the_dataset_page(tmp_path):
    note = "signer-aware split: the requested fractions train 0.80/val 0.10/test 0.10 are not met"
    funnel = funnel_csv_of(instances(), tmp_path)
    page = dataset_html(instances(), funnel, "demo", note)
    assert "<h2>Splits" in page and f"<b>Note:</b> {note}." in page
    assert "<td>train</td>\n      <td>3</td>\n      <td>0.5</td>" in page
    assert "Note:" not in dataset_html(instances(), funnel, "demo")


def test_signer_overlap_is_counted_per_split_against_the_signers_trained_on(tmp_path):
    # s1 signs the kept train clips; s2 only a low_quality one, which training leaves out
    assert split_counts(instances()) == {
        "train": {"n_listed": 3, "n_with_features": 3, "n_signer_known": 3,
                  "n_signer_seen_in_train": 2},
        "val": {"n_listed": 1, "n_with_features": 0, "n_signer_known": 1,
                "n_signer_seen_in_train": 0},
        "test": {"n_listed": 2, "n_with_features": 0, "n_signer_known": 1,
                 "n_signer_seen_in_train": 1}}  # fmt: skip
    page = dataset_html(instances(), funnel_csv_of(instances(), tmp_path), "demo")
    assert "<th>signer seen in train</th>" in page
    assert "<td>test</td>\n      <td>2</td>\n      <td>0.333</td>\n      <td>1</td>\n" in page


def test_unevaluated_splits_are_said_with_their_counts():
    def split(listed, unknown):
        figures = ("top1", "top5", "mean_per_class_top1", "majority_baseline_top1")
        return {"n_items": listed, "n_excluded_unknown_gloss": unknown, "n_skipped_tombstone": 0,
                "n_skipped_empty": 0, "n_used": 0, "n_evaluated": 0, "per_class": {},
                **dict.fromkeys(figures)}  # fmt: skip

    # a sentence dataset whose val sentences never occur in train, and an empty test split
    metrics = {"n_classes": 2, "chance_top1": 0.5,
               "splits": {"val": split(4, 4), "test": split(0, 0)},
               "tflite": {"ops": "builtins", "bytes": 1000}}  # fmt: skip
    page = metrics_html(metrics)
    assert ("Not evaluated: val: none of its 4 items could be evaluated (4 with a gloss not in "
            "train, the others without poses or frames); test is empty") in page  # fmt: skip
    assert "agreement with the Keras model was not checked" in page
    assert "No item was evaluated in any split." in page


def split_row(page: str, heading: str) -> str:
    """The test split's row of the table under `heading`."""
    section = page[page.index(f"<h2>{heading}") :]
    row = section[section.index("<td>test</td>") :]
    return row[: row.index("</tr>")]


def test_null_figures_read_n_a_and_the_seeds_give_mean_sd_and_interval():
    test = {"n_listed": 9, "n_with_features": 8, "n_evaluated": 7, "top1": 0.429,
            "top5": None, "top1_all": 0.333, "top5_all": None, "per_class": {}}  # fmt: skip
    metrics = {"n_classes": 5, "chance_top1": 0.2, "splits": {"test": test}}
    over = {"seeds": [1, 2], "kept_seed": 2, "kept_by": "top-1 on val", "split": "test",
            "test": {"top1": {"mean": 0.5, "sd": 0.1, "ci95": [0.3, 0.7]},
                     "top1_all": {"mean": 0.4, "sd": None, "ci95": None}},
            "bootstrap": {"resamples": 2000, "seed": 0},
            "per_seed": {"1": {"val_top1": 0.5, "test_top1": 0.4},
                         "2": {"val_top1": 0.6, "test_top1": 0.6}}}  # fmt: skip
    page = metrics_html(metrics, over_seeds=over)
    scores, counts = (split_row(page, h) for h in ("Accuracy per split", "Instances per split"))
    assert "<td>7</td>" in scores and "<td>0.429</td>" in scores
    # top-5 and top-5 of all listed (null), loss and the two baselines (absent here)
    assert scores.count("<td>n/a</td>") == 5 and "<td>0.333</td>" in scores
    assert "<td>9</td>" in counts and "<td>8</td>" in counts and "<td>7</td>" in counts
    assert "<b>0.500 ± 0.100 (95% interval 0.300–0.700)</b>" in page
    assert "of all listed: 0.400 ± n/a (95% interval n/a)" in page
    assert "seed <b>2</b>" in page and "<th>val (selection) top-1</th>" in page


def with_category() -> pd.DataFrame:
    df = instances()
    df["meta_category"] = ["greeting", "greeting", "food", "food", "food", None]
    df.loc[df["video_id"].isin(["v4", "v5"]), "gloss"] = "drink"
    return df


def test_the_dataset_page_breaks_the_funnel_and_the_losses_down_by_group(tmp_path):
    df = with_category()
    funnel = funnel_csv_of(df, tmp_path, ["meta_category"])
    page = dataset_html(df, funnel, "ghsl", groups=["meta_category"])
    assert "<h2>Funnel by category" in page and "<h2>Lost or flagged by category" in page
    assert "<th>category</th>" in page and "meta_category" not in page
    funnel = funnel_table(df, ["meta_category"]).set_index("value")
    # food: 3 listed, 1 posed (low quality), none kept; greeting: both kept; v6 has no category
    assert list(funnel.loc["food", ["listed", "downloaded", "posed", "kept"]]) == [3, 1, 1, 0]
    assert list(funnel.loc["greeting", ["listed", "kept"]]) == [2, 2]
    assert list(funnel.loc["", ["listed", "clipped", "kept"]]) == [1, 0, 0]
    assert "<td>greeting</td>\n      <td>2</td>" in page
    reasons = reasons_table(df.fillna({"meta_category": ""}), ["meta_category"])
    assert reasons.to_dict("records") == [
        {"meta_category": "", "stage": "clip", "status": "dead", "reason": "trim_outside_video",
         "instances": 1, "examples": "v6"},
        {"meta_category": "food", "stage": "download", "status": "dead", "reason": "http_404",
         "instances": 2, "examples": "v4 v5"},
        {"meta_category": "food", "stage": "features", "status": "low_quality",
         "reason": "min_hand_ratio", "instances": 1, "examples": "v3"}]  # fmt: skip


def test_the_evaluation_page_gives_the_per_class_accuracy_per_group():
    df = with_category()
    df.loc[df["video_id"] == "v6", "split"] = "test"
    metrics = {"n_classes": 2, "chance_top1": 0.5,
               "splits": {"test": {"n_evaluated": 3, "top1": 0.333,
                                   "per_class": {"book": {"n": 1, "top1": 0.0},
                                                 "drink": {"n": 3, "top1": 0.5}}}}}  # fmt: skip
    page = metrics_html(metrics, df, ["meta_category"])
    assert "<h2>Accuracy by category" in page
    table = accuracy_by_group(metrics, df, "meta_category").set_index("category")
    # test: v4, v5 (drink, food) and v6 (book, no category)
    assert table.loc["food"].to_dict() == {"split": "test", "classes": 1, "items": 3,
                                           "top1": 0.5, "mean per-class top1": 0.5}  # fmt: skip
    assert table.loc[""].to_dict()["top1"] == 0.0
    assert "Accuracy by" not in metrics_html(metrics)


def test_the_group_plot_has_a_panel_per_column(tmp_path):
    from signpose.plots import group_figure, save

    fig = group_figure(with_category(), ["meta_category", "split"])
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [
        "Instances per category, by final status",
        "Instances per split, by final status",
    ]
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert sorted(labels) == ["(empty)", "food", "greeting"]
    save(fig, tmp_path / "groups.png")
    assert (tmp_path / "groups.png").read_bytes()[:4] == b"\x89PNG"


def test_a_user_column_named_like_a_project_column_keeps_its_prefix(tmp_path):
    df = with_category().assign(meta_status=["a", "a", "b", "b", "b", "b"])
    groups = ["meta_status", "meta_category"]
    page = dataset_html(df, funnel_csv_of(df, tmp_path, groups), "x", groups=groups)
    assert "<h2>Funnel by meta_status" in page and "<th>meta_status</th>" in page
    assert "<h2>Funnel by category" in page and "<th>category</th>" in page
