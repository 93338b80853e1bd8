"""SLURM bundling (issue #7): job groups against array jobs against one SLURM job per job.

    sudo .venv/bin/python benchmarks/slurm_bundling.py [--glosses 1] [--out DIR]
                               [--modes group,array,array-capped,single]

Starts the one-node cluster of tests/slurm/cluster.sh (root; Debian's slurmctld, slurmd,
slurm-client and munge), copies the workflow with the demo's first `--glosses` glosses as its
dataset, and runs the lexicon + statistics targets once per mode through profiles/slurm and the
CI overlay profiles/slurm-ci:
  group   the production profile as it is (job groups, group-components)
  array   the same without groups, per-instance rules as SLURM array jobs (--slurm-array-jobs),
          with --jobs and the downloads resource raised (see measure())
  array-capped  the same under the profile's own limits
  single  the same without groups or arrays: one SLURM job per Snakemake job
Counts sbatch submissions and SLURM job records (array tasks are records) in slurmctld's log,
times each run, projects each mode's submissions for WLASL2000 from the job counts of its
dry-run (when the shared metadata is present), prints a table and writes bundling.json and
bundling.md under --out.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from provenance import save  # noqa: E402
from test_slurm import CLUSTER, copy_workflow, missing_slurm, run  # noqa: E402
from test_workflow import job_counts  # noqa: E402

from conftest import DEMO_JSON, WLASL_2000  # noqa: E402

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def profile_for(mode: str, work: Path) -> str:
    """The profile directory for `mode`, derived from profiles/slurm in the copy `work`."""
    if mode == "group":
        return "profiles/slurm"
    profile = yaml.safe_load((work / "profiles/slurm/config.yaml").read_text())
    if mode == "array":
        profile["slurm-array-jobs"] = ",".join(profile["groups"])
    for key in ("groups", "group-components"):
        profile.pop(key)
    path = work / "profiles" / f"slurm-{mode}"
    path.mkdir(exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(profile))
    return str(path.relative_to(work))


def ctld_counts(log: str) -> tuple[int, int]:
    """(sbatch submissions, SLURM job records finished) in a slurmctld log. Finished, not
    allocated: the backfill scheduler starts jobs without an "Allocate" line."""
    return (len(re.findall(r"_slurm_rpc_submit_batch_job: JobId=", log)),
            len(re.findall(r"_job_complete: JobId=\S+ done", log)))  # fmt: skip


def measure(mode: str, work: Path, cluster: Path) -> dict:
    ctld = cluster / "log" / "slurmctld.log"
    before = ctld_counts(ctld.read_text())
    start = time.monotonic()
    profile = profile_for(mode.removesuffix("-capped"), work)
    # Plugin 2.6.1 holds ready jobs of an array rule back until all its pending jobs are ready;
    # under the profile's limits (jobs, the downloads resource) they never are, so "array"
    # lifts them and "array-capped" shows what happens without that (stopped after 4 min).
    extra, timeout_s = {"array": (["--jobs", "100", "--resources", "downloads=100"], 900),
                        "array-capped": ([], 240)}.get(mode, ([], 900))  # fmt: skip
    _, proc = run(work, f"results-{mode}", "--profile", profile, "--workflow-profile",
                  "profiles/slurm-ci", *extra, timeout_s=timeout_s, check=False)  # fmt: skip
    wall = time.monotonic() - start
    after = ctld_counts(ctld.read_text())
    log = proc.stdout + proc.stderr
    jobs = re.search(r"^total\s+(\d+)$", log, re.M)
    done = "hung, stopped" if proc.returncode in (124, 137) else (
        "ok" if proc.returncode == 0 else f"failed ({proc.returncode})")  # fmt: skip
    return {"mode": mode, "result": done, "snakemake_jobs": int(jobs[1]) if jobs else None,
            "sbatch": after[0] - before[0], "slurm_jobs": after[1] - before[1],
            "wall_s": round(wall, 1)}  # fmt: skip


def wlasl2000_projection(work: Path) -> dict | None:
    """SLURM submissions of a full WLASL2000 run per mode, from its dry-run's job counts."""
    if not WLASL_2000.exists():
        return None
    overlay = work / "wlasl2000.yaml"
    dataset = {"name": "wlasl2000", "metadata": str(WLASL_2000), "subset": 2000}
    overlay.write_text(json.dumps({"dataset": dataset}))
    proc = subprocess.run([SNAKEMAKE, "-n", "--quiet", "rules", "--nolock", "--configfile",
                           "config/wlasl.yaml", str(overlay)], cwd=work, capture_output=True,
                          text=True, check=True)  # fmt: skip
    counts = job_counts(proc.stdout + proc.stderr)
    for not_a_job in ("total", "all"):  # all has no command: never submitted
        counts.pop(not_a_job)
    profile = yaml.safe_load((work / "profiles/slurm/config.yaml").read_text())
    group_of = profile["groups"]
    # A group's connected components: one per source (download), one per features shard (the
    # shard's job with the pose jobs of its instances).
    components = {group_of["download"]: counts["download"],
                  group_of["features"]: counts["features"]}  # fmt: skip
    ungrouped = sum(n for rule, n in counts.items() if rule not in group_of)
    bundles = {g: math.ceil(n / profile["group-components"][g]) for g, n in components.items()}
    groups = ungrouped + sum(bundles.values())
    parts = {f"{g} bundles": n for g, n in bundles.items()} | {"jobs outside groups": ungrouped}
    # The plugin submits at most 1000 array tasks per sbatch call by default.
    arrays = sum(math.ceil(n / 1000) if rule in group_of else n for rule, n in counts.items())
    jobs = sum(counts.values())
    # Every array task is a job record of its own (MaxJobCount, per-user limits) and starts
    # Snakemake once, like a single job; a group job starts it once for its whole bundle.
    return {"instances": counts["pose"], "sources": counts["download"],
            "snakemake_jobs": jobs, "group_parts": parts,
            "sbatch": {"group": groups, "array": arrays, "single": jobs},
            "slurm_jobs": {"group": groups, "array": jobs, "single": jobs}}  # fmt: skip


