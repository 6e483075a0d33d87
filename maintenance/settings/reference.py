"""docs/settings.md, written from the same model that validates inventories.

Generated rather than hand-kept, so the page cannot drift from what the product accepts;
a test compares the committed page with this output.
"""

from __future__ import annotations

import json
from typing import Any

from .schema import inventory_schema

HEADER = """# Settings reference

Every key the product reads from an inventory's vars, with its type, default and meaning.
This page is generated from the settings model (`python -m maintenance.settings.reference >
docs/settings.md`); a test fails when it drifts. `maint config.check` validates an inventory
against the same model and `maint config.schema` prints it as a JSON Schema.

Durations: `s`, `min`, `h`, `d`, `w`, `mo`, `y` and compounds (`1h30min`). Where an age
selects data to delete, a bare number or a bare `m` is refused as ambiguous; elsewhere `m`
is minutes and a bare number seconds. Sizes: `500MB`, `2GB`, `1GiB` or bytes.
"""


def _ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def type_words(schema: dict[str, Any], paths: dict[str, str]) -> str:
    """A property's schema in a few words: 'number 0..100', 'list of text', 'see backup'."""
    if "x-type" in schema:
        return str(schema["x-type"])
    name = _ref_name(schema)
    if name:
        return f"mapping, see [`{paths[name]}`](#{_anchor(paths[name])})"
    choices = schema.get("anyOf") or schema.get("oneOf")
    if choices:
        kinds = [type_words(part, paths) for part in choices if part.get("type") != "null"]
        return " or ".join(dict.fromkeys(kinds))
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {type_words(schema.get('items', {}), paths)}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"mapping of names to {type_words(schema['additionalProperties'], paths)}"
    words = {"string": "text", "integer": "whole number", "boolean": "true/false"}
    text = words.get(kind, str(kind)) if isinstance(kind, str) else " or ".join(kind)
    if "enum" in schema:
        text = " / ".join(f"`{value}`" for value in schema["enum"])
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None or high is not None:
        text += f" {'' if low is None else low}..{'' if high is None else high}"
    return text


def _anchor(path: str) -> str:
    return "".join(ch for ch in path.lower() if ch.isalnum() or ch in "-_ ").replace(" ", "-")


def _section_paths(definitions: dict[str, Any]) -> dict[str, str]:
    """Each model's dotted path from the vars: BackupSettings -> 'backup', LogRule -> 'logs[]'."""
    paths: dict[str, str] = {"vars": "vars"}
    pending = ["vars"]
    while pending:
        name = pending.pop(0)
        for key, prop in definitions[name].get("properties", {}).items():
            prefix = "" if name == "vars" else paths[name] + "."
            for inner, suffix in _refs(prop):
                if inner not in paths:
                    kind = definitions[inner].get("x-kind")  # one of several kinds of entry
                    paths[inner] = f"{prefix}{key}{suffix}" + (f" ({kind})" if kind else "")
                    pending.append(inner)
    return paths


def _refs(schema: dict[str, Any]) -> list[tuple[str, str]]:
    name = _ref_name(schema)
    if name:
        return [(name, "")]
    choices = schema.get("anyOf", []) + schema.get("oneOf", [])
    found = [ref for part in choices for ref in _refs(part)]
    if schema.get("type") == "array":
        found += [(ref, "[]" + suffix) for ref, suffix in _refs(schema.get("items", {}))]
    if isinstance(schema.get("additionalProperties"), dict):
        values = _refs(schema["additionalProperties"])
        found += [(ref, ".NAME" + suffix) for ref, suffix in values]
    return found


def _default(prop: dict[str, Any]) -> str:
    if "default" not in prop or prop["default"] is None:
        return ""
    value = prop["default"]
    return f"`{json.dumps(value)}`" if value not in ({}, []) else ""


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render() -> str:
    """The whole page as Markdown."""
    definitions = inventory_schema()["$defs"]
    paths = _section_paths(definitions)
    lines = [HEADER]
    for name, path in paths.items():
        model = definitions[name]
        title = "Top-level vars" if name == "vars" else f"`{path}`"
        lines += [f"## {title}", "", _cell(model.get("description", "")), ""]
        lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
        for key, prop in model.get("properties", {}).items():
            example = prop.get("examples")
            meaning = _cell(prop.get("description", ""))
            if example:
                said = f"Example: `{json.dumps(example[0])}`."
                meaning = f"{meaning.rstrip('.')}. {said}" if meaning else said
            lines.append(
                f"| `{key}` | {_cell(type_words(prop, paths))} | {_default(prop)} | {meaning} |"
            )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
