"""What Snakemake itself spends per job when every per-instance job does nothing.

    .venv/bin/python benchmarks/overhead.py [--instances 1000] [--reps 1] [--out DIR]

Runs, for the first N instances of the WLASL2000 file, every download and per-instance job up to
the features, with each job's command replaced by `touch {output}`: signpose's rules (their
lookups, params, logs, resources) and the bare DAG of the same shape, at `-j 2`, under each
setting below. Time per job = (wall time - the dry-run's planning time) / jobs. Prints a
markdown table and writes it with every run to DIR/overhead.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict
from pathlib import Path

from provenance import save
from snakerun import SNAKEMAKE, WLASL_2000, Run, median, naive_copy, signpose_copy, table, timed

SETTINGS = {
    "default": [],
    "greedy": ["--scheduler", "greedy"],
    "greedy, 1000 jobs/s": ["--scheduler", "greedy", "--max-jobs-per-timespan", "1000/1s"],
}
PER_INSTANCE_RULES = ("download", "poses", "features")


def first_instances(metadata: Path, n: int, dst: Path) -> Path:
    """The metadata file cut to its first `n` instances (glosses in order)."""
    out, left = [], n
    for entry in json.loads(metadata.read_text()):
        if left <= 0:
            break
        out.append({**entry, "instances": entry["instances"][:left]})
        left -= len(out[-1]["instances"])
    dst.write_text(json.dumps(out))
    return dst


def touch_only(workdir: Path) -> None:
    """Replace the commands of signpose's per-source and per-instance rules with `touch`."""
    for name in PER_INSTANCE_RULES:
        path = workdir / "workflow" / "rules" / f"{name}.smk"
        touch = '    shell:\n        "touch {output}"\n'
        path.write_text(re.sub(r"    (script|shell):\n(        .*\n)+", touch, path.read_text()))


def execute(cwd: Path, args: list[str], setting: list[str], results: list[Path]) -> Run:
    for path in [*results, cwd / ".snakemake"]:
        shutil.rmtree(path, ignore_errors=True)
    return timed([SNAKEMAKE, "-j", "2", "--nolock", "--until", "features", *setting, *args], cwd)


def job_count(cwd: Path, args: list[str]) -> tuple[int, Run]:
    """Jobs a run up to the features has, and how long planning them takes (a dry-run)."""
    cmd = [SNAKEMAKE, "-n", "--nolock", "--until", "features", *args]
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True).stdout
    total = int(re.search(r"^total\s+(\d+)$", out, re.M)[1])
    return total, timed([*cmd, "-q"], cwd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "signpose-bench")
    a = parser.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    results, rows = [], []
    with tempfile.TemporaryDirectory(dir=a.out) as tmp:
        meta = first_instances(WLASL_2000, a.instances, Path(tmp) / "metadata.json")
        bare, sp = Path(tmp) / "bare", Path(tmp) / "signpose"
        setups = {
            "bare": (bare, naive_copy(bare, meta), [bare / d for d in ("raw", "clips", "pose",
                                                                       "features")]),
            "signpose": (sp, signpose_copy(sp, meta, None), [sp / "results"]),
        }  # fmt: skip
        touch_only(sp)
        for key, (cwd, args, outputs) in setups.items():
            jobs, plan = job_count(cwd, args)
            for name, setting in SETTINGS.items():
                runs = [execute(cwd, args, setting, outputs) for _ in range(a.reps)]
                m = median(runs)
                per_job = (m.wall_s - plan.wall_s) / jobs * 1000
                results.append({"workflow": key, "setting": name, "jobs": jobs,
                                "plan": asdict(plan), "runs": [asdict(r) for r in runs],
                                "per_job_ms": per_job})  # fmt: skip
                rows.append([key, name, jobs, f"{m.wall_s:.1f} s", f"{m.cpu_s:.1f} s",
                             f"{plan.wall_s:.1f} s", f"{per_job:.1f} ms"])  # fmt: skip
                print(" | ".join(map(str, rows[-1])), flush=True)
    header = ["workflow", "setting", "jobs", "wall", "CPU", "planning", "per job"]
    md = table(header, rows)
    print(md)
    (a.out / "overhead.md").write_text(md + "\n")
    save(a.out / "overhead.json", "overhead", results)


if __name__ == "__main__":
    main()
