"""Snakemake itself: planning on real WLASL metadata, and the whole demo end to end."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, WLASL_300, WLASL_2000, needs
from signpose import shards, tombstone
from signpose.config import with_defaults

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def snakemake(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([SNAKEMAKE, "--nolock", *args], cwd=ROOT, capture_output=True,
                          text=True, check=check)  # fmt: skip


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:")[1].split("Reasons:")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def wlasl_config(path: Path, subset: int, results: Path) -> list[str]:
    """config/wlasl.yaml with an overlay naming the metadata file (--config makes ints strings)."""
    overlay = results / "overlay.yaml"
    dataset = {"name": f"wlasl{subset}", "metadata": str(path), "subset": subset}
    overlay.write_text(json.dumps({"dataset": dataset, "results_dir": str(results)}))
    return ["--configfile", "config/wlasl.yaml", str(overlay)]


def distinct_urls(path: Path, subset: int) -> int:
    """Distinct source URLs of the first `subset` glosses, read from the raw JSON without
    signpose (in WLASL no two spellings of a URL name one YouTube video, so each is a source)."""
    entries = json.loads(path.read_text())[:subset]
    return len({inst["url"].strip() for entry in entries for inst in entry["instances"]})


@pytest.mark.parametrize(
    "path, subset, instances",
    [  # the instance counts the WLASL files publish (2,000: the reconstruction's 21,095)
        pytest.param(WLASL_300, 100, 2038, marks=needs(WLASL_300)),
        pytest.param(WLASL_300, 300, 5117, marks=needs(WLASL_300)),
        pytest.param(WLASL_2000, 2000, 21095, marks=[needs(WLASL_2000), pytest.mark.slow]),
    ],
)
def test_dry_run_plans_one_download_per_source_and_one_job_per_instance(
    tmp_path, path, subset, instances
):
    proc = snakemake("-n", *wlasl_config(path, subset, tmp_path))
    counts = job_counts(proc.stdout)
    assert counts["download"] == distinct_urls(path, subset) < instances
    assert counts["pose"] == instances  # pose cuts the clip too
    # features: one job per non-empty shard (a hash of video_id), not one per instance
    entries = json.loads(path.read_text())[:subset]
    ids = [inst["video_id"] for entry in entries for inst in entry["instances"]]
    shard_count = with_defaults({}, "features")["shards"]
    assert counts["features"] == len(shards.by_shard(ids, shard_count)) <= shard_count
    assert counts["lexicon"] == 4 and counts["train"] == 1 and counts["tables"] == 1


def test_config_errors_name_the_key(tmp_path):
    """A real Snakemake start (row 20): the schema's message names the key path."""
    proc = snakemake("-n", "--config", "clip={'crop': 'sideways'}", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "sideways" in out and "['clip']['crop']" in out
    proc = snakemake("-n", "--config", "no_such_key=1", check=False)
    assert proc.returncode != 0 and "no_such_key" in proc.stdout + proc.stderr


BAD_RECORD = {"bbox": [0, 0, 9, 9], "fps": 25, "frame_start": 1, "frame_end": -1,
              "split": "train", "url": "https://example.org/a.mp4", "video_id": "../x"}  # fmt: skip


@pytest.mark.parametrize(
    "content, dataset, message",
    [
        (b"[{not json", {}, "{path}: invalid JSON at line 1 column 3"),
        (None, {}, "{path}: metadata file not found"),
        (b'[{"gloss": "a", "instances": []}, {"gloss": "b", "instances": [{}]}]', {"subset": 1},
         "{path}: no instances"),
        (json.dumps([{"gloss": "a", "instances": [BAD_RECORD]}]).encode(), {},
         "{path}: entry 0 (gloss 'a') instance 0: field 'video_id'"),
        (b"[]", {"format": "xml"}, "'xml' is not one of ['wlasl', 'csv']"),
    ],
    ids=["invalid_json", "not_found", "no_instances", "bad_field", "unknown_format"],
)  # fmt: skip
def test_bad_metadata_stops_the_run_at_start_with_one_line(tmp_path, content, dataset, message):
    """The README's command on bad metadata: one line naming the file, and no job starts."""
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_bytes(content)
    results = tmp_path / "results"
    overlay = tmp_path / "overlay.json"
    dataset = {"name": "bad", "metadata": str(bad), **dataset}
    overlay.write_text(json.dumps({"dataset": dataset, "results_dir": str(results)}))
    proc = snakemake("--cores", "1", "--configfile", str(overlay), check=False)
    assert proc.returncode != 0
    lines = (proc.stdout + proc.stderr).splitlines()
    assert [line for line in lines if message.format(path=bad) in line], lines[-10:]
    assert not results.exists()  # stopped before any job


@pytest.mark.slow
def test_demo_produces_every_stage(demo):
    table = pd.read_csv(demo / "tables" / "instances.csv", dtype={"video_id": str})
    kept = table[table["status"] == "kept"]
    assert len(kept) >= 30 and set(kept["split"]) == {"train", "val", "test"}
    for vid in kept["video_id"]:
        assert (demo / "clips" / f"{vid}.mp4").stat().st_size > 1000
        assert (demo / "poses" / f"{vid}.pose").stat().st_size > 10_000
        feats = np.load(demo / "features" / f"{vid}.npy")
        assert feats.shape[1] == 540 and feats.dtype == np.float32
    # The demo's dead link is recorded, not lost, at every stage.
    dead = table[table["status"] == "dead"]
    assert list(dead["reason"]) == ["local_missing"]
    vid = dead["video_id"].iloc[0]
    for path in (f"clips/{vid}.mp4", f"poses/{vid}.pose", f"features/{vid}.npy"):
        assert tombstone.read(demo / path).reason == "local_missing"
    # Two instances cut from one source: one download.
    assert len(list((demo / "sources").iterdir())) == table["source_id"].nunique() < len(table)
    for split in ("train", "val", "test", "all"):
        assert (demo / "lexicon" / split / "index.csv").exists()
    metrics = json.loads((demo / "model" / "metrics.json").read_text())
    test = metrics["splits"]["test"]
    assert test["n_evaluated"] >= 6
    assert test["top1"] > test["majority_baseline_top1"]
    # On the kept test clips (a low_quality one is scored too, and counts in `top1`), well
    # above the majority-class baseline.
    kept = table[table["status"] == "kept"]
    counts = kept[kept["split"] == "train"]["gloss"].value_counts()
    majority = min(counts[counts == counts.max()].index)  # ties: the first class id
    predicted = pd.read_csv(demo / "model" / "predictions.csv", dtype=str)
    first = predicted[(predicted["split"] == "test") & (predicted["rank"] == "1")]
    first = first[first["video_id"].isin(kept["video_id"])]
    top1 = (first["prediction"] == first["gloss"]).mean()
    assert top1 >= (first["gloss"] == majority).mean() + 0.25, first
    assert metrics["tflite"]["agreement"] >= 0.99


@pytest.mark.slow
def test_demo_metrics_count_every_listed_instance(demo):
    table = pd.read_csv(demo / "tables" / "instances.csv", dtype=str, keep_default_na=False)
    metrics = json.loads((demo / "model" / "metrics.json").read_text())
    for name, figures in metrics["splits"].items():
        rows = table[table["split"] == name]
        with_features = rows["status"].isin(["kept", "low_quality"])
        assert figures["n_listed"] == len(rows)
        assert figures["n_with_features"] == figures["n_items"] == with_features.sum()
        hits = figures["top1"] * figures["n_evaluated"]
        assert figures["top1_all"] == pytest.approx(hits / len(rows))
        assert figures["top1_all"] <= figures["top1"]
        trained = set(table[(table["split"] == "train") & (table["status"] == "kept")]["signer_id"])
        assert figures["n_signer_seen_in_train"] == rows["signer_id"].isin(trained - {""}).sum()
        # the demo has 5 classes or fewer: top-5 would be 1.0 by construction
        assert metrics["n_classes"] > 5 or figures["top5"] is figures["top5_all"] is None
    page = (demo / "report" / "metrics.html").read_text(encoding="utf-8")
    assert "<td>val (selection)</td>" in page and "top-1 of all listed" in page


@pytest.mark.slow
def test_seeds_train_once_each_and_keep_the_best_on_val(demo, tmp_path):
    import shutil

    results = tmp_path / "results"
    shutil.copytree(demo, results, symlinks=True)  # the demo's poses and tables, times kept
    overlay = tmp_path / "overlay.json"
    overlay.write_text(json.dumps({"results_dir": str(results),
                                   "train": {"seeds": [3, 4], "epochs": 8}}))  # fmt: skip
    plan = job_counts(snakemake("-n", "--configfile", str(overlay)).stdout)
    assert plan["train_seed"] == plan["evaluate_seed"] == 2 and "train" not in plan
    assert plan["select_seed"] == plan["evaluate"] == 1 and "pose" not in plan
    snakemake("--cores", "2", "--configfile", str(overlay))
    over = json.loads((results / "model" / "seeds.json").read_text())
    runs = {s: json.loads((results / "model" / "seeds" / str(s) / "metrics.json").read_text())
            for s in (3, 4)}  # fmt: skip
    val = {s: runs[s]["splits"]["val"] for s in runs}
    best = max(runs, key=lambda s: (val[s]["top1"], -val[s]["loss"], -s))
    assert over["kept_seed"] == best
    kept = results / "model" / "seeds" / str(best)
    assert (results / "model" / "model.keras").read_bytes() == (kept / "model.keras").read_bytes()
    metrics = json.loads((results / "model" / "metrics.json").read_text())
    assert metrics["splits"]["test"]["top1"] == runs[best]["splits"]["test"]["top1"]
    tops = [runs[s]["splits"]["test"]["top1"] for s in runs]
    assert over["test"]["top1"]["mean"] == pytest.approx(np.mean(tops))
    low, high = over["test"]["top1"]["ci95"]
    assert low <= np.mean(tops) <= high
    page = (results / "report" / "metrics.html").read_text(encoding="utf-8")
    assert "<h2>Over seeds" in page and f"seed <b>{best}</b>" in page
    assert (results / "model" / "pipeline.json").exists()  # what `signpose recognise` reads


@pytest.mark.slow
def test_demo_second_dry_run_has_nothing_to_do(demo):
    proc = snakemake("-n", "--config", f"results_dir={demo}")
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_a_new_instance_reruns_its_own_shard_and_the_whole_dataset_steps(demo, tmp_path):
    """Features run one job per shard; one more instance must not redo the other shards."""
    demo_json = ROOT / "resources" / "demo" / "WLASL_demo.json"
    groups = json.loads(demo_json.read_text())
    first = groups[0]["instances"][0]
    groups[0]["instances"].append({**first, "video_id": "demo99999"})  # its source: downloaded
    (tmp_path / "videos").symlink_to(demo_json.parent / "videos")  # URLs are relative
    (tmp_path / "meta.json").write_text(json.dumps(groups))
    overlay = tmp_path / "overlay.json"
    dataset = {"name": "demo", "metadata": str(tmp_path / "meta.json"), "allow_local_files": True}
    overlay.write_text(json.dumps({"dataset": dataset, "results_dir": str(demo)}))
    counts = job_counts(snakemake("-n", "--configfile", str(overlay)).stdout)
    assert counts["pose"] == 1 and counts["features"] == 1 and "download" not in counts
    assert counts["tables"] == 1


@pytest.mark.slow
def test_report_has_every_section(demo, tmp_path):
    report = tmp_path / "report.html"
    snakemake("--report", str(report), "--config", f"results_dir={demo}")
    html = report.read_text(encoding="utf-8", errors="replace")
    for name in ("dataset.html", "metrics.html", "instances.csv", "failures.csv", "funnel.csv",
                 "qc.png", "skeletons.png", "training_curves.png", "confusion_matrix.png",
                 "metrics.json"):  # fmt: skip
        assert name in html
