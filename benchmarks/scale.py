"""Planning and whole-dataset steps at N instances (issue #21: 100,000), no MediaPipe run.

    .venv/bin/python benchmarks/scale.py --instances 100000 [--reps 1] [--out benchmarks/results]

The metadata has WLASL's real shape: the reconstructed WLASL2000 file (its glosses, splits,
frame ranges, bounding boxes and sites, several instances sharing one YouTube source), cut to
its first N instances or, past its 21,095, repeated with renamed glosses, video ids and source
URLs (each copy keeps the original's sharing of sources). For that metadata it measures, each
with wall time, CPU time and peak RSS (the Snakemake process and its waited-for children):

  bare_dry_run     the bare DAG of the same shape (../shared/bench/naive-dag), `snakemake -n -q`
  dry_run          signpose, `snakemake -n -q`, nothing produced yet
  noop_dry_run     the same once the results tree looks finished: every output and log of
                   every job exists (touched in DAG order, empty), except that the files the
                   `tables` job reads hold what the real jobs write (each features shard's QC
                   records, the label variations)
  tables_plan      `snakemake -n -f tables/instances.csv`: planning the tables job alone
  tables           `snakemake --cores 1 -f tables/instances.csv`: the same, then the job's
                   setup by Snakemake (`Job.prepare`, quadratic in its inputs) and its run
  tables_job       the tables job's own work (signpose.aggregates.tables_job) in a process of
                   its own
  report           `snakemake --report` over the finished-looking tree

and `tables_prepare_s`: Snakemake's own setup of the tables job (`Job.prepare`, timed inside
the `tables` run; quadratic in the job's inputs in Snakemake 9.27.1), with `tables_setup` =
tables - tables_plan - tables_job (wall and CPU) as a cross-check that includes the job's start.
The raw results go to OUT/scale-<N>-<date>.json with the date, the commit, the machine and the
Snakemake version.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import yaml
from planning import rule_depths, touch_outputs
from provenance import save
from snakerun import ROOT, SNAKEMAKE, WLASL_2000, Run, median, naive_copy, signpose_copy, timed

from signpose import shards, sites
from signpose.config import with_defaults


def scaled_metadata(template: list[dict], n: int) -> list[dict]:
    """The first `n` instances of `template` in gloss order, repeated under new names as needed."""
    out: list[dict] = []
    left, copy = n, 0
    while left > 0:
        for gloss in template:
            instances = [renamed(inst, copy) for inst in gloss["instances"][:left]]
            if instances:
                name = gloss["gloss"] if copy == 0 else f"{gloss['gloss']}-{copy}"
                out.append({**gloss, "gloss": name, "instances": instances})
                left -= len(instances)
            if left == 0:
                break
        copy += 1
    return out


def renamed(inst: dict, copy: int) -> dict:
    """`inst` as copy number `copy`: its own video id and source (copy 0 is the original)."""
    if copy == 0:
        return inst
    url = inst["url"]
    yt = sites.youtube_id(url)
    if yt is not None:  # another 11-character id: the copy's instances share it as before
        digest = hashlib.sha1(f"{yt}:{copy}".encode()).digest()
        url = f"https://www.youtube.com/watch?v={base64.urlsafe_b64encode(digest)[:11].decode()}"
    else:
        parts = urlparse(url)
        url = urlunparse(parts._replace(path=f"/copy{copy}{parts.path}"))
    return {**inst, "url": url, "video_id": f"{inst['video_id']}c{copy}"}


def qc_record(video_id: str) -> dict:
    """What a features job records for a kept WLASL clip (a median one of the demo)."""
    return {"video_id": video_id, "status": "kept", "stage": "features", "reason": "",
            "failed": [], "frames": 57, "frames_raw": 60, "fps": 25.0, "body_ratio": 1.0,
            "left_hand_ratio": 0.62, "right_hand_ratio": 0.95, "hand_ratio": 0.97,
            "face_ratio": 1.0, "mean_visibility": 0.93, "motion_mean": 0.031,
            "motion_p50": 0.024, "motion_p95": 0.081, "motion_max": 0.12,
            "clean_frames": 41, "clean_fps": 25.0, "clean_reason": ""}  # fmt: skip


def finish_tree(cwd: Path, args: list[str], depths: dict[str, int], ids: list[str]) -> int:
    """Every output and log touched in DAG order; the tables job's inputs with real content."""
    count = touch_outputs(args, cwd, depths)
    results = cwd / "results"
    count_shards = with_defaults({}, "features")["shards"]
    for name, members in shards.by_shard(ids, count_shards).items():
        path = results / "qc" / "shards" / f"{name}.jsonl"
        keep_time(path, "".join(json.dumps(qc_record(v), sort_keys=True) + "\n" for v in members))
    keep_time(results / "text" / "variations.json", json.dumps({"variations": {}, "failed": {}}))
    return count


