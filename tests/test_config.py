"""signpose.config: the schema is the one source of defaults."""

import jsonschema
import pytest

from signpose.config import schema, with_defaults


def test_every_default_of_the_schema_is_filled_recursively():
    cfg = with_defaults({"dataset": {"name": "x", "metadata": "m.json"}})
    assert cfg["results_dir"] is None
    assert cfg["dataset"]["csv"]["video_column"] == "video_file"
    download = schema()["properties"]["download"]["properties"]
    assert cfg["download"]["retries"] == download["retries"]["default"]


def test_a_section_alone_is_checked_against_its_part_of_the_schema():
    assert with_defaults({"retries": 5}, section="download")["retries"] == 5
    with pytest.raises(jsonschema.ValidationError, match="retries"):
        with_defaults({"retries": -1}, section="download")


def test_the_callers_mapping_is_not_changed():
    given = {"dataset": {"name": "x", "metadata": "m.json"}}
    with_defaults(given)
    assert given == {"dataset": {"name": "x", "metadata": "m.json"}}


def test_the_schema_reads_as_the_pure_python_loader_reads_it():
    import yaml

    from signpose.config import SCHEMA_PATH

    assert hasattr(yaml, "CSafeLoader")  # the wheel's libyaml: the fast path is the one taken
    assert schema() == yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))
