"""The mutation check (tests/mutants/run.py) stays runnable: each breaking edit still applies
to the current source, and the test it must make fail exists and is the one the row names."""

from __future__ import annotations

import re

import pytest
from mutants.run import MUTANTS, apply

from conftest import ROOT


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: f"row{m.row}")
def test_every_mutant_still_applies_to_its_row_and_test(tmp_path, mutant):
    (tmp_path / mutant.file).parent.mkdir(parents=True)
    (tmp_path / mutant.file).write_text((ROOT / mutant.file).read_text())
    apply(mutant, tmp_path)
    assert (tmp_path / mutant.file).read_text() != (ROOT / mutant.file).read_text()
    path, name = mutant.test.split("::")
    assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M), mutant.test
    rows = (ROOT / "docs" / "reliability.md").read_text()
    row = re.search(rf"^\| {mutant.row} \|.*$", rows, re.M)
    assert row and f"{path.removeprefix('tests/').removesuffix('.py')}::" in row.group(0)
    assert name in row.group(0), f"row {mutant.row} does not name {mutant.test}"


def test_every_test_a_reliability_row_names_exists():
    """A row's `file::name` (and the bare names after it, of the same file) are tests that
    exist: renaming or deleting a test cannot leave a row pointing at nothing."""
    doc = (ROOT / "docs" / "reliability.md").read_text()
    rows = re.findall(r"^\| (\d+) \|(.*)$", doc, re.M)
    assert len(rows) == int(re.search(r"\*\*(\d+) cases", doc).group(1))
    for number, row in rows:
        cell = row.rstrip(" |").rsplit("|", 1)[-1]
        source = ""
        for file, name in re.findall(r"(?:(test_\w+)::)?\b(test_\w+)\b(?!::|\.py)", cell):
            if file:
                source = (ROOT / "tests" / f"{file}.py").read_text()
            assert source, f"row {number} names {name} without its file"
            assert re.search(rf"^(?:async )?def {name}\(", source, re.M), f"row {number}: {name}"
