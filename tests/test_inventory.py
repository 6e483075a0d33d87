"""Inventory loading: Ansible's precedence, nested groups and errors that name the culprit."""

from __future__ import annotations

from pathlib import Path

import pytest

from maintenance.errors import ConfigError
from maintenance.inventory import load_inventory
from maintenance.settings.backup import BackupSettings

NESTED = """
all:
  vars: {region: all, tier: all, backup: {store: /srv/all}}
  hosts:
    bastion:
      ansible_connection: local
  children:
    databases:
      vars: {region: databases, tier: databases, owner: dba}
      hosts:
        db1: {ansible_host: 10.0.0.1, ansible_port: "2222", ansible_user: ops}
        db2:
      children:
        primaries:
          vars: {tier: primary}
          hosts:
            db1: {region: host}
    web:
      vars: {owner: web}
      hosts:
        web1:
        db2: {backup: {store: s3://bucket/db2}}
"""


@pytest.fixture
def nested(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(NESTED)
    return path


def test_vars_follow_ansible_precedence_all_parent_child_host(nested: Path) -> None:
    """A host sees all < parent group < child group < host, as Ansible resolves them."""
    inventory = load_inventory(nested)
    db1 = inventory.hosts["db1"]
    assert db1.vars["region"] == "host"
    assert db1.vars["tier"] == "primary"
    assert db1.vars["owner"] == "dba"
    assert db1.groups == ("databases", "primaries")


def test_host_in_two_sibling_groups_gets_both_and_alphabetical_order_breaks_ties(
    nested: Path,
) -> None:
    """db2 sits in databases and web at the same depth: web (later by name) wins, as in Ansible."""
    db2 = load_inventory(nested).hosts["db2"]
    assert set(db2.groups) == {"databases", "web"}
    assert db2.vars["owner"] == "web"
    assert db2.vars["backup"] == {"store": "s3://bucket/db2"}, "dict vars are replaced, not merged"


def test_connection_vars_are_understood(nested: Path) -> None:
    """ansible_host, ansible_port (even quoted), ansible_user and ansible_connection are read."""
    inventory = load_inventory(nested)
    db1 = inventory.hosts["db1"]
    assert (db1.address, db1.port, db1.user, db1.connection) == ("10.0.0.1", 2222, "ops", "ssh")
    bastion = inventory.hosts["bastion"]
    assert (bastion.address, bastion.port, bastion.connection) == ("bastion", 22, "local")


def test_group_membership_includes_child_groups(nested: Path) -> None:
    inventory = load_inventory(nested)
    assert inventory.groups["databases"] == {"db1", "db2"}
    assert inventory.groups["primaries"] == {"db1"}
    assert inventory.groups["all"] == {"bastion", "db1", "db2", "web1"}
    assert [host.name for host in inventory] == ["bastion", "db1", "db2", "web1"]


def test_nested_vars_are_read_through_the_typed_settings_only(nested: Path) -> None:
    db2 = load_inventory(nested).hosts["db2"]
    assert db2.settings.backup.store == "s3://bucket/db2"
    assert db2.settings.backup.retention == BackupSettings().retention, "unset: the default"
    assert not hasattr(db2, "var"), "no raw read path around the settings model"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("all:\n  hosts:\n    db1: [1, 2]\n", "host 'db1': expected a mapping of vars, got a list"),
        (
            "all:\n  hosts:\n    db1: {ansible_connection: telnet}\n",
            "host 'db1': key 'ansible_connection': unknown connection type 'telnet'",
        ),
        (
            "all:\n  hosts:\n    db1: {ansible_port: twenty-two}\n",
            "host 'db1': key 'ansible_port': expected a port number, got 'twenty-two'",
        ),
        ("all:\n  hosts: [db1, db2]\n", "group 'all': key 'hosts': expected a mapping, got a list"),
        ("all:\n  hostz:\n    db1:\n", "group 'all': unknown key 'hostz'"),
        ("all:\n  hosts:\n    db1: {\n", "YAML syntax error"),
    ],
)
def test_bad_inventory_names_file_place_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_inventory(path)
    assert str(path) in str(error.value)
    assert expected in str(error.value)


def test_every_problem_is_reported_together(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "all:\n  hosts:\n    a: {ansible_port: x}\n    b: {ansible_connection: winrm}\n"
    )
    with pytest.raises(ConfigError) as error:
        load_inventory(path)
    assert "host 'a'" in str(error.value) and "host 'b'" in str(error.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="inventory file not found"):
        load_inventory(tmp_path / "nope.yaml")


def test_yaml_error_gives_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("all:\n  hosts:\n    db1:\n   - x: [\n")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+"):
        load_inventory(path)
