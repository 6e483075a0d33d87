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
from ..reporting import EXIT_USAGE, emit
from ..results import Result, Status
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


def _results(loaded: Inventory) -> list[Result]:
    """One `ok` result per host, naming the product's sections it sets (the rest: defaults).

    logrotate files named by `logs` entries are on the hosts, which config.check does not
    contact: it names them, and logs.rotate reads (and may refuse) them when it runs.
    """
    from ..settings.host import HostSettings

    results = []
    for host in loaded:
        sections = [key for key in HostSettings.model_fields if key in host.vars]
        imported = [rule.logrotate for rule in host.settings.logs if rule.logrotate]
        summary = "sets " + ", ".join(sections) if sections else "defaults only"
        if imported:
            summary += "; read when logs.rotate runs: " + ", ".join(imported)
        results.append(
            Result(
                host.name,
                Status.OK,
                details={
                    "groups": list(host.groups),
                    "connection": host.connection,
                    "sections": sections,
                    "logrotate_files": imported,
                },
                summary=summary,
            )
        )
    return results


def _check(flags: SimpleNamespace) -> None:
    loaded = _load(flags.inventory)
    if flags.show is not None:
        _show(loaded, flags.show, flags.json)
        return
    results = _results(loaded)
    emit("config.check", results, as_json=flags.json)
    if not flags.json:
        print(f"{loaded.source}: {len(results)} host(s), settings valid")


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
        settings = [{"key": k, "value": v, "from": o} for k, v, o in rows]
        emit("config.check", [Result(name, Status.OK, details={"settings": settings})],
             as_json=True)  # fmt: skip
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
