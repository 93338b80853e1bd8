"""Benchmark results say when, on which commit and on which machine they were measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from provenance import save  # noqa: E402


def test_a_result_carries_its_date_commit_and_machine(tmp_path):
    save(tmp_path / "r.json", "example", {"fps": 53.4})
    result = json.loads((tmp_path / "r.json").read_text())
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    assert (result["benchmark"], result["commit"], result["figures"]) == ("example", head,
                                                                         {"fps": 53.4})  # fmt: skip
    assert result["date"].endswith("+00:00") and isinstance(result["uncommitted_changes"], bool)
    assert result["machine"]["cores"] == os.cpu_count() and result["machine"]["node"]
    assert len(result["machine"]["load_average"]) == 3


def test_every_benchmark_writes_its_result_through_provenance():
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        if script.name in ("provenance.py", "snakerun.py", "tables.py"):
            continue  # the helpers, and the script that makes tables from the results
        assert "save(" in script.read_text(), f"{script.name} writes no traceable result"
