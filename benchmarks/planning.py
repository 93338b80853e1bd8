"""Planning cost: signpose against the bare DAG of its shape (../shared/bench/naive-dag).

    .venv/bin/python benchmarks/planning.py [--reps 3] [--subset 2000] [--out DIR]

Each repetition runs the bare DAG and then signpose, back to back, so both see the same load:
  dry-run  `snakemake -n -q` with no results at all;
  no-op    the same once every output and log exists (touched in DAG order, by both; neither
           has .snakemake/metadata records, so the params and code triggers read nothing).
Prints the medians (wall, CPU, peak RSS) and the signpose/bare ratios as a markdown table and
writes it, with every run, to DIR/planning.md and DIR/planning.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from provenance import save
from snakerun import SNAKEMAKE, WLASL_2000, Run, median, naive_copy, signpose_copy, table, timed

WORKFLOWS = {
    "bare": naive_copy,
    "signpose": lambda cwd, metadata: signpose_copy(cwd, metadata, None),
}


def rule_depths(args: list[str], cwd: Path) -> dict[str, int]:
    """Each rule's distance from the sources of the rule graph."""
    dot = snakemake_output(["--rulegraph", *args], cwd)
    labels = dict(re.findall(r'^\s*(\d+)\[label = "(\w+)"', dot, re.M))
    edges = re.findall(r"^\s*(\d+) -> (\d+)", dot, re.M)
    depth: dict[str, int] = {}

    def of(node: str) -> int:
        if node not in depth:
            depth[node] = 1 + max((of(a) for a, b in edges if b == node), default=-1)
        return depth[node]

    return {label: of(node) for node, label in labels.items()}


def touch_outputs(args: list[str], cwd: Path, depths: dict[str, int]) -> int:
    """Create every output and log of the workflow, later stages newer; how many paths."""
    base = time.time()
    count = 0
    for line in snakemake_output(["--summary", *args], cwd).splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) != 6:
            continue
        path, _, rule, logs, _, _ = fields
        for name in [path, *([] if logs == "-" else logs.split(","))]:
            p = cwd / name.strip()
            if p.suffix:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.touch()
            else:  # directory() outputs (TensorBoard logs)
                p.mkdir(parents=True, exist_ok=True)
            os.utime(p, (base + depths[rule], base + depths[rule]))
            count += 1
    return count


def snakemake_output(args: list[str], cwd: Path) -> str:
    proc = subprocess.run([SNAKEMAKE, "--nolock", *args], cwd=cwd, capture_output=True,
                          text=True, check=True)  # fmt: skip
    return proc.stdout


def workflow(key: str, tmp: Path, metadata: Path, subset: int) -> tuple[Path, list[str]]:
    """A copy of one workflow under `tmp`, and its arguments for the first `subset` glosses.

    The bare DAG takes every instance of its file, so both get a file cut to those glosses.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    cut = tmp / "metadata.json"
    if not cut.exists():
        cut.write_text(json.dumps(json.loads(metadata.read_text())[:subset]))
    cwd = tmp / key
    return cwd, WORKFLOWS[key](cwd, cut)


def compare(name: str, setups: dict[str, tuple[Path, list[str]]], reps: int) -> dict:
    runs: dict[str, list[Run]] = {k: [] for k in setups}
    for _ in range(reps):
        for key, (cwd, args) in setups.items():
            runs[key].append(timed([SNAKEMAKE, "-n", "-q", "--nolock", *args], cwd))
            print(name, key, runs[key][-1], flush=True)
    return {"scenario": name, "runs": {k: [asdict(r) for r in v] for k, v in runs.items()},
            "median": {k: asdict(median(v)) for k, v in runs.items()}}  # fmt: skip


def rows(result: dict) -> list[list[str]]:
    bare, sp = result["median"]["bare"], result["median"]["signpose"]
    return [[result["scenario"],
             f"{bare['wall_s']:.1f} s / {bare['cpu_s']:.1f} s / {bare['peak_rss_mb']:.0f} MB",
             f"{sp['wall_s']:.1f} s / {sp['cpu_s']:.1f} s / {sp['peak_rss_mb']:.0f} MB",
             f"{sp['wall_s'] / bare['wall_s']:.2f} / {sp['cpu_s'] / bare['cpu_s']:.2f} / "
             f"{sp['peak_rss_mb'] / bare['peak_rss_mb']:.2f}"]]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--metadata", type=Path, default=WLASL_2000)
    parser.add_argument("--subset", type=int, default=2000, help="first K glosses")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "signpose-bench")
    a = parser.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=a.out) as tmp:
        setups = {key: workflow(key, Path(tmp), a.metadata, a.subset) for key in WORKFLOWS}
        # The rule graph is the same for one gloss: only its order matters for touching.
        depths = {key: rule_depths(*workflow(key, Path(tmp) / "one", a.metadata, 1)[::-1])
                  for key in WORKFLOWS}  # fmt: skip
        results = [compare("dry-run", setups, a.reps)]
        for key, (cwd, args) in setups.items():
            touch_outputs(args, cwd, depths[key])
        results.append(compare("no-op dry-run", setups, a.reps))
    header = ["scenario", "bare: wall / CPU / RSS", "signpose", "ratio"]
    md = table(header, [row for r in results for row in rows(r)])
    print(md)
    (a.out / "planning.md").write_text(md + "\n")
    save(a.out / "planning.json", "planning", results)


if __name__ == "__main__":
    main()
