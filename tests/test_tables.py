"""signpose.tables: instances.csv is the manifest the aggregate jobs read their files from."""

from __future__ import annotations

import json

import pandas as pd

from conftest import ROOT
from signpose import aggregates
from signpose.config import with_defaults

DEMO = {"name": "demo", "metadata": str(ROOT / "resources/demo/WLASL_demo.json"),
        "allow_local_files": True}  # fmt: skip


def test_the_instance_table_names_each_instances_files_relative_to_itself(tmp_path):
    results = tmp_path / "results"
    first, second = "demo00001", "demo00002"
    qc = tmp_path / "007.jsonl"  # a features shard's QC file: one record a line
    qc.write_text(json.dumps({"video_id": first, "status": "kept", "stage": "features",
                              "frames": 40}) + "\n")  # fmt: skip
    out = {name: str(results / "tables" / f"{name}.csv")
           for name in ("instances", "failures", "funnel", "columns")}  # fmt: skip
    files = {"features": f"{results}/features/{{video_id}}.npy",
             "pose": f"{results}/poses/{{video_id}}.pose"}  # fmt: skip
    variations = tmp_path / "variations.json"  # provider none: every label its own phrasing
    variations.write_text(json.dumps({"variations": {}, "failed": {}}))
    dataset = with_defaults(DEMO, section="dataset")
    aggregates.tables_job(dataset, [str(qc)], files, str(variations), [], out)

    written = pd.read_csv(out["instances"], dtype=str).set_index("video_id")
    assert written.loc[first, "features_file"] == f"../features/{first}.npy"  # movable
    assert written.loc[second, "pose_file"] == f"../poses/{second}.pose"
    assert written.loc[second, "status"] == "missing"  # no QC record: listed, not lost silently
    items = aggregates.feature_items(out["instances"], written.loc[first, "split"])
    assert items == [(f"{results}/features/{first}.npy", written.loc[first, "gloss"])]
