"""The figures benchmarks/README.md quotes from a committed raw result are that result's figures.

A table that names its `results/<file>.json` is read cell by cell and compared with the file,
rounded as the table rounds: editing a figure by hand, or rerunning a benchmark without
updating its table, fails here.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from conftest import ROOT

README = ROOT / "benchmarks" / "README.md"
RESULTS = ROOT / "benchmarks" / "results"
PLANNING = "planning-wlasl2000-20261202T005112Z.json"
SCALE = ("scale-21095-20261202T005625Z.json", "scale-100000-20261202T012145Z.json")
# The ablation ran as three processes side by side, each over part of the variants.
ABLATION = (
    "ablation-20261202T030947Z.json",
    "ablation-reverse-20261202T032548Z.json",
    "ablation-rest-20261202T040201Z.json",
)
DEMO = "ablation-demo-20261202T032548Z.json"


def table_after(marker: str) -> dict[str, list[str]]:
    """The first markdown table after the line holding `marker`: its rows by first cell."""
    text = README.read_text()
    assert marker in text, f"benchmarks/README.md no longer names {marker}"
    rows = {}
    for line in text[text.index(marker) :].splitlines()[1:]:
        if rows and not line.startswith("|"):
            break
        if line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def run_cell(run: dict, memory: bool = True) -> str:
    """A run as the tables write it: `wall s / CPU s / peak RSS MB`."""
    cell = f"{run['wall_s']:.1f} s / {run['cpu_s']:.1f} s"
    return cell + (f" / {run['peak_rss_mb']:,.0f} MB" if memory else "")


def load(name: str) -> dict:
    path = RESULTS / name
    assert path.is_file(), f"benchmarks/README.md quotes {name}, which is not committed"
    return json.loads(path.read_text())["figures"]


def test_every_result_file_the_readme_names_is_committed():
    named = set(re.findall(r"results/([\w.-]+\.json)", README.read_text()))
    assert named >= {PLANNING, *SCALE, *ABLATION, DEMO}
    for name in named:
        load(name)


def test_the_planning_table_is_its_result():
    rows = table_after(f"`results/{PLANNING}`")
    by_scenario = {f["scenario"]: f["median"] for f in load(PLANNING)}
    for label, scenario in (("dry-run, empty results", "dry-run"),
                            ("no-op dry-run, all outputs present", "no-op dry-run")):  # fmt: skip
        bare, signpose, ratio = rows[label]
        median = by_scenario[scenario]
        assert bare == run_cell(median["bare"]) and signpose == run_cell(median["signpose"])
        wall = median["signpose"]["wall_s"] / median["bare"]["wall_s"]
        assert ratio.startswith(f"**{wall:.2f}** wall"), (label, ratio, wall)


@pytest.mark.parametrize("column, name", list(enumerate(SCALE)))
def test_the_scale_table_is_its_results(column, name):
    rows = table_after("`results/scale-21095-")
    figures = load(name)
    median = figures["median"]
    cells = {label: cells[column] for label, cells in rows.items()}
    for label, key in (("bare DAG dry-run", "bare_dry_run"), ("no-op dry-run", "noop_dry_run"),
                       ("`--report`", "report")):  # fmt: skip
        assert cells[label] == run_cell(median[key]), label
    ratio = figures["dry_run_ratio_to_bare"]
    assert cells["signpose dry-run"] == f"{run_cell(median['dry_run'])} (**{ratio:.2f}** of bare)"
    assert cells["planning the `tables` job alone"] == run_cell(median["tables_plan"], False)
    assert cells["`tables` through Snakemake"] == run_cell(median["tables"], False)
    assert cells["the tables job's own work"] == run_cell(median["tables_job"])
    prepare = cells["Snakemake's setup of `tables` (`Job.prepare`)"]
    assert prepare.startswith(f"**{min(figures['tables_prepare_s']):.3f} s**"), prepare


def mean_sd_cell(variant: dict) -> str:
    """Test top-1 over seeds as the ablation tables write it: `mean ± sd`."""
    return f"{variant['test_top1_mean']:.3f} ± {variant['test_top1_sd']:.3f}"


def test_the_ablation_table_is_its_result():
    """Every variant of the result is its row; a row the result lacks (a run stopped before it)
    says it was not measured."""
    rows = dict(list(table_after(f"`results/{ABLATION[0]}`").items())[1:])  # no header
    variants: dict = {}
    for name in reversed(ABLATION):  # a variant both measured: the first file's
        variants |= load(name)["ablation"]
    first = next(iter(rows))
    full = variants[first]
    assert rows.keys() >= variants.keys()
    for name, cells in rows.items():
        variant = variants.get(name)
        if variant is None or not variant["run"]:
            assert cells[0].startswith("not "), name
            continue
        assert cells[0] == mean_sd_cell(variant), name
        delta = variant["test_top1_mean"] - full["test_top1_mean"]
        assert cells[1] == ("" if name == first else f"{delta:+.3f}"), name
        assert cells[2] == str(len(variant["runs"])), name


def test_the_demo_table_is_its_result():
    rows = dict(list(table_after(f"demo, `results/{DEMO}`").items())[1:])  # no header
    variants = load(DEMO)["demo"]["variants"]
    assert rows.keys() == variants.keys()
    for name, cells in rows.items():
        runs = variants[name]["runs"]
        val = np.mean([r["val_top1"] for r in runs])
        test_n = {r["test_n"] for r in runs}
        assert cells == [mean_sd_cell(variants[name]), f"{val:.3f}", str(test_n.pop()),
                         str(len(runs))], name  # fmt: skip
