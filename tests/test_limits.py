"""--limit patterns select hosts as Ansible does, and refuse terms that match nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from maintenance.errors import ConfigError
from maintenance.inventory import load_inventory
from maintenance.limits import select_hosts

INVENTORY = """
all:
  children:
    databases:
      hosts: {db-prod-1: , db-prod-2: , db-stage-1: }
    production:
      hosts: {db-prod-1: , db-prod-2: , web-prod-1: }
    web:
      hosts: {web-prod-1: , web-stage-1: }
"""


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("inv") / "inventory.yaml"
    path.write_text(INVENTORY)
    return load_inventory(path)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (None, ["db-prod-1", "db-prod-2", "db-stage-1", "web-prod-1", "web-stage-1"]),
        ("all", ["db-prod-1", "db-prod-2", "db-stage-1", "web-prod-1", "web-stage-1"]),
        ("db-stage-1", ["db-stage-1"]),
        ("web", ["web-prod-1", "web-stage-1"]),
        ("*-stage-*", ["db-stage-1", "web-stage-1"]),
        ("prod*", ["db-prod-1", "db-prod-2", "web-prod-1"]),
        ("databases:web", ["db-prod-1", "db-prod-2", "db-stage-1", "web-prod-1", "web-stage-1"]),
        ("databases,web-stage-1", ["db-prod-1", "db-prod-2", "db-stage-1", "web-stage-1"]),
        ("databases:&production", ["db-prod-1", "db-prod-2"]),
        ("databases:!production", ["db-stage-1"]),
        ("all:!db-prod-2:&production", ["db-prod-1", "web-prod-1"]),
        ("~^web-.*-1$", ["web-prod-1", "web-stage-1"]),
        ("!web:databases", ["db-prod-1", "db-prod-2", "db-stage-1"]),
    ],
)
def test_limit_selects_like_ansible(inventory, pattern: str | None, expected: list[str]) -> None:
    assert [host.name for host in select_hosts(inventory, pattern)] == expected


@pytest.mark.parametrize("pattern", ["dbprod1", "databases:!prdo", "zz*", "~^nomatch$"])
def test_term_matching_nothing_is_refused_by_name(inventory, pattern: str) -> None:
    """A typo is an error naming the term, never a silent no-op or a silent 'all'."""
    with pytest.raises(ConfigError, match="matches no host or group"):
        select_hosts(inventory, pattern)


def test_limit_selecting_empty_set_is_refused(inventory) -> None:
    with pytest.raises(ConfigError, match="selects no hosts"):
        select_hosts(inventory, "web:&databases")


def test_bad_regex_is_a_config_error(inventory) -> None:
    with pytest.raises(ConfigError, match="bad regular expression"):
        select_hosts(inventory, "~[")


def test_inventory_file_order_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text("all:\n  hosts: {zeta: , alpha: , mid: }\n")
    assert [h.name for h in select_hosts(load_inventory(path), "*")] == ["zeta", "alpha", "mid"]
