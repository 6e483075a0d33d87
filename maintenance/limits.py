"""Ansible host patterns for --limit: names, groups, globs, ~regex, ':' union, '&' and '!'.

Unlike Ansible, a term that matches nothing is an error rather than a warning: a typo in
'!prdo' would otherwise silently run maintenance on production.
"""

from __future__ import annotations

import fnmatch
import re

from .errors import ConfigError
from .inventory import Host, Inventory

_GLOB_CHARS = set("*?[")


def select_hosts(inventory: Inventory, pattern: str | None) -> list[Host]:
    """Return the hosts PATTERN selects, in inventory order. Raise ConfigError if none match."""
    if not pattern:
        pattern = "all"
    union: set[str] = set()
    intersections: list[set[str]] = []
    exclusions: set[str] = set()
    terms = [term.strip() for term in re.split(r"[,:]", pattern) if term.strip()]
    if not terms:
        raise ConfigError(f"--limit {pattern!r}: empty pattern")
    for term in terms:
        if term.startswith("!"):
            exclusions |= _match(inventory, term[1:], pattern)
        elif term.startswith("&"):
            intersections.append(_match(inventory, term[1:], pattern))
        else:
            union |= _match(inventory, term, pattern)
    if not union and intersections:
        # "&db" alone, as Ansible allows, intersects with every host.
        union = set(inventory.hosts)
    for members in intersections:
        union &= members
    union -= exclusions
    if not union:
        raise ConfigError(f"--limit {pattern!r} selects no hosts of {inventory.source}")
    return [host for name, host in inventory.hosts.items() if name in union]


def _match(inventory: Inventory, term: str, pattern: str) -> set[str]:
    """Host names one term stands for: 'all', a host, a group, a glob or a ~regex."""
    if term in ("all", "*"):
        return set(inventory.hosts)
    if term in inventory.hosts or term in inventory.groups:
        return {term} & set(inventory.hosts) | set(inventory.groups.get(term, ()))
    if term.startswith("~"):
        try:
            regex = re.compile(term[1:])
        except re.error as exc:
            raise ConfigError(
                f"--limit {pattern!r}: bad regular expression {term!r}: {exc}"
            ) from None
        found = _names_matching(inventory, regex.search)
    elif _GLOB_CHARS & set(term):
        found = _names_matching(inventory, lambda name: fnmatch.fnmatchcase(name, term))
    else:
        found = set()
    if not found:
        raise ConfigError(
            f"--limit {pattern!r}: {term!r} matches no host or group in {inventory.source}"
        )
    return found


def _names_matching(inventory: Inventory, matches) -> set[str]:
    found = {name for name in inventory.hosts if matches(name)}
    for group, members in inventory.groups.items():
        if matches(group):
            found |= members
    return found