def markdown(rows: list[dict], projection: dict | None, glosses: int) -> str:
    lines = [f"Demo, first {glosses} gloss(es), lexicon + stats targets, one-node cluster:", "",
             "| mode | result | Snakemake jobs | sbatch calls | SLURM job records | wall s |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    lines += [f"| {r['mode']} | {r['result']} | {r['snakemake_jobs']} | {r['sbatch']} "
              f"| {r['slurm_jobs']} | {r['wall_s']} |" for r in rows]  # fmt: skip
    if projection:
        p = projection
        lines += ["", f"WLASL2000 ({p['instances']} instances, {p['sources']} sources, "
                  f"{p['snakemake_jobs']} Snakemake jobs):", "",
                  "| mode | sbatch calls | SLURM job records |", "|---|---|---|"]  # fmt: skip
        lines += [f"| {m} | {p['sbatch'][m]} | {p['slurm_jobs'][m]} |" for m in p["sbatch"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--glosses", type=int, default=1)
    parser.add_argument("--modes", default="group,array,array-capped,single")
    parser.add_argument("--out", type=Path, default=Path("/tmp/signpose-slurm-bundling"))
    args = parser.parse_args()
    if reason := missing_slurm():
        sys.exit(reason)
    shutil.rmtree(args.out, ignore_errors=True)
    cluster, work = args.out / "cluster", args.out / "workflow"
    work.mkdir(parents=True)
    copy_workflow(work, json.loads(DEMO_JSON.read_text())[: args.glosses])
    subprocess.run([str(CLUSTER), "up", str(cluster)], check=True)
    try:
        rows = [measure(mode, work, cluster) for mode in args.modes.split(",")]
    finally:
        subprocess.run([str(CLUSTER), "down", str(cluster)], check=True)
    projection = wlasl2000_projection(work)
    report = markdown(rows, projection, args.glosses)
    print(report)
    (args.out / "bundling.md").write_text(report)
    save(args.out / "bundling.json", "slurm_bundling", {"demo": rows, "wlasl2000": projection})


if __name__ == "__main__":
    main()