def keep_time(path: Path, text: str) -> None:
    stat = path.stat()
    path.write_text(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


# Snakemake's command line in this process, with Job.prepare timed: the setup of a job before
# it runs (waiting for its inputs; quadratic in their number in Snakemake 9.27.1).
TIMED_PREPARE = """
import json, sys, time
from snakemake import jobs
from snakemake.cli import main
prepare, out = jobs.Job.prepare, sys.argv.pop(1)
async def timed(self):
    start = time.perf_counter()
    await prepare(self)
    with open(out, "a") as f:
        f.write(json.dumps({"rule": self.rule.name, "s": time.perf_counter() - start}) + "\\n")
jobs.Job.prepare = timed
sys.exit(main())
"""


TABLES_JOB = """
import json, sys
from signpose import aggregates
from signpose.config import with_defaults
dataset, qc, files, variations, targets = json.loads(sys.argv[1])
aggregates.tables_job(with_defaults(dataset, "dataset"), qc, files, variations, [], targets)
"""


def tables_job_run(cwd: Path, metadata: Path, out: Path) -> Run:
    """The tables job's own work (what its script calls) in a fresh process, as the rule has
    it: the dataset section of config/wlasl.yaml with the benchmark's metadata."""
    results = cwd / "results"
    dataset = yaml.safe_load((cwd / "config" / "wlasl.yaml").read_text())["dataset"]
    dataset |= {"name": "bench", "metadata": str(metadata), "subset": None}
    qc = sorted(str(p) for p in (results / "qc" / "shards").glob("*.jsonl"))
    files = {"features": f"{results}/features/{{video_id}}.npy",
             "pose": f"{results}/poses/{{video_id}}.pose",
             "clean_pose": f"{results}/poses_clean/{{video_id}}.pose"}  # fmt: skip
    targets = {name: str(out / f"{name}.csv") for name in ("instances", "failures", "funnel",
                                                            "columns")}  # fmt: skip
    job = [dataset, qc, files, str(results / "text" / "variations.json"), targets]
    return timed([sys.executable, "-c", TABLES_JOB, json.dumps(job)], cwd)


def measure(n: int, reps: int, work: Path) -> dict:
    metadata = work / "metadata.json"
    groups = scaled_metadata(json.loads(WLASL_2000.read_text()), n)
    metadata.write_text(json.dumps(groups))
    ids = [i["video_id"] for g in groups for i in g["instances"]]
    bare_cwd, sp_cwd = work / "bare", work / "signpose"
    bare_args, sp_args = naive_copy(bare_cwd, metadata), signpose_copy(sp_cwd, metadata, None)
    dry = ["-n", "-q", "--nolock"]
    target = str(sp_cwd / "results" / "tables" / "instances.csv")
    runs: dict[str, list[Run]] = {}

    def rep(name: str, cmd: list[str], cwd: Path) -> None:
        for _ in range(reps):
            runs.setdefault(name, []).append(timed([SNAKEMAKE, *cmd], cwd))
            print(f"{n} {name}: {runs[name][-1]}", flush=True)

    rep("bare_dry_run", [*dry, *bare_args], bare_cwd)
    rep("dry_run", [*dry, *sp_args], sp_cwd)
    one = work / "one"  # the rule graph of one gloss orders the touching
    depths = rule_depths(signpose_copy(one, metadata, 1), one)
    touched = finish_tree(sp_cwd, sp_args, depths, ids)
    rep("noop_dry_run", [*dry, *sp_args], sp_cwd)
    rep("tables_plan", [*dry, "-f", target, *sp_args], sp_cwd)
    prepared = work / "prepare.jsonl"
    for _ in range(reps):
        cmd = ["--cores", "1", "--nolock", "-f", target, *sp_args]
        run = timed([sys.executable, "-c", TIMED_PREPARE, str(prepared), *cmd], sp_cwd)
        runs.setdefault("tables", []).append(run)
        print(f"{n} tables: {run}", flush=True)
    prepare_s = [r["s"] for r in map(json.loads, prepared.read_text().splitlines())
                 if r["rule"] == "tables"]  # fmt: skip
    for _ in range(reps):
        runs.setdefault("tables_job", []).append(tables_job_run(sp_cwd, metadata, work / "t"))
        print(f"{n} tables_job: {runs['tables_job'][-1]}", flush=True)
    rep("report", ["--nolock", "--report", str(work / "report.html"), *sp_args], sp_cwd)
    med = {k: asdict(median(v)) for k, v in runs.items()}
    setup = {unit: round(med["tables"][unit] - med["tables_plan"][unit]
                         - med["tables_job"][unit], 2) for unit in ("wall_s", "cpu_s")}  # fmt: skip
    return {"instances": len(ids), "glosses": len(groups),
            "sources": len({sites.source_id(i["url"]) for g in groups for i in g["instances"]}),
            "files_touched": touched, "reps": reps,
            "runs": {k: [asdict(r) for r in v] for k, v in runs.items()}, "median": med,
            "tables_setup": setup, "tables_prepare_s": prepare_s,
            "dry_run_ratio_to_bare": round(med["dry_run"]["wall_s"]
                                           / med["bare_dry_run"]["wall_s"], 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, nargs="+", default=[100_000])
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="where the workflow copies and results trees are built",
    )
    a = parser.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    sm = subprocess.run([SNAKEMAKE, "--version"], capture_output=True, text=True).stdout.strip()
    for n in a.instances:
        with tempfile.TemporaryDirectory(dir=a.work, prefix="signpose-scale-") as tmp:
            result = measure(n, a.reps, Path(tmp))
        now = datetime.datetime.now(datetime.UTC)
        path = a.out / f"scale-{n}-{now:%Y%m%dT%H%M%SZ}.json"
        save(path, "scale", {"snakemake": sm, **result})
        keys = ("instances", "tables_prepare_s", "dry_run_ratio_to_bare")
        print(json.dumps({k: result[k] for k in keys}), "->", path)


if __name__ == "__main__":
    main()
