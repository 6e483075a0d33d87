"""Broken `backup.sources` through the real `maint backup.db` (and the tasks that read it):
refused before any host is touched (exit 2, host or group, the key path as written)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.settings_cases import Case, assert_refused

BACKUP = ("backup.db", "backup.list", "health.check")
KINDS = "'sqlite', 'command', 'redis' or 'mysql'"


def sources(*entries: object, **more: object) -> dict[str, object]:
    return {"backup": {"sources": list(entries)}, **more}


APP = {"name": "app", "sqlite": "/var/lib/app/app.db"}

CASES = [
    Case("typo", sources({**APP, "sqllite_path": "/x"}),
         "backup.sources[0].sqllite_path: unknown key 'sqllite_path'", BACKUP),
    Case("typo-command", sources({"name": "ev", "command": "tar c /srv", "sufix": "tar"}),
         "backup.sources[0].sufix: unknown key 'sufix'; did you mean 'suffix'?", BACKUP),
    Case("typo-kind", sources({"name": "app", "sqlit": "/x.db"}),
         f"backup.sources[0]: no source kind: expected one of the keys {KINDS}", BACKUP),
    Case("typo-kind-guess", sources({"name": "app", "sqlit": "/x.db"}),
         "did you mean 'sqlite'?", ("backup.db",)),
    Case("two-kinds", sources({"name": "x", "sqlite": "/x.db", "command": "cat /x.db"}),
         "backup.sources[0]: two source kinds in one source ('sqlite' and 'command')", BACKUP),
    Case("not-a-mapping", sources("/var/lib/app/app.db"),
         "backup.sources[0]: expected a mapping naming its target with one of", BACKUP),
    Case("not-a-list", {"backup": {"sources": APP}},
         "backup.sources: expected a list, got a mapping", BACKUP),
    Case("no-name", sources({"sqlite": "/x.db"}),
         "backup.sources[0].name: required key is missing", BACKUP),
    Case("wrong-type", sources({"name": 7, "sqlite": "/x.db"}),
         "backup.sources[0].name: expected text, got 7", BACKUP),
    Case("unsafe-name", sources({"name": "../etc", "sqlite": "/x.db"}),
         "backup.sources[0].name: expected 1-100 letters, digits", BACKUP),
    Case("reserved-name", sources({"name": "_globals", "sqlite": "/x.db"}),
         "backup.sources[0].name: expected 1-100 letters, digits", BACKUP),
    Case("absurd-name", sources({"name": "a" * 101, "sqlite": "/x.db"}),
         "backup.sources[0].name: expected 1-100 letters, digits", BACKUP),
    Case("duplicate-names", sources(APP, {"name": "app", "command": "cat /x"}),
         "backup.sources: sources [0] and [1] are both named 'app'", BACKUP),
    Case("clashes-with-database",
         sources(APP, postgres={"dsn": "postgresql://u@127.0.0.1/x", "databases": ["app"]}),
         "backup.sources[0].name: 'app' is also in postgres.databases", BACKUP),
    Case("relative-path", sources({"name": "app", "sqlite": "app.db"}),
         "backup.sources[0].sqlite: expected an absolute path on the host, got 'app.db'", BACKUP),
    Case("empty-command", sources({"name": "ev", "command": "  "}),
         "backup.sources[0].command:", BACKUP),
    Case("suffix-form", sources({"name": "ev", "command": "cat /x", "suffix": "Archive GZ"}),
         "backup.sources[0].suffix:", BACKUP),
    Case("redis-scheme", sources({"name": "cache", "redis": "http://127.0.0.1:6379"}),
         "backup.sources[0].redis: expected a redis:// or rediss:// URL with a host", BACKUP),
    Case("redis-port", sources({"name": "cache", "redis": "redis://127.0.0.1:99999"}),
         "backup.sources[0].redis: expected a URL, got 'redis://127.0.0.1:99999'", BACKUP),
    Case("password-env-form",
         sources({"name": "cache", "redis": "redis://h", "password_env": "A B"}),
         "backup.sources[0].password_env: expected the name of an environment variable", BACKUP),
    Case("mysql-no-databases", sources({"name": "shop", "mysql": "mysql://backup@127.0.0.1"}),
         "backup.sources[0].databases: required key is missing", BACKUP),
    Case("mysql-database-name",
         sources({"name": "shop", "mysql": "mysql://backup@h", "databases": ["shop db"]}),
         "backup.sources[0].databases: 'shop db' cannot name a backup (shop.shop db)", BACKUP),
    Case("mysql-database-twice",
         sources({"name": "shop", "mysql": "mysql://backup@h", "databases": ["a", "b", "a"]}),
         "backup.sources[0].databases: listed twice: a", BACKUP),
    Case("mysql-database-absurd",
         sources({"name": "shop", "mysql": "mysql://backup@h", "databases": ["d" * 100]}),
         "backup.sources[0].databases: 'ddd", BACKUP),
    Case("mysql-databases-type",
         sources({"name": "shop", "mysql": "mysql://backup@h", "databases": "shop"}),
         "backup.sources[0].databases: expected a list", BACKUP),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_broken_source_is_refused(tmp_path: Path, case: Case) -> None:
    for task in case.tasks:
        assert_refused(tmp_path, case, task)
