"""What planning.py and overhead.py share: timed Snakemake runs of signpose and the bare DAG."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
NAIVE_DAG = SHARED / "bench" / "naive-dag"
WLASL_2000 = SHARED / "data" / "wlasl" / "WLASL_v0.3_reconstructed2000.json"
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "envs")


@dataclass(frozen=True)
class Run:
    wall_s: float
    cpu_s: float  # user + system: less sensitive than wall time to other load on the machine
    peak_rss_mb: float


def timed(cmd: list[str], cwd: Path) -> Run:
    """Run `cmd`; its wall time, CPU time and peak RSS (itself and its waited-for children)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.decode(errors='replace')[-3000:]}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def median(runs: list[Run]) -> Run:
    return Run(*(statistics.median(getattr(r, k) for r in runs) for k in asdict(runs[0])))


def copy_tree(names: tuple[str, ...], src: Path, dst: Path) -> Path:
    """A snapshot of a workflow, so that a benchmark measures one state of it."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (src / name).is_dir():
            shutil.copytree(src / name, dst / name, dirs_exist_ok=True)
        else:
            shutil.copy(src / name, dst / name)
    return dst


def signpose_copy(dst: Path, metadata: Path, subset: int | None) -> list[str]:
    """signpose copied to `dst`; the config arguments that run it on `metadata` under `dst`."""
    copy_tree(WORKFLOW_FILES, ROOT, dst)
    overlay = dst / "overlay.yaml"
    dataset = {"name": "bench", "metadata": str(metadata), "subset": subset}
    overlay.write_text(json.dumps({"dataset": dataset, "results_dir": str(dst / "results")}))
    return ["--configfile", "config/wlasl.yaml", str(overlay)]


def naive_copy(dst: Path, metadata: Path, ninst: int = 0) -> list[str]:
    """The bare DAG copied to `dst`; the arguments that run it on `metadata`."""
    copy_tree(("Snakefile", "common.smk"), NAIVE_DAG, dst)
    return ["-s", "Snakefile", "--config", f"json={metadata}", f"ninst={ninst}"]


def table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(map(str, line)) + " |" for line in lines)
