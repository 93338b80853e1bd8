"""train.compare: the evaluation page's table of every model type trained on the same split."""

from __future__ import annotations

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
    assert list(table.columns) == ["model type", "split", "top-1", "top-5", "mean per-class top-1",
                                   "parameters", "train time (s)", "TFLite MB",
                                   "TFLite ms per clip"]  # fmt: skip
    assert table["TFLite MB"].tolist() == [0.6, 2.4]
    assert (table["split"] == "test").all()
    page = summary.metrics_html(runs["transformer"][0], runs)
    first = page[page.index("<table") : page.index("</table>")]
    assert first.index("transformer") < first.index("cnn_lstm_rgb")
    assert "TFLite ms per clip" in first and "542000" in first
    assert page.index("Model types on the same split") < page.index("Accuracy per split")


def test_without_compare_the_page_has_no_comparison():
    metrics, _ = run(0.71, 60_000, 80.5, 600_000, 0.3)
    assert "Model types on the same split" not in summary.metrics_html(metrics)
