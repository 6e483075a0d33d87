"""Tasks of the `config` namespace: validate an inventory, show a host's settings, the schema.

These read the inventory only; no host is contacted.
"""

from __future__ import annotations

import json as json_module
import sys
from types import SimpleNamespace

from invoke.exceptions import Exit

from ..errors import ConfigError
from ..inventory import Inventory, load_inventory
from ..reporting import EXIT_USAGE
from .common import inventory_path
from .spec import Flag, TaskSpec, collection


def _load(inventory: str | None) -> Inventory:
    """The inventory, with its schedule checked against the tasks too. Exit 2 if invalid."""
    from ..scheduler.catalog import catalog_from
    from ..scheduler.config import load_settings
    from .collection import build_namespace  # the collection imports this module

    path = inventory_path(inventory)
    try:
        loaded = load_inventory(path)
        load_settings(path, catalog_from(build_namespace()))
    except ConfigError as exc:
        raise Exit(f"error: {exc}", code=EXIT_USAGE) from None
    return loaded


def _summary(loaded: Inventory) -> list[dict[str, object]]:
    from ..settings.host import HostSettings

    rows: list[dict[str, object]] = []
    for host in loaded:
        product = [key for key in HostSettings.model_fields if key in host.vars]
        rows.append(
            {
                "host": host.name,
                "groups": list(host.groups),
                "connection": host.connection,
                "settings": product,
            }
        )
    return rows


def _check(flags: SimpleNamespace) -> None:
    loaded = _load(flags.inventory)
    if flags.show is not None:
        _show(loaded, flags.show, flags.json)
        return
    rows = _summary(loaded)
    if flags.json:
        print(json_module.dumps({"task": "config.check", "inventory": str(loaded.source),
                                 "hosts": rows, "problems": []}, indent=2))  # fmt: skip
        return
    for row in rows:
        sections = ", ".join(row["settings"]) or "defaults only"  # type: ignore[arg-type]
        print(f"{row['host']:<20} {row['connection']:<6} {sections}")
    print(f"{loaded.source}: {len(rows)} host(s), settings valid")


def _show(loaded: Inventory, name: str, as_json: bool) -> None:
    from ..secrets import mask_value
    from ..settings.effective import effective

    host = loaded.hosts.get(name)
    if host is None:
        raise Exit(f"error: no host {name!r} in {loaded.source}", code=EXIT_USAGE)
    rows = [
        (key, mask_value(value, key.rsplit(".", 1)[-1]), origin)
        for key, value, origin in effective(host.settings, host.vars, host.origins)
    ]
    if as_json:
        document = [{"key": k, "value": v, "from": o} for k, v, o in rows]
        print(json_module.dumps({"task": "config.check", "host": name, "settings": document},
                                indent=2, default=str))  # fmt: skip
        return
    width = max(len(key) for key, _, _ in rows)
    for key, value, origin in rows:
        print(f"{key:<{width}}  {json_module.dumps(value, default=str):<40}  {origin}")


def _schema(flags: SimpleNamespace) -> None:
    from ..settings.schema import inventory_schema

    text = json_module.dumps(inventory_schema(), indent=2) + "\n"
    if flags.output:
        with open(flags.output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)


SPECS = (
    TaskSpec(
        "config.check",
        """Validate the whole inventory for every host, as the tasks do, and contact no host.

        Exit 0 when every host's settings are valid, 2 with every problem listed otherwise.
        """,
        common=("inventory", "json"),
        flags=(Flag("show", "print HOST's effective settings, each with where it came from"),),
        action=_check,
    ),
    TaskSpec(
        "config.schema",
        "Print a JSON Schema of the inventory, for editors with a YAML language server.",
        common=(),
        flags=(Flag("output", "write the schema to this file instead of stdout"),),
        action=_schema,
    ),
)

namespace = collection("config", SPECS)
