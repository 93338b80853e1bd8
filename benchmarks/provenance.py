"""Where a benchmark's figures come from: every result file says when, on which commit and on
which machine it was measured, so a figure quoted in a README traces to a run
(commit the file under benchmarks/results/ with the README change that quotes it)."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def git(*args: str) -> str:
    run = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return run.stdout.strip() if run.returncode == 0 else ""


def machine() -> dict[str, Any]:
    """The machine and how busy it was: figures from a loaded machine are not comparable."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
    except OSError:
        cpuinfo = []
    cpu = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), ""
    )
    try:
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError):
        memory_gb = None
    return {"node": platform.node(), "cpu": cpu, "cores": os.cpu_count(),
            "memory_gb": memory_gb and round(memory_gb, 1), "system": platform.platform(),
            "python": platform.python_version(), "load_average": os.getloadavg()}  # fmt: skip


def save(path: Path, benchmark: str, figures: Any) -> None:
    """Write `figures` to `path` (JSON) with the run's date, commit and machine."""
    result = {
        "benchmark": benchmark,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": git("rev-parse", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
        "command": [Path(sys.executable).name, *sys.argv],
        "machine": machine(),
        "figures": figures,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
