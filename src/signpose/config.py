"""The configuration's one source of defaults and bounds: config/schema.yaml.

The workflow validates its config with Snakemake's `validate` (which fills defaults the same way);
library callers outside the workflow (tests, `signpose` commands, benchmarks) use `with_defaults`.
Nothing else in the library restates a default or a bound.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"


@cache
def schema() -> dict[str, Any]:
    """The parsed schema. libyaml's loader where PyYAML has it: a tenth of the pure-Python
    loader's time, paid by every process that reads options (each download job among them)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(SCHEMA_PATH.read_text(encoding="utf-8"), Loader=loader)


def _filling_defaults(validator_class: type) -> type:
    """A validator class that fills each missing property with its schema default, recursively
    (an object defaulted to `{}` is then filled in turn, as Snakemake's `validate` does)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, props, instance, subschema):
        if isinstance(instance, dict):
            for name, sub in props.items():
                if "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, props, instance, subschema)

    return jsonschema.validators.extend(validator_class, {"properties": properties})


def with_defaults(config: Mapping[str, Any] | None = None, section: str | None = None) -> dict:
    """`config` (or the empty config) validated against the schema, every default filled in.

    With `section`, `config` is that section alone (say `download`) and is checked against
    its part of the schema. Raises `jsonschema.ValidationError` naming the key on bad input.
    """
    full = schema()
    sub = full["properties"][section] if section else full
    data = copy.deepcopy(dict(config or {}))
    validator_class = jsonschema.validators.validator_for(full)
    _filling_defaults(validator_class)(sub).validate(data)
    return data
