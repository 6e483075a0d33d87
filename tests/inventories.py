"""Writing inventory files for tests: the product reads them exactly as a user's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def write_inventory(
    path: Path,
    hosts: dict[str, dict[str, Any]],
    *,
    all_vars: dict[str, Any] | None = None,
    groups: dict[str, list[str]] | None = None,
) -> Path:
    """Write an Ansible YAML inventory: HOSTS under all, GROUPS as children naming hosts."""
    document: dict[str, Any] = {"all": {"hosts": hosts, "vars": all_vars or {}}}
    if groups:
        document["all"]["children"] = {
            group: {"hosts": {name: None for name in members}} for group, members in groups.items()
        }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def fleet_hosts(fleet, **extra_vars: Any) -> dict[str, dict[str, Any]]:
    """Inventory entries for every host of an SSH fleet started by the harness."""
    return {host.name: {**host.inventory_vars(), **extra_vars} for host in fleet.hosts}


def fleet_vars(fleet) -> dict[str, Any]:
    """all.vars that make the product trust exactly the fleet's host keys."""
    return {"ssh_known_hosts": str(fleet.known_hosts), "connect_timeout": 3}
