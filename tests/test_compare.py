"""train.compare: the evaluation page's table of every model type trained on the same split."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from conftest import ROOT, SNAKEMAKE
from signpose import summary


def run(top1: float, params: int, seconds: float, tflite_bytes: int, ms: float):
    split = {"n_evaluated": 7, "loss": 1.2, "top1": top1, "top5": 1.0,
             "mean_per_class_top1": top1 - 0.1, "majority_baseline_top1": 0.2,
             "per_class": {"a": {"n": 7, "top1": top1}}}  # fmt: skip
    metrics = {"n_classes": 5, "chance_top1": 0.2, "splits": {"val": split, "test": split},
               "tflite": {"bytes": tflite_bytes, "ms_per_clip": ms, "agreement": 1.0,
                          "split": "test", "n": 7}}  # fmt: skip
    return metrics, {"params": params, "seconds": seconds}


def test_the_page_compares_every_model_type_in_one_table():
    runs = {"transformer": run(0.71, 60_000, 80.5, 600_000, 0.3),
            "cnn_lstm_rgb": run(0.43, 542_000, 690.5, 2_400_000, 12.5)}  # fmt: skip
    table = summary.comparison_table(runs)
    assert list(table["model type"]) == ["transformer", "cnn_lstm_rgb"]
    assert list(table.columns) == ["model type", "split", "top-1", "top-5", "top-1 of all listed",
                                   "mean per-class top-1", "parameters", "train time (s)",
                                   "TFLite MB", "TFLite ms per clip"]  # fmt: skip
    assert table["TFLite MB"].tolist() == [0.6, 2.4]
    assert (table["split"] == "test").all()
    page = summary.metrics_html(runs["transformer"][0], compared=runs)
    first = page[page.index("<table") : page.index("</table>")]
    assert first.index("transformer") < first.index("cnn_lstm_rgb")
    assert "TFLite ms per clip" in first and "542000" in first
    assert page.index("Model types on the same split") < page.index("Accuracy per split")


def test_without_compare_the_page_has_no_comparison():
    metrics, _ = run(0.71, 60_000, 80.5, 600_000, 0.3)
    assert "Model types on the same split" not in summary.metrics_html(metrics)


@pytest.mark.slow
def test_the_demo_trains_cnn_lstm_rgb_beside_its_model_and_the_page_shows_both(demo, tmp_path):
    """train.compare on the demo, on the CPU: the RGB model (tiny: 4 frames of 32x32, random
    weights, 3 epochs) beside the demo's model, then the evaluation page with both."""
    results = tmp_path / "demo"
    shutil.copytree(demo, results, symlinks=True)  # keeps the times: nothing before reruns
    model = results / "model" / "model.keras"
    trained_at = model.stat().st_mtime_ns
    knobs = {"frames": 4, "image_size": 32, "alpha": 0.35, "weights": "none", "frame_dim": 16,
             "lstm_units": 16, "lstm2_units": 8, "dense_units": 16, "dense2_units": 8}  # fmt: skip
    overlay = tmp_path / "compare.yaml"
    train = {"compare": ["cnn_lstm_rgb"], "epochs": 3, "model": {"cnn_lstm_rgb": knobs}}
    overlay.write_text(json.dumps({"results_dir": str(results), "train": train}))
    page = results / "report" / "metrics.html"
    proc = subprocess.run(
        # The copy has no provenance records: times alone say what is to do, and the page,
        # whose inputs grew, is asked for again.
        [SNAKEMAKE, str(page), "--nolock", "--cores", "2", "--rerun-triggers", "mtime",
         "--forcerun", "metrics_summary", "--configfile", "config/config.yaml", str(overlay)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert model.stat().st_mtime_ns == trained_at  # model/ stays the configured model type
    rgb = json.loads((results / "model" / "cnn_lstm_rgb" / "metrics.json").read_text())
    assert rgb["splits"]["test"]["n_evaluated"] >= 6 and rgb["tflite"]["agreement"] == 1.0
    assert rgb["tflite"]["ms_per_clip"] > 0 and "tflite_landmarks" not in rgb
    trained = json.loads((results / "model" / "cnn_lstm_rgb" / "train_summary.json").read_text())
    assert trained["model_type"] == "cnn_lstm_rgb" and trained["epochs"] == 3
    html = page.read_text(encoding="utf-8")
    first = html[html.index("<table") : html.index("</table>")]
    assert "Model types on the same split" in html[: html.index("<table")]
    assert first.index("transformer") < first.index("cnn_lstm_rgb")
    assert str(trained["params"]) in first
