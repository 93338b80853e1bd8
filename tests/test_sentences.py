"""The sentence-level demo (config/sentences.yaml): a GHSL-style CSV run end to end by Snakemake."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from test_workflow import snakemake

from conftest import ROOT
from signpose import tables

CONFIG = ["--configfile", "config/sentences.yaml"]


@pytest.fixture(scope="module")
def sentences(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("sentences")
    proc = snakemake("--cores", "2", *CONFIG, "--config", f"results_dir={results}", check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return results


@pytest.mark.slow
def test_every_csv_column_reaches_the_instances_table(sentences):
    with open(ROOT / "resources/demo/sentences.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    table = tables.read_instances(sentences / "tables" / "instances.csv")
    assert len(table) == len(rows)
    for row, got in zip(rows, table.itertuples(), strict=True):
        assert Path(row["video_file"]).stem == got.video_id
        for column, value in row.items():
            assert getattr(got, f"meta_{column}") == value
    # two spellings of sentence S01, one class named by its first spelling
    s01 = table[table["meta_sentence_id"] == "S01"]
    assert set(s01["meta_sentence"]) == {"Call me later.", "call me later"}
    assert set(s01["gloss"]) == {"Call me later."}
    assert set(table["split"]) == {"train", "val", "test"}  # no split column: by signer


@pytest.mark.slow
def test_the_report_is_broken_down_by_category(sentences, tmp_path):
    page = (sentences / "report" / "dataset.html").read_text(encoding="utf-8")
    assert "<h2>Funnel by category" in page and "<td>greeting</td>" in page
    assert "<h2>Accuracy by category" in (sentences / "report" / "metrics.html").read_text()
    assert (sentences / "report" / "groups.png").read_bytes()[:4] == b"\x89PNG"
    report = tmp_path / "report.html"
    snakemake("--report", str(report), *CONFIG, "--config", f"results_dir={sentences}")
    html = report.read_text(encoding="utf-8", errors="replace")
    for name in ("dataset.html", "metrics.html", "groups.png", "instances.csv"):
        assert name in html


@pytest.mark.slow
def test_the_statistics_name_their_clips(sentences):
    table = tables.read_instances(sentences / "tables" / "instances.csv")
    train = table[(table["split"] == "train") & (table["status"] == "kept")]
    with np.load(sentences / "stats" / "global_stats.npz") as z:
        assert list(z["video_ids"]) == list(train["video_id"])
        np.testing.assert_array_equal(z["seq_lengths"], z["lengths"])
        np.testing.assert_array_equal(z["feature_mean"], z["mean"])
