"""signpose.compat.snakemake: the Snakemake internals the workflow uses, pinned on a real run.

Each test runs a small Snakefile through the real Snakemake; a failure means the pinned
version's behaviour changed, and says so.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from signpose.compat.snakemake import PIN

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
JOBS = 3

# Three jobs that each hold one `slots`; each records when it ran.
SNAKEFILE = f"""
from signpose.compat import snakemake as compat

compat.set_default_resource(workflow, "slots", 1)
print("uses_conda:", compat.uses_conda(workflow))


rule all:
    input:
        expand("out/{{i}}.txt", i=range({JOBS})),


rule one:
    output:
        "out/{{i}}.txt",
    resources:
        slots=1,
    shell:
        "(date +%s.%N; sleep 1; date +%s.%N) > {{output}}"
"""


def run(tmp_path: Path, *args: str) -> str:
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([SNAKEMAKE, "--cores", str(JOBS), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True)  # fmt: skip
    # An AttributeError here means the attribute itself is gone.
    assert proc.returncode == 0, f"{PIN} behaves differently:\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def intervals(tmp_path: Path) -> list[tuple[float, float]]:
    spans = []
    for i in range(JOBS):
        start, end = (tmp_path / "out" / f"{i}.txt").read_text().split()
        spans.append((float(start), float(end)))
    return sorted(spans)


def overlapping(spans: list[tuple[float, float]]) -> bool:
    return any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))


def test_a_default_global_resource_caps_the_jobs(tmp_path):
    run(tmp_path)
    assert not overlapping(intervals(tmp_path)), (
        f"{PIN} changed workflow.global_resources: a resource set there no longer caps jobs"
    )


def test_the_users_resources_option_wins_over_the_default(tmp_path):
    run(tmp_path, "--resources", f"slots={JOBS}")
    assert overlapping(intervals(tmp_path)), (
        f"{PIN} changed workflow.global_resources: --resources no longer fills it before the"
        " Snakefile runs, so set_default_resource overrides the user"
    )


def test_conda_deployment_is_seen(tmp_path):
    for args, expected in ((["--sdm", "conda"], True), ([], False)):
        out = run(tmp_path, "-n", *args)
        assert f"uses_conda: {expected}" in out, (
            f"{PIN} changed workflow.deployment_settings.deployment_method"
            f" (`{' '.join(['snakemake', *args])}` should give uses_conda {expected})"
        )
