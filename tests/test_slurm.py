"""profiles/slurm on a real one-node SLURM cluster: the jobs go through sbatch, bundled as the
profile says, and the results equal those of a local run."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import DEMO_JSON, ROOT, missing
from signpose import shards
from signpose.config import with_defaults

pytestmark = pytest.mark.slow

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo", "srun")
# The workflow as a user checks it out; runs happen in a copy so .snakemake stays out of the repo.
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "envs", "resources", "profiles")
TARGETS = [*(f"lexicon/{split}/index.csv" for split in ("train", "val", "test", "all")),
           "stats/global_stats.npz"]  # fmt: skip
SLURM_TIMEOUT_S = 900
METADATA = "resources/demo/WLASL_slurm_ci.json"


def missing_slurm() -> str | None:
    if os.geteuid() != 0:
        return "starting munged, slurmctld and slurmd needs root"
    missing = [name for name in (*DAEMONS, *CLIENTS)
               if shutil.which(name) is None and not Path("/usr/sbin", name).exists()]  # fmt: skip
    if missing:
        return f"SLURM not installed (missing {', '.join(missing)}); .ci/run installs it"
    return None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Path:
    """A running single-node cluster; yields the directory with its config and logs."""
    reason = missing_slurm()
    if reason:
        missing(reason)
    state = tmp_path_factory.mktemp("slurm-cluster")
    try:
        subprocess.run([str(CLUSTER), "up", str(state)], check=True, timeout=120)
        yield state
    finally:
        subprocess.run([str(CLUSTER), "down", str(state)], check=True, timeout=120)


def small_demo(metadata: list[dict], root: Path) -> list[dict]:
    """The first gloss's first instance of each split and its dead links, plus every instance
    that shares its source with another (two clips from one download)."""
    urls = [inst["url"] for gloss in metadata for inst in gloss["instances"]]
    picked = []
    for i, gloss in enumerate(metadata):
        seen_splits = set()
        keep = []
        for inst in gloss["instances"]:
            shared = urls.count(inst["url"]) > 1
            first_of_split = i == 0 and inst["split"] not in seen_splits
            dead = i == 0 and not (root / inst["url"]).exists()
            if shared or first_of_split or dead:
                keep.append(inst)
                seen_splits.add(inst["split"])
        if keep:
            picked.append({**gloss, "instances": keep})
    return picked


def copy_workflow(dest: Path, metadata: list[dict]) -> Path:
    """A copy of the workflow in `dest` whose dataset is `metadata` (demo records, next to the
    demo's videos, so their relative URLs resolve)."""
    for name in WORKFLOW_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        else:
            shutil.copy2(src, dest / name)
    (dest / METADATA).write_text(json.dumps(metadata))
    return dest


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    demo = json.loads(DEMO_JSON.read_text())
    return copy_workflow(tmp_path_factory.mktemp("slurm-workflow"),
                         small_demo(demo, DEMO_JSON.parent))  # fmt: skip


def run(workdir: Path, name: str, *args: str, timeout_s: int = SLURM_TIMEOUT_S,
        check: bool = True) -> tuple[Path, subprocess.CompletedProcess]:  # fmt: skip
    """Snakemake on the workdir's dataset into results_dir `name`; returns that directory too."""
    results = workdir / name
    overlay = workdir / f"{name}.yaml"
    dataset = {"name": "slurm_ci", "metadata": METADATA}
    overlay.write_text(json.dumps({"dataset": dataset, "results_dir": str(results)}))
    # SIGINT, not SIGTERM: only SIGINT makes Snakemake scancel its jobs and stop.
    timeout = ["timeout", "-s", "INT", "-k", "30", str(timeout_s)]
    cmd = [*timeout, SNAKEMAKE, *(str(results / t) for t in TARGETS), *args,
           "--configfile", "config/config.yaml", str(overlay)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    assert proc.returncode == 0 or not check, (proc.stdout + proc.stderr)[-4000:]
    return results, proc


@pytest.fixture(scope="module")
def runs(cluster, workdir):
    local, _ = run(workdir, "local", "--cores", "2")
    slurm, proc = run(workdir, "slurm", "--profile", "profiles/slurm",
                      "--workflow-profile", "profiles/slurm-ci")  # fmt: skip
    return local, slurm, proc.stdout + proc.stderr


def test_jobs_went_through_sbatch_as_bundles(cluster, workdir, runs):
    _, _, log = runs
    # "Job <x> has been submitted with SLURM jobid <n> (log: .../slurm_logs/<kind>/...)"
    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: .*/slurm_logs/(\w+)/", log)
    ctld = (cluster / "log" / "slurmctld.log").read_text()
    accepted = set(re.findall(r"_slurm_rpc_submit_batch_job: JobId=(\d+)", ctld))
    completed = set(re.findall(r"_job_complete: JobId=(\d+) done", ctld))
    ids = {jobid for jobid, _ in submitted}
    assert ids and ids <= accepted and ids <= completed
    kinds = sorted(kind for _, kind in submitted)
    # The layout is written here, not read from the profile under test: downloads in `sources`
    # bundles of up to 200 sources (one bundle: the demo is smaller), a features shard with its
    # instances' pose jobs in `instance` bundles of 3 shards; no per-source, per-instance or
    # per-shard job on its own, and the aggregate targets one job each.
    records = [i for g in json.loads((workdir / METADATA).read_text()) for i in g["instances"]]
    ids = [i["video_id"] for i in records]
    used = len(shards.by_shard(ids, with_defaults({}, "features")["shards"]))
    assert len([k for k in kinds if k.startswith("group_sources_")]) == 1, kinds
    assert len([k for k in kinds if k.startswith("group_instance_")]) == math.ceil(used / 3), kinds
    assert sorted(k for k in kinds if k.startswith("rule_")) == [
        "rule_global_stats", *["rule_lexicon"] * 4, "rule_tables"]  # fmt: skip


def test_results_equal_a_local_run(runs):
    local, slurm, _ = runs
    for name in ("instances.csv", "failures.csv", "funnel.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(local / "tables" / name),
                                      pd.read_csv(slurm / "tables" / name))  # fmt: skip
    table = pd.read_csv(local / "tables" / "instances.csv", dtype={"video_id": str})
    assert set(table["status"]) == {"kept", "dead"}
    for split in ("train", "val", "test", "all"):
        lexicon = f"lexicon/{split}/index.csv"
        assert (local / lexicon).read_text() == (slurm / lexicon).read_text()
    for vid in table.loc[table["status"] == "kept", "video_id"]:
        for path in (f"poses/{vid}.pose", f"features/{vid}.npy"):
            assert (local / path).read_bytes() == (slurm / path).read_bytes(), path
    with (
        np.load(local / "stats" / "global_stats.npz") as a,
        np.load(slurm / "stats" / "global_stats.npz") as b,
    ):
        assert a.files == b.files
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
