"""Broken `health.probes` through the real `maint health.check`: refused before any host is
touched (exit 3, host or group, the key path as written, no traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from maintenance.inventory import load_inventory
from tests.settings_cases import Case, assert_refused

HEALTH = ("health.check",)
KINDS = "'http', 'tcp', 'rabbitmq', 'redis', 'sql' or 'command'"


def probes(*entries: object) -> dict[str, object]:
    return {"health": {"probes": list(entries)}}


API = {"name": "api", "http": "http://127.0.0.1:8001/health"}

CASES = [
    Case("typo", probes({**API, "warn_m": 300}),
         "health.probes[0].warn_m: unknown key 'warn_m'; did you mean 'warn_ms'?", HEALTH),
    Case("typo-nested", probes({**API, "headers": {"X-Token": {"evn": "TOKEN"}}}),
         "health.probes[0].headers.X-Token.evn: unknown key 'evn'; did you mean 'env'?", HEALTH),
    Case("typo-queue", probes({"name": "q", "rabbitmq": "http://127.0.0.1:15672",
                               "queues": {"jobs": {"warn": 1, "crti": 5}}}),
         "health.probes[0].queues.jobs.crti: unknown key 'crti'; did you mean 'crit'?", HEALTH,
         on_group=True),
    Case("no-kind", probes({"name": "api", "url": "http://127.0.0.1/"}),
         f"health.probes[0]: no probe kind: expected one of the keys {KINDS}", HEALTH),
    Case("two-kinds", probes(API, {"name": "x", "http": "http://a/", "tcp": "a:1"}),
         "health.probes[1]: two probe kinds in one probe ('http' and 'tcp')", HEALTH),
    Case("not-a-mapping", probes("http://127.0.0.1/"),
         "health.probes[0]: expected a mapping naming its target with one of", HEALTH),
    Case("not-a-list", {"health": {"probes": API}},
         "health.probes: expected a list, got a mapping", HEALTH),
    Case("no-name", probes({"tcp": "127.0.0.1:587"}),
         "health.probes[0].name: required key is missing", HEALTH),
    Case("duplicate-names", probes(API, {"name": "api", "tcp": "127.0.0.1:587"}),
         "health.probes: probes [0] and [1] are both named 'api'", HEALTH, on_group=True),
    Case("wrong-type", probes({**API, "warn_ms": "fast"}),
         "health.probes[0].warn_ms: expected a number, got 'fast'", HEALTH),
    Case("wrong-unit", probes({**API, "timeout": "3 parsecs"}),
         "health.probes[0].timeout: unknown unit 'parsecs' in '3 parsecs'", HEALTH),
    Case("absurd-timeout", probes({**API, "timeout": "200y"}),
         "health.probes[0].timeout: too long for a timeout", HEALTH),
    Case("zero-timeout", probes({**API, "timeout": 0}),
         "health.probes[0].timeout: expected more than 0", HEALTH),
    Case("port-out-of-range", probes({"name": "smtp", "tcp": "127.0.0.1:70000"}),
         "health.probes[0].tcp: expected host:port, got '127.0.0.1:70000'", HEALTH),
    Case("url-scheme", probes({"name": "api", "http": "ftp://127.0.0.1/"}),
         "health.probes[0].http: expected a http:// or https:// URL with a host", HEALTH),
    Case("absurd-status", probes({**API, "status": [200, 99]}),
         "health.probes[0].status[1]: expected at least 100, got 99", HEALTH),
    Case("latency-crit-looser", probes({**API, "warn_ms": 300, "crit_ms": 100}),
         "health.probes[0]: crit_ms (100) is below warn_ms (300)", HEALTH),
    Case("lower-is-worse-misordered",
         probes({"name": "n", "command": "n", "warn": 2, "crit": 5, "worse": "lower"}),
         "health.probes[0]: crit (5) is above warn (2): critical must be at least as low", HEALTH),
    Case("method", probes({**API, "method": "FETCH"}),
         "health.probes[0].method: expected one of 'GET', 'HEAD', 'POST'", HEALTH),
    Case("via", probes({**API, "via": "remote"}),
         "health.probes[0].via: expected one of 'control' or 'host', got the string 'remote'",
         HEALTH),
    Case("sql-via-host", probes({"name": "q", "sql": "SELECT 1", "via": "host"}),
         "health.probes[0].via: an sql probe connects as every task does", HEALTH),
    Case("env-name", probes({**API, "headers": {"Authorization": {"env": "API TOKEN"}}}),
         "health.probes[0].headers.Authorization.env: expected the name of an environment "
         "variable, got 'API TOKEN'", HEALTH),
    Case("pct-over-100", probes({"name": "c", "redis": "redis://h", "memory_crit_pct": 120}),
         "health.probes[0].memory_crit_pct: expected at most 100, got 120", HEALTH),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_broken_probe_is_refused(tmp_path: Path, case: Case) -> None:
    for task in case.tasks:
        assert_refused(tmp_path, case, task)


def test_the_runbooks_checks_in_docs_are_a_valid_inventory(tmp_path: Path) -> None:
    """docs/checks.md writes the runbooks' checks as an inventory: it loads, with every kind."""
    page = (Path(__file__).parent.parent / "docs" / "checks.md").read_text()
    example = page.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "inventory.yaml").write_text(example)
    host = load_inventory(tmp_path / "inventory.yaml").hosts["app1"]
    kinds = [probe.kind for probe in host.settings.health.probes]
    assert set(kinds) == {"http", "tcp", "rabbitmq", "redis", "sql", "command"}
    assert len(kinds) == 10
