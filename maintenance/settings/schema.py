"""A JSON Schema of the whole inventory document, for editors with a YAML language server.

The schema follows the file as written (`all`, `children`, `hosts`, `vars`), with the product's
keys under every `vars` and every host: an editor validates an inventory as it is typed. In a
group's vars every key is optional, as in the model, and other (Ansible) keys are allowed.
"""

from __future__ import annotations

from typing import Any

from .host import HostSettings

SCHEMA_ID = "https://maintenance-automation.invalid/inventory.schema.json"


def inventory_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of an inventory file."""
    settings = HostSettings.model_json_schema(ref_template="#/$defs/{model}")
    definitions = settings.pop("$defs", {})
    settings["additionalProperties"] = True  # Ansible's own vars
    settings.pop("required", None)
    definitions["vars"] = settings
    definitions["group"] = {
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": {
            "vars": {"$ref": "#/$defs/vars"},
            "hosts": {
                "type": ["object", "null"],
                "additionalProperties": {
                    "anyOf": [{"$ref": "#/$defs/vars"}, {"type": "null"}]
                },
            },
            "children": {
                "type": ["object", "null"],
                "additionalProperties": {"$ref": "#/$defs/group"},
            },
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "maintenance-automation inventory (Ansible YAML inventory)",
        "type": "object",
        "additionalProperties": {"$ref": "#/$defs/group"},
        "$defs": definitions,
    }
