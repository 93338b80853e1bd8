"""The schema is the one source of truth: it states every key fully, config/README.md's key
tables are generated from it, and the workflow and the library fill the same defaults."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from snakemake.utils import validate

from signpose.config import SCHEMA_PATH, schema, with_defaults
from signpose.config_readme import BLOCK, README_PATH, render

# Every keyword a key of the schema may use: another one is most likely a YAML slip (an
# unquoted comma in a flow mapping makes a new key of the rest of a description).
KEYWORDS = {"type", "default", "description", "enum", "pattern", "properties", "required",
            "additionalProperties", "items", "minimum", "maximum", "exclusiveMinimum",
            "exclusiveMaximum", "minLength", "maxItems", "uniqueItems"}  # fmt: skip


def keys(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(dotted path, schema, required) of every key of the schema, depth first."""
    for name, prop in node.get("properties", {}).items():
        yield f"{path}{name}", prop, name in node.get("required", [])
        yield from keys(prop, f"{path}{name}.")


def test_the_readme_tables_are_the_schemas():
    readme = README_PATH.read_text(encoding="utf-8")
    assert render(readme) == readme, "run `python -m signpose.config_readme` and commit"


def test_every_section_of_the_schema_has_a_table():
    readme = README_PATH.read_text(encoding="utf-8")
    assert [m[2] for m in BLOCK.finditer(readme)] == list(schema()["properties"])


def test_every_key_is_typed_described_defaulted_and_closed():
    for path, prop, required in keys(schema()):
        assert set(prop) <= KEYWORDS, f"{path}: unknown keywords {set(prop) - KEYWORDS}"
        assert "type" in prop and prop.get("description"), f"{path}: type and description"
        assert required or "default" in prop, f"{path}: a default, or required"
        if "properties" in prop:
            assert prop.get("additionalProperties") is False, f"{path}: unknown keys must fail"


def test_the_workflow_and_the_library_fill_the_same_defaults():
    given = {"dataset": {"name": "x", "metadata": "m.json"}, "train": {"model": {"lstm": {}}}}
    workflow = {"dataset": dict(given["dataset"]), "train": {"model": {"lstm": {}}}}
    validate(workflow, str(SCHEMA_PATH))  # what the Snakefile does
    assert workflow == with_defaults(given)
    model = schema()["properties"]["train"]["properties"]["model"]
    heads = model["properties"]["transformer"]["properties"]["heads"]["default"]
    assert workflow["train"]["model"]["transformer"]["heads"] == heads  # filled at every depth
