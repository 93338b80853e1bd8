"""signpose.tables: instances.csv is the manifest the aggregate jobs read their files from."""

from __future__ import annotations

import json

from conftest import ROOT
from signpose import aggregates, metadata, tables
from signpose.config import with_defaults

DEMO = {"name": "demo", "metadata": "resources/demo/WLASL_demo.json", "allow_local_files": True}
FILES = {"features": "out/features/{video_id}.npy", "pose": "out/poses/{video_id}.pose"}


def test_the_instance_table_names_each_instances_files_and_reads_back(tmp_path):
    dataset = metadata.load(with_defaults(DEMO, section="dataset"), base_dir=ROOT)
    first, second = list(dataset.instances)[:2]
    qc = tmp_path / f"{first}.json"
    qc.write_text(json.dumps({"video_id": first, "status": "kept", "stage": "features",
                              "frames": 40}))  # fmt: skip
    df = tables.instances_table(dataset, [qc], FILES)
    tables.write_csv(df, tmp_path / "instances.csv")
    back = tables.read_instances(tmp_path / "instances.csv").set_index("video_id")
    assert back.loc[first, "features_file"] == f"out/features/{first}.npy"
    assert back.loc[second, "pose_file"] == f"out/poses/{second}.pose"
    assert back.loc[second, "status"] == "missing"  # no QC record: listed, not lost silently
    split = back.loc[first, "split"]
    items = aggregates.feature_items(str(tmp_path / "instances.csv"), split)
    assert items == [(f"out/features/{first}.npy", dataset.instances[first].gloss)]
