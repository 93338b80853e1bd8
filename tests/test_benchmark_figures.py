"""The figures README.md and benchmarks/README.md quote from a committed raw result are that
result's figures.

A table after a `<!-- table: NAME results/<file>.json -->` comment must be what
benchmarks/tables.py makes of that file; the planning and scale tables, which name their file
in the text before them, are read cell by cell here. Every table in either README names the
committed result it comes from, or is one of the few that hold no measured figure. Editing a
figure by hand, or rerunning a benchmark without updating its table, fails here.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT

README = ROOT / "benchmarks" / "README.md"
DOCS = (ROOT / "README.md", README)
RESULTS = ROOT / "benchmarks" / "results"
PLANNING = "planning-wlasl2000-20261202T005112Z.json"
SCALE = ("scale-21095-20261202T005625Z.json", "scale-100000-20261202T012145Z.json")
# The ablation ran as three processes side by side, each over part of the variants.
ABLATION = (
    "ablation-20261202T030947Z.json",
    "ablation-reverse-20261202T032548Z.json",
    "ablation-rest-20261202T040201Z.json",
)
DEMO = "ablation-demo-20261202T042918Z.json"
# The two variants that train.input.ema_alpha's new meaning changed, rerun.
SMOOTHING = "ablation-20261202T041739Z.json"
BUDGET = "ablation-20261202T073438Z.json"


def table_after(marker: str, doc: Path = README) -> dict[str, list[str]]:
    """The first markdown table after the line holding `marker`: its rows by first cell."""
    text = doc.read_text()
    assert marker in text, f"{doc.relative_to(ROOT)} no longer names {marker}"
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


def benchmark_tables():
    """benchmarks/tables.py, the script that makes each traced table from its result."""
    spec = importlib.util.spec_from_file_location("tables", ROOT / "benchmarks" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TABLES = benchmark_tables()
# Tables that hold settings or facts of the data, not measurements.
NO_FIGURES = {"| key | what |"}


def markdown_tables(text: str) -> list[tuple[str, str]]:
    """(what precedes it since the last heading or table, its header line) of every table
    outside code blocks."""
    found, before, in_table, fenced = [], [], False, False
    for line in text.splitlines():
        fenced ^= line.startswith("```")
        if fenced or line.startswith("```"):
            in_table = False
            continue
        if line.startswith("|") and not in_table:
            found.append(("\n".join(before), line))
        in_table = line.startswith("|")
        before = [] if in_table or line.startswith("#") else [*before, line]
    return found


def test_every_result_file_the_readmes_name_is_committed():
    named = {n for doc in DOCS for n in re.findall(r"results/([\w.-]+\.json)", doc.read_text())}
    assert named >= {PLANNING, *SCALE, *ABLATION, DEMO, SMOOTHING}
    for name in named:
        load(name)


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: str(doc.relative_to(ROOT)))
def test_every_table_names_the_result_it_comes_from(doc: Path):
    for before, header in markdown_tables(doc.read_text()):
        if header not in NO_FIGURES:
            assert re.search(r"results/[\w.-]+\.json", before), (
                f"{doc.relative_to(ROOT)}: the table {header!r} names no committed result "
                "(a `<!-- table: NAME results/<file>.json -->` line before it)"
            )


TRACED = [(doc, *t[:4]) for doc in DOCS for t in TABLES.traced(doc.read_text())]


@pytest.mark.parametrize("doc, name, files, written, made", TRACED,
                         ids=[f"{d.relative_to(ROOT)}:{n}" for d, n, *_ in TRACED])  # fmt: skip
def test_each_traced_table_is_its_result(doc: Path, name, files, written: str, made: str):
    assert written, f"{doc.relative_to(ROOT)}: no table after the {name} marker"
    for got, want in zip(written.splitlines(), made.splitlines(), strict=False):
        assert got == want, (
            f"{doc.relative_to(ROOT)}, {name} table ({files}): run benchmarks/tables.py"
        )
    assert len(written.splitlines()) == len(made.splitlines()), (doc, name)


def test_the_table_maker_renders_every_benchmark_it_names():
    used = {name for doc, name, *_ in TRACED}
    assert used == set(TABLES.RENDER), f"not quoted anywhere: {set(TABLES.RENDER) - used}"


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


def test_the_smoothing_table_is_its_result():
    rows = dict(list(table_after(f"smoothing, `results/{SMOOTHING}`").items())[1:])  # no header
    variants = load(SMOOTHING)["ablation"]
    assert rows.keys() == variants.keys()
    reference = variants["input.ema_alpha 0.2 (the features' own smoothing)"]
    for name, cells in rows.items():
        delta = variants[name]["test_top1_mean"] - reference["test_top1_mean"]
        assert cells == [mean_sd_cell(variants[name]),
                         "" if variants[name] is reference else f"{delta:+.3f}",
                         str(len(variants[name]["runs"]))], name  # fmt: skip
    # The table above it was measured with the features' smoothing: its full recipe is this 0.2.
    first = load(ABLATION[0])["ablation"]["full recipe (the defaults)"]
    assert [r["test_top1"] for r in first["runs"]] == [r["test_top1"] for r in reference["runs"]]


def test_the_budget_table_is_its_result():
    rows = dict(list(table_after(f"budget,\n`results/{BUDGET}`").items())[1:])  # no header
    figures = load(BUDGET)
    variants = figures["ablation"]
    assert rows.keys() == variants.keys() and figures["train_base"]["epochs"] == 100
    full = variants["full recipe (the defaults)"]
    for name, cells in rows.items():
        runs = variants[name]["runs"]
        delta = variants[name]["test_top1_mean"] - full["test_top1_mean"]
        assert cells == [
            mean_sd_cell(variants[name]),
            "" if variants[name] is full else f"{delta:+.3f}",
            ", ".join(str(r["best_epoch"]) for r in runs),
            str(len(runs)),
        ], name
