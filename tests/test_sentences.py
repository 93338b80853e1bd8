"""The sentence-level demo (config/sentences.yaml): a GHSL-style CSV run end to end by Snakemake."""

from __future__ import annotations

import contextlib
import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from test_workflow import snakemake

from conftest import ROOT
from llmserver import LLMServer
from signpose import tables

CONFIG = ["--configfile", "config/sentences.yaml"]


KEY_ENV = "SIGNPOSE_TEST_LLM_KEY"


def paraphrases(key: str, prompt: str) -> tuple[int, str, float]:
    sentence = prompt.rsplit("Sentence: ", 1)[-1]
    return 200, json.dumps([f"{sentence} (1)", f"In other words: {sentence}"]), 0.0


@contextlib.contextmanager
def key_set():
    """The key in the environment, as a user exports it: every Snakemake start checks it."""
    os.environ[KEY_ENV] = "loopback-secret-key"
    try:
        yield
    finally:
        del os.environ[KEY_ENV]


@pytest.fixture(scope="module")
def sentences(tmp_path_factory) -> Path:
    """The sentence demo, its paraphrases asked of a loopback OpenAI-compatible server."""
    results = tmp_path_factory.mktemp("sentences")
    overlay = results / "overlay.yaml"
    with LLMServer() as server:
        server.reply = paraphrases
        text = {"provider": "openai", "model": "loopback", "base_url": f"{server.url}/v1",
                "api_key_env": [KEY_ENV], "n": 2}  # fmt: skip
        overlay.write_text(json.dumps({"results_dir": str(results), "text": text,
                                       "lexicon": {"variations": True}}))  # fmt: skip
        with key_set():
            proc = snakemake("--cores", "2", *CONFIG, str(overlay), check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert len(server.requests) == 4  # one per distinct sentence
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
    with key_set():
        snakemake("--report", str(report), *CONFIG, str(sentences / "overlay.yaml"))
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


@pytest.mark.slow
def test_every_phrasing_is_in_the_table_and_the_lexicon(sentences):
    doc = json.loads((sentences / "text" / "variations.json").read_text(encoding="utf-8"))
    assert doc["failed"] == {}
    assert doc["variations"]["Rock on!"] == ["Rock on!", "Rock on! (1)", "In other words: Rock on!"]
    table = tables.read_instances(sentences / "tables" / "instances.csv")
    for row in table.itertuples():
        assert json.loads(row.text_variations) == doc["variations"][row.gloss]
    lexicon = (sentences / "lexicon" / "all" / "index.csv").read_text(encoding="utf-8")
    kept = table[table["status"] == "kept"]
    assert len(lexicon.splitlines()) == 1 + 3 * len(kept)
    assert "in other words: call me later." in lexicon
    # the key is in no result, log, cache or Snakemake record
    for path in [*sentences.rglob("*"), *(ROOT / ".snakemake" / "metadata").glob("*")]:
        if path.is_file():
            assert b"loopback-secret-key" not in path.read_bytes(), path


def test_a_missing_key_stops_the_run_before_any_job(tmp_path):
    overlay = tmp_path / "overlay.yaml"
    text = {"provider": "gemini", "model": "m", "api_key_env": ["SIGNPOSE_TEST_UNSET_KEY"]}
    overlay.write_text(json.dumps({"results_dir": str(tmp_path / "r"), "text": text}))
    proc = snakemake("-n", *CONFIG, str(overlay), check=False)
    assert proc.returncode != 0
    lines = (proc.stdout + proc.stderr).splitlines()
    line = "text.api_key_env: environment variable SIGNPOSE_TEST_UNSET_KEY is not set"
    assert any(line in x for x in lines), proc.stderr[-2000:]
    assert not (tmp_path / "r").exists()
