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
from signpose import metadata, tombstone
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


@pytest.mark.parametrize(
    "path, subset",
    [
        pytest.param(WLASL_300, 100, marks=needs(WLASL_300)),
        pytest.param(WLASL_300, 300, marks=needs(WLASL_300)),
        pytest.param(WLASL_2000, 2000, marks=[needs(WLASL_2000), pytest.mark.slow]),
    ],
)
def test_dry_run_plans_one_download_per_source_and_one_job_per_instance(tmp_path, path, subset):
    proc = snakemake("-n", *wlasl_config(path, subset, tmp_path))
    counts = job_counts(proc.stdout)
    dataset = {"name": "wlasl", "metadata": str(path), "subset": subset}
    ds = metadata.load(with_defaults(dataset, section="dataset"))
    assert counts["download"] == len(ds.urls) < len(ds.instances)
    for rule in ("pose", "features"):  # pose cuts the clip too
        assert counts[rule] == len(ds.instances)
    assert counts["lexicon"] == 4 and counts["train"] == 1 and counts["tables"] == 1


def test_config_errors_name_the_key(tmp_path):
    proc = snakemake("-n", "--config", "clip={'crop': 'sideways'}", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "sideways" in out and "['clip']['crop']" in out
    proc = snakemake("-n", "--config", "no_such_key=1", check=False)
    assert proc.returncode != 0 and "no_such_key" in proc.stdout + proc.stderr


def test_bad_metadata_stops_the_run_at_start_with_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    record = {
        "bbox": [0, 0, 9, 9],
        "fps": 25,
        "frame_start": 1,
        "frame_end": -1,
        "split": "train",
        "url": "https://example.org/a.mp4",
        "video_id": "../x",
    }
    bad.write_text(json.dumps([{"gloss": "a", "instances": [record]}]))
    proc = snakemake("-n", "--config", f"dataset={{'name': 'bad', 'metadata': '{bad}'}}",
                     check=False)  # fmt: skip
    assert proc.returncode != 0
    lines = (proc.stdout + proc.stderr).splitlines()
    assert any(str(bad) in line and "field 'video_id'" in line for line in lines)


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
    assert test["top1"] >= test["majority_baseline_top1"] + 0.25
    assert metrics["tflite"]["agreement"] >= 0.99


@pytest.mark.slow
def test_demo_second_dry_run_has_nothing_to_do(demo):
    proc = snakemake("-n", "--config", f"results_dir={demo}")
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_report_has_every_section(demo, tmp_path):
    report = tmp_path / "report.html"
    snakemake("--report", str(report), "--config", f"results_dir={demo}")
    html = report.read_text(encoding="utf-8", errors="replace")
    for name in ("dataset.html", "metrics.html", "instances.csv", "failures.csv", "funnel.csv",
                 "qc.png", "skeletons.png", "training_curves.png", "confusion_matrix.png",
                 "metrics.json"):  # fmt: skip
        assert name in html
