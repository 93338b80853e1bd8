"""The key tables of config/README.md, generated from config/schema.yaml.

    python -m signpose.config_readme          # rewrite the tables in config/README.md
    python -m signpose.config_readme --check  # exit 1 if they differ from the schema

Each table sits between two marker comments, `<!-- keys SECTION -->` and `<!-- end keys -->`;
everything outside the markers is hand-written prose and stays as it is.
tests/test_config_readme.py fails when a table differs from the schema.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from collections.abc import Iterator
from typing import Any

from signpose.config import SCHEMA_PATH, schema

README_PATH = SCHEMA_PATH.with_name("README.md")
BLOCK = re.compile(r"(<!-- keys (\S+) -->\n)(.*?)(<!-- end keys -->)", re.S)
HEADER = ("| key | type | default | allowed | meaning |", "|---|---|---|---|---|")
# Bound keywords of JSON schema and how a table writes them.
BOUNDS = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _code(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return f"`{text}`" if text else '`""`'


def _type(prop: dict[str, Any]) -> str:
    kinds = prop.get("type", "any")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    names = {"object": "mapping", "array": "list"}
    return " or ".join(names.get(k, k) for k in kinds)


def _allowed(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return ", ".join(_code(v) for v in prop["enum"])
    parts = [f"{sign} {prop[key]}" for key, sign in BOUNDS.items() if key in prop]
    if "maxItems" in prop:
        parts.append(f"at most {prop['maxItems']} items")
    if prop.get("uniqueItems"):
        parts.append("no repeats")
    if "minLength" in prop:
        parts.append(f"at least {prop['minLength']} characters")
    if "pattern" in prop:
        parts.append(f"matches `{prop['pattern']}`")
    return ", ".join(parts)


def _default(name: str, prop: dict[str, Any], required: list[str]) -> str:
    if "default" in prop:
        return _code(prop["default"])
    return "(required)" if name in required else ""


def _rows(props: dict[str, Any], required: list[str], prefix: str = "") -> Iterator[str]:
    """One row per key; an object with named keys gives a row per key inside it instead."""
    for name, prop in props.items():
        key = f"{prefix}{name}"
        if "properties" in prop:
            yield from _rows(prop["properties"], prop.get("required", []), f"{key}.")
            continue
        # A description such as "results/<dataset.name>" must not read as an HTML tag.
        meaning = html.escape(prop.get("description", ""), quote=False)
        cells = (f"`{key}`", _type(prop), _default(name, prop, required), _allowed(prop), meaning)
        yield "| " + " | ".join(_cell(c) for c in cells) + " |"


def table(section: str) -> str:
    """The markdown table of one top-level key of the schema (its keys, if it is an object)."""
    full = schema()
    prop = full["properties"][section]
    if "properties" in prop:
        rows = _rows(prop["properties"], prop.get("required", []))
    else:
        rows = _rows({section: prop}, full.get("required", []))
    return "\n".join([*HEADER, *rows]) + "\n"


def render(readme: str) -> str:
    """`readme` with every marked table regenerated from the schema."""
    return BLOCK.sub(lambda m: m[1] + table(m[2]) + m[4], readme)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report a difference")
    args = parser.parse_args()
    current = README_PATH.read_text(encoding="utf-8")
    wanted = render(current)
    if wanted == current:
        return 0
    if args.check:
        print(f"{README_PATH}: key tables differ from the schema; run "
              "`python -m signpose.config_readme`", file=sys.stderr)  # fmt: skip
        return 1
    README_PATH.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
