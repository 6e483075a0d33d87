"""config.check and config.schema as users run them, and the settings page kept in step."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from maintenance.settings.reference import render
from tests.maint_cli import Run, run_maint_cli

REPO = Path(__file__).resolve().parent.parent
DOCS = [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]


def maint(*args: str, cwd: Path = REPO) -> Run:
    return run_maint_cli(list(args), cwd=cwd)


def _inventory_examples() -> list[tuple[str, str]]:
    """Every YAML block of the docs that is an inventory (starts with `all:`)."""
    found = []
    for page in DOCS:
        blocks = re.findall(r"```ya?ml\n(.*?)```", page.read_text(), flags=re.S)
        found += [(f"{page.name}#{n}", b) for n, b in enumerate(blocks) if b.startswith("all:")]
    return found


def test_the_example_inventory_passes_config_check() -> None:
    done = maint("config.check", "-i", "inventory.yaml")
    assert done.returncode == 0, done.stderr
    assert "settings valid" in done.stdout and "localhost" in done.stdout


@pytest.mark.parametrize(("name", "text"), _inventory_examples(), ids=lambda v: str(v)[:30])
def test_every_docs_example_passes_config_check(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / "inventory.yaml").write_text(text)
    done = maint("config.check", "-i", "inventory.yaml", cwd=tmp_path)
    assert done.returncode == 0, (name, done.stderr)


def test_docs_have_inventory_examples() -> None:
    assert len(_inventory_examples()) >= 5


def test_config_check_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        "all:\n  vars: {helth: {}}\n  hosts:\n"
        "    db1: {host_timeout: 10x}\n    db2: {connect_timeout: -1}\n"
    )
    done = maint("config.check", "-i", str(path))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    for said in ("helth: unknown key; did you mean 'health'?", "host 'db1': host_timeout",
                 "host 'db2': connect_timeout"):  # fmt: skip
        assert said in done.stderr, done.stderr


def test_show_names_where_each_value_came_from(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        "all:\n  children:\n    web:\n      vars: {command_timeout: 2min}\n"
        "      hosts:\n        db1: {connect_timeout: 3}\n"
    )
    done = maint("config.check", "-i", str(path), "--show", "db1", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["summary"]["ok"] == 1 and document["results"][0]["host"] == "db1"
    rows = {row["key"]: row for row in document["results"][0]["details"]["settings"]}
    assert rows["command_timeout"] == {"key": "command_timeout", "value": 120.0,
                                       "from": "group 'web'"}  # fmt: skip
    assert rows["connect_timeout"]["from"] == "host 'db1'"
    assert rows["connect_timeout"]["value"] == 3
    assert rows["host_timeout"]["from"] == "default"


def test_show_of_an_unknown_host_exits_2() -> None:
    done = maint("config.check", "-i", "inventory.yaml", "--show", "nosuchhost")
    assert done.returncode == 2 and "no host 'nosuchhost'" in done.stderr


@pytest.fixture(scope="module")
def schema() -> dict:
    done = maint("config.schema")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    jsonschema.Draft202012Validator.check_schema(document)
    return document


def test_schema_accepts_the_example_inventory(schema: dict) -> None:
    document = yaml.safe_load((REPO / "inventory.yaml").read_text())
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(document))
    assert errors == [], [error.message for error in errors]


@pytest.mark.parametrize(
    "text",
    [
        "all:\n  vars: {backup: {stor: /x}}\n",
        "all:\n  hosts:\n    db1: {connect_timeout: true}\n",
        "all:\n  children:\n    g:\n      hots: {db1: {}}\n",
    ],
)
def test_schema_refuses_what_config_check_refuses(schema: dict, text: str) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(text), schema, cls=jsonschema.Draft202012Validator)


def test_settings_page_is_generated_from_the_model() -> None:
    page = (REPO / "docs" / "settings.md").read_text()
    assert page == render(), "docs/settings.md drifted: python -m maintenance.settings.reference"


def test_show_writes_values_as_the_inventory_does_and_masks_only_secrets(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        "all:\n"
        "  vars:\n"
        "    notify: {webhook_format: json, webhook_url: 'https://hooks.example/T0KEN123'}\n"
        "  hosts:\n"
        "    db1:\n"
        "      certs: [{endpoint: 'db1:5432'}]\n"
        "      health: {disk_paths: [/srv/json], backup_warn_age: 26h}\n"
        "      backup: {retention: {keep_within: 12mo}}\n"
        "      postgres: {dsn: 'postgresql://u:hunter2@h/db'}\n"
    )
    done = maint("config.check", "-i", str(path), "--show", "db1", "--json")
    assert done.returncode == 0, done.stderr
    assert "T0KEN123" not in done.stdout and "hunter2" not in done.stdout
    rows = {row["key"]: row for row in json.loads(done.stdout)["results"][0]["details"]["settings"]}
    assert rows["notify.webhook_format"]["value"] == "json"  # a format, not a secret
    assert rows["health.disk_paths"]["value"] == ["/srv/json"]
    assert rows["health.backup_warn_age"]["value"] == "1d2h"
    assert rows["backup.retention.keep_within"]["value"] == "12mo"
    assert rows["backup.retention.keep_within"]["from"] == "host 'db1'"
    assert rows["backup.retention.keep_daily"]["from"] == "default"
    assert rows["certs.targets"]["from"] == "host 'db1'"  # the list form sets the targets
    assert rows["certs.targets"]["value"][0]["endpoint"] == "db1:5432"
