"""The rabbitmq and redis probes against real servers: a RabbitMQ node with its management
plugin and a Redis server, started for these tests on free loopback ports.

Queues are filled over AMQP and held by a real consumer; Redis is filled up to its memory
limit. Each probe reaches OK, WARNING and CRITICAL, and says why in words.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from maintenance.errors import ConfigError
from maintenance.inventory import load_inventory
from maintenance.monitoring import Check, State
from maintenance.probes import run_probes
from maintenance.probes.rabbitmq import Queue, assessed
from maintenance.runners import runner_for
from maintenance.settings.probes import RabbitmqProbe
from maintenance.units import format_size
from tests.harness import RabbitMQ, RedisServer, free_port, start_rabbitmq, start_redis
from tests.harness.tls import Pki
from tests.inventories import fleet_hosts, fleet_vars, write_inventory

RMQ_ENV = "MAINT_TEST_RMQ_PASSWORD"
REDIS_ENV = "MAINT_TEST_REDIS_PASSWORD"
# Disk checks of the machine running the tests are not what these tests look at.
QUIET_DISK = {"disk_warn_free_pct": 0, "disk_crit_free_pct": 0}


@pytest.fixture(scope="module")
def rabbitmq() -> Iterator[RabbitMQ]:
    """One node for these tests (it takes seconds to start; queues are per test), stopped
    when they are done rather than idling through the rest of the session."""
    server = start_rabbitmq()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cache(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisServer]:
    """The Redis server emptied, without a memory limit or statistics, its password in env."""
    monkeypatch.setenv(REDIS_ENV, redis_server.password)
    with redis_server.client() as client:
        client.flushall()
        client.config_set("maxmemory", 0)
        client.config_set("maxclients", 10000)
        client.config_resetstat()
    yield redis_server


@pytest.fixture
def broker(rabbitmq: RabbitMQ, monkeypatch: pytest.MonkeyPatch) -> RabbitMQ:
    """The node with its password in the environment variable the probes name."""
    monkeypatch.setenv(RMQ_ENV, rabbitmq.password)
    return rabbitmq


def local_host(*probes: dict[str, Any]) -> dict[str, Any]:
    return {"h": {"ansible_connection": "local", "health": {**QUIET_DISK, "probes": list(probes)}}}


def run_probe(tmp_path: Path, probe: dict[str, Any], hosts: dict | None = None, **vars_) -> Check:
    """PROBE's check, run as health.check runs it: loaded from an inventory, on its runner."""
    inventory = write_inventory(
        tmp_path / "probe.yaml",
        hosts or local_host(probe),
        all_vars=vars_ or None,
    )
    host = next(iter(load_inventory(inventory)))
    with runner_for(host) as runner:
        [check] = run_probes(host, runner, host.settings.health.probes)
    return check


def health_check(inventory: Path) -> tuple[int, dict, str]:
    done = subprocess.run(
        ["maint", "health.check", "-i", str(inventory), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )
    report = json.loads(done.stdout) if done.stdout else {}
    return done.returncode, report, done.stdout + done.stderr


def checks_by_name(report: dict) -> dict[str, dict]:
    return {check["name"]: check for check in report["results"][0]["details"]["checks"]}


# --- rabbitmq -----------------------------------------------------------------------------


def queues_probe(server: RabbitMQ, **keys: Any) -> dict[str, Any]:
    return {
        "name": "queues",
        "rabbitmq": server.management_url,
        "user": server.user,
        "password_env": RMQ_ENV,
        **keys,
    }


def test_queue_depth_goes_ok_warning_critical(broker: RabbitMQ, tmp_path: Path) -> None:
    """Messages ready below warn, at warn, at crit: OK, WARNING, CRITICAL, with the counts."""
    broker.declare_queue("depth")
    probe = queues_probe(broker, queues={"depth": {"warn": 10, "crit": 30}})
    broker.wait_for("depth", messages_ready=0)
    check = run_probe(tmp_path, probe)
    assert check.state == State.OK
    assert check.message == "depth: ready 0 (warn 10, crit 30), unacked 0, consumers 0"
    broker.publish("depth", 10)
    broker.wait_for("depth", messages_ready=10)
    check = run_probe(tmp_path, probe)
    assert check.state == State.WARNING
    assert check.message == "depth: ready 10 (warn 10, crit 30), unacked 0, consumers 0"
    assert check.value == 10
    broker.publish("depth", 25)
    broker.wait_for("depth", messages_ready=35)
    check = run_probe(tmp_path, probe)
    assert (check.state, check.value) == (State.CRITICAL, 35)


def test_stopped_consumer_is_critical_and_held_messages_count_as_unacked(
    broker: RabbitMQ, tmp_path: Path
) -> None:
    """A consumer holding 4 messages: unacked WARNING; once it stops, too few consumers."""
    broker.declare_queue("work")
    broker.publish("work", 6)
    limits = {"min_consumers": 1, "unacked_warn": 4, "unacked_crit": 100}
    probe = queues_probe(broker, queues={"work": limits})
    with broker.consumer("work", prefetch=4):
        broker.wait_for("work", messages_ready=2, messages_unacknowledged=4, consumers=1)
        check = run_probe(tmp_path, probe)
        assert check.state == State.WARNING
        assert (
            check.message == "work: ready 2, unacked 4 (warn 4, crit 100), consumers 1 (at least 1)"
        )
    broker.wait_for("work", messages_ready=6, messages_unacknowledged=0, consumers=0)
    check = run_probe(tmp_path, probe)
    assert check.state == State.CRITICAL
    assert check.message == "work: ready 6, unacked 0 (warn 4, crit 100), consumers 0 (at least 1)"


def test_dead_letter_queue_with_a_message_is_critical(broker: RabbitMQ, tmp_path: Path) -> None:
    broker.declare_queue("orders_dlq")
    probe = queues_probe(broker, dead_letter=["orders_dlq"])
    broker.wait_for("orders_dlq", messages_ready=0)
    check = run_probe(tmp_path, probe)
    assert (check.state, check.message) == (State.OK, "orders_dlq: no dead letters")
    broker.publish("orders_dlq", 1)
    broker.wait_for("orders_dlq", messages_ready=1)
    check = run_probe(tmp_path, probe)
    assert (check.state, check.message) == (
        State.CRITICAL,
        "orders_dlq: 1 dead letter (expected none)",
    )


def test_patterns_grade_every_matching_queue_and_missing_queues_are_said(
    broker: RabbitMQ, tmp_path: Path
) -> None:
    """A glob grades each queue it matches; a missing named queue is CRITICAL, an empty
    pattern a WARNING; the message names what is wrong, worst first."""
    for name in ("mail.a", "mail.b"):
        broker.declare_queue(name)
    broker.publish("mail.b", 3)
    broker.wait_for("mail.a", messages_ready=0)
    broker.wait_for("mail.b", messages_ready=3)
    probe = queues_probe(
        broker, queues={"mail.*": {"warn": 3}, "sms.*": {"warn": 1}, "billing": {"crit": 1}}
    )
    check = run_probe(tmp_path, probe)
    assert check.state == State.CRITICAL
    assert check.message == (
        "billing: no such queue; mail.b: ready 3 (warn 3), unacked 0, consumers 0; "
        "no queue matches 'sms.*'"
    )
    assert check.value == 3


def test_many_ok_queues_are_named_five_then_counted() -> None:
    """Graded without a server: an OK message names five queues and counts the rest; a queue
    not yet sampled by the management plugin is UNKNOWN, not a made-up zero."""
    settings = RabbitmqProbe(
        name="q", rabbitmq="http://127.0.0.1:15672", queues={"t.*": {"warn": 5}}
    )
    calm = [Queue(f"t.{number}", number, 0, 1) for number in range(7)]
    calm[5:] = [Queue("t.x", 0, 0, 1), Queue("t.y", 0, 0, 1)]
    check = assessed(settings, calm)
    assert (check.state, check.value) == (State.OK, 4)
    assert check.message.endswith(
        "t.4: ready 4 (warn 5), unacked 0, consumers 1; and 2 more queues OK"
    )
    check = assessed(settings, [*calm, Queue("t.z", 6, 0, 1)])
    assert (check.state, check.value) == (State.WARNING, 6)
    assert check.message == "t.z: ready 6 (warn 5), unacked 0, consumers 1"
    check = assessed(settings, [*calm, Queue("t.new", None, None, None)])
    assert (check.state, check.message) == (State.UNKNOWN, "t.new: no statistics yet (a new queue)")


def test_contract_probe_through_health_check_json(broker: RabbitMQ, tmp_path: Path) -> None:
    """The issue's queue probe as written in an inventory: past crit with a dead letter,
    health.check exits 2 and its JSON names both; the password appears nowhere."""
    broker.declare_queue("birthday_messages")
    broker.declare_queue("birthday_messages_dlq")
    broker.publish("birthday_messages", 12)
    broker.publish("birthday_messages_dlq", 2)
    broker.wait_for("birthday_messages", messages_ready=12)
    broker.wait_for("birthday_messages_dlq", messages_ready=2)
    probe = queues_probe(
        broker,
        queues={"birthday_messages": {"warn": 5, "crit": 10, "min_consumers": 1}},
        dead_letter=["birthday_messages_dlq"],
    )
    inventory = write_inventory(tmp_path / "inv.yaml", local_host(probe))
    code, report, output = health_check(inventory)
    assert code == 2, output
    check = checks_by_name(report)["queues"]
    assert check["state"] == "CRITICAL"
    assert check["message"] == (
        "birthday_messages: ready 12 (warn 5, crit 10), unacked 0, consumers 0 (at least 1); "
        "birthday_messages_dlq: 2 dead letters (expected none)"
    )
    assert check["value"] == 12
    assert broker.password not in output


def test_refused_password_unset_variable_and_down_broker(
    broker: RabbitMQ, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Wrong password: CRITICAL naming the user (never the password); variable unset: UNKNOWN
    naming it; nothing listening: CRITICAL, connection refused."""
    wrong = "not-the-password-" + broker.password[:4]
    monkeypatch.setenv(RMQ_ENV, wrong)
    check = run_probe(tmp_path, queues_probe(broker, queues={"x": {}}))
    assert check.state == State.CRITICAL
    assert f"refused user '{broker.user}'" in check.message
    assert wrong not in check.message
    monkeypatch.delenv(RMQ_ENV)
    check = run_probe(tmp_path, queues_probe(broker, queues={"x": {}}))
    assert check.state == State.UNKNOWN
    assert (
        check.message == f"password_env: environment variable {RMQ_ENV} is not set on this machine"
    )
    down = f"http://127.0.0.1:{free_port()}"
    check = run_probe(tmp_path, {**queues_probe(broker), "rabbitmq": down, "password_env": None})
    assert (check.state, check.message) == (State.CRITICAL, f"{down}: connection refused")


def test_a_monitoring_user_reads_the_queues(
    broker: RabbitMQ, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user docs/checks.md suggests (tag `monitoring`, no configure/write/read rights) is
    enough for the probe."""
    broker.api("PUT", "users/monitor", {"password": "monitor-pass", "tags": "monitoring"})
    broker.api("PUT", "permissions/%2F/monitor", {"configure": "", "write": "", "read": ""})
    broker.declare_queue("watched")
    broker.wait_for("watched", messages_ready=0)
    monkeypatch.setenv(RMQ_ENV, "monitor-pass")
    probe = queues_probe(broker, user="monitor", queues={"watched": {"warn": 1}})
    check = run_probe(tmp_path, probe)
    assert (check.state, check.message) == (
        State.OK,
        "watched: ready 0 (warn 1), unacked 0, consumers 0",
    )


def test_via_host_asks_the_management_api_from_the_host(broker: RabbitMQ, tmp_path: Path) -> None:
    """`via: host` sends the request from the host (python3 there); a reachable broker with
    no rules is OK and counts the vhost's queues."""
    check = run_probe(tmp_path, queues_probe(broker, via="host"))
    assert check.state == State.OK
    assert check.message.endswith("queues in vhost '/'")


# --- redis --------------------------------------------------------------------------------


def cache_probe(server: RedisServer, **keys: Any) -> dict[str, Any]:
    return {"name": "cache", "redis": server.url(), "password_env": REDIS_ENV, **keys}


def fill_to(server: RedisServer, percent: float) -> None:
    """Write 16 KiB values until used_memory is at least PERCENT of maxmemory."""
    with server.client() as client:
        limit = int(client.info("memory")["maxmemory"])
        index = 0
        while int(client.info("memory")["used_memory"]) < limit * percent / 100:
            client.set(f"fill:{index}", b"x" * 16384)
            index += 1


def test_memory_goes_ok_warning_critical_against_maxmemory(
    cache: RedisServer, tmp_path: Path
) -> None:
    """With the default 80/90 %: a fresh 4 MiB server is OK, filled to 80 % WARNING, to 90 %
    CRITICAL; the message gives the share and the sizes."""
    with cache.client() as client:
        client.config_set("maxmemory", "4mb")
    limit = 4 * 1024 * 1024
    check = run_probe(tmp_path, cache_probe(cache))
    assert check.state == State.OK, check.message
    assert (check.warn, check.crit) == (round(limit * 0.8), round(limit * 0.9))
    assert check.value < limit * 0.8
    fill_to(cache, 83)  # a little past: the filling client's buffers go when it closes
    check = run_probe(tmp_path, cache_probe(cache))
    assert check.state == State.WARNING, check.message
    assert re.fullmatch(
        r"memory 8\d\.?\d?% \(warn 80%, crit 90%\) of maxmemory: .* of 4\.0 MiB; .*", check.message
    ), check.message
    fill_to(cache, 93)
    check = run_probe(tmp_path, cache_probe(cache))
    assert check.state == State.CRITICAL, check.message
    assert check.value >= limit * 0.9


def test_memory_without_maxmemory_is_reported_not_graded(
    cache: RedisServer, tmp_path: Path
) -> None:
    check = run_probe(tmp_path, cache_probe(cache, memory_warn_pct=1, memory_crit_pct=2))
    assert check.state == State.OK
    assert (check.warn, check.crit) == (None, None)
    assert check.message.startswith(f"memory {format_size(check.value)} (no maxmemory); ")


def test_connected_clients_past_thresholds(cache: RedisServer, tmp_path: Path) -> None:
    """Four idle clients and the probe's own: warn 4 gives WARNING, crit 5 CRITICAL."""
    with contextlib.ExitStack() as stack:
        for _ in range(4):
            client = stack.enter_context(cache.client())
            client.ping()
        check = run_probe(tmp_path, cache_probe(cache, clients_warn=4, clients_crit=6))
        assert check.state == State.WARNING, check.message
        assert "; clients 5 (warn 4, crit 6);" in check.message
        check = run_probe(tmp_path, cache_probe(cache, clients_warn=4, clients_crit=5))
        assert check.state == State.CRITICAL


def test_rejected_connections_warn_until_statistics_are_reset(
    cache: RedisServer, tmp_path: Path
) -> None:
    """A connection refused at maxclients raises the counter: WARNING, until CONFIG RESETSTAT."""
    with cache.client() as admin:
        admin.ping()
        admin.config_set("maxclients", 1)
        with pytest.raises(redis.ConnectionError), cache.client() as refused:
            refused.ping()
        admin.config_set("maxclients", 10000)
    probe = cache_probe(cache, rejected_warn=1)
    check = run_probe(tmp_path, probe)
    assert check.state == State.WARNING
    assert check.message.endswith("; rejected connections 1 (warn 1)")
    with cache.client() as admin:
        admin.config_resetstat()
    assert run_probe(tmp_path, probe).state == State.OK


def test_wrong_password_unset_variable_bad_database_and_down_server(
    cache: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = f"127.0.0.1:{cache.port}"
    monkeypatch.setenv(REDIS_ENV, "wrong-password-given")
    check = run_probe(tmp_path, cache_probe(cache))
    assert check.state == State.CRITICAL
    assert check.message.startswith(f"{where}: authentication failed")
    assert "wrong-password-given" not in check.message
    check = run_probe(tmp_path, cache_probe(cache, password_env=None))
    assert (check.state, check.message) == (
        State.CRITICAL,
        f"{where}: needs a password (password_env)",
    )
    monkeypatch.setenv(REDIS_ENV, cache.password)
    check = run_probe(tmp_path, cache_probe(cache, redis=cache.url(db=99)))
    assert check.state == State.CRITICAL
    assert "DB index is out of range" in check.message
    port = free_port()
    check = run_probe(tmp_path, cache_probe(cache, redis=f"redis://127.0.0.1:{port}/0"))
    assert check.state == State.CRITICAL
    assert check.message.startswith(f"127.0.0.1:{port}: ")
    assert "refused" in check.message
    monkeypatch.delenv(REDIS_ENV)
    check = run_probe(tmp_path, cache_probe(cache))
    assert check.state == State.UNKNOWN
    assert (
        check.message
        == f"password_env: environment variable {REDIS_ENV} is not set on this machine"
    )


def test_rediss_verifies_the_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """rediss:// with the issuing CA as ca_file is OK; without it, CRITICAL: the
    certificate is not trusted; verify_tls false accepts it."""
    pki = Pki("redis")
    server = start_redis(tls=pki.leaf("127.0.0.1"))
    try:
        monkeypatch.setenv(REDIS_ENV, server.password)
        ca_file = tmp_path / "ca.pem"
        ca_file.write_bytes(pki.root_pem())
        probe = cache_probe(server, redis=server.tls_url())
        assert run_probe(tmp_path, {**probe, "ca_file": str(ca_file)}).state == State.OK
        check = run_probe(tmp_path, probe)
        assert check.state == State.CRITICAL
        assert "certificate verify failed" in check.message
        assert run_probe(tmp_path, {**probe, "verify_tls": False}).state == State.OK
    finally:
        server.stop()


def test_cache_probe_through_health_check_json(cache: RedisServer, tmp_path: Path) -> None:
    """The issue's cache probe in an inventory: past memory_crit_pct health.check exits 2 with
    the measured figures in `value`; the password appears nowhere."""
    with cache.client() as client:
        client.config_set("maxmemory", "4mb")
    fill_to(cache, 92)
    probe = cache_probe(cache, memory_warn_pct=80, memory_crit_pct=90)
    inventory = write_inventory(tmp_path / "inv.yaml", local_host(probe))
    code, report, output = health_check(inventory)
    assert code == 2, output
    check = checks_by_name(report)["cache"]
    assert check["state"] == "CRITICAL"
    assert check["value"] >= check["crit"] == round(4 * 1024 * 1024 * 0.9)
    assert cache.password not in output


def test_via_host_reaches_redis_through_the_ssh_connection(
    cache: RedisServer, ssh_fleet, tmp_path: Path
) -> None:
    """`via: host` on an SSH host: the probe connects through a tunnel of the host's SSH
    connection to the address as the host sees it."""
    host = ssh_fleet.hosts[0]
    probe = cache_probe(cache, via="host")
    hosts = {host.name: {**fleet_hosts(ssh_fleet)[host.name], "health": {"probes": [probe]}}}
    check = run_probe(tmp_path, probe, hosts, **fleet_vars(ssh_fleet))
    assert check.state == State.OK, check.message
    assert "; clients " in check.message


# --- settings -----------------------------------------------------------------------------

QUEUES = {"name": "q", "rabbitmq": "http://127.0.0.1:15672"}
CACHE = {"name": "c", "redis": "redis://127.0.0.1:6379/0"}
BROKEN = [
    ({**QUEUES, "dead_leter": ["dlq"]},
     "health.probes[0].dead_leter: unknown key 'dead_leter'; did you mean 'dead_letter'?"),
    ({**CACHE, "memory_warn_pc": 70},
     "health.probes[0].memory_warn_pc: unknown key 'memory_warn_pc'; did you mean "
     "'memory_warn_pct'?"),
    ({**QUEUES, "queues": {"jobs": {"min_consumers": "one"}}},
     "health.probes[0].queues.jobs.min_consumers: expected a number, got 'one'"),
    ({**QUEUES, "dead_letter": "jobs_dlq"},
     "health.probes[0].dead_letter: expected a list, got the string 'jobs_dlq'"),
    ({**QUEUES, "queues": {"jobs": {"min_consumers": -1}}},
     "health.probes[0].queues.jobs.min_consumers: expected at least 0, got -1"),
    ({**QUEUES, "queues": {"jobs": {"warn": 5000, "crit": 1000}}},
     "health.probes[0].queues.jobs: crit (1000) is below warn (5000)"),
    ({**QUEUES, "rabbitmq": "http://guest:guest@127.0.0.1:15672"},
     "health.probes[0].rabbitmq: the URL carries credentials: name the user in `user` and the "
     "password's environment variable in `password_env`"),
    ({**QUEUES, "password_env": "$RMQ_PASSWORD"},
     "health.probes[0].password_env: expected the name of an environment variable, got "
     "'$RMQ_PASSWORD'"),
    ({**CACHE, "redis": "redis://:secret@127.0.0.1:6379/0"},
     "health.probes[0].redis: the URL carries a password: name its environment variable in "
     "`password_env`"),
    ({**CACHE, "redis": "redis://127.0.0.1:6379/cache"},
     "health.probes[0].redis: the URL's path is the database number, got '/cache'"),
    ({**CACHE, "redis": "http://127.0.0.1:6379/0"},
     "health.probes[0].redis: expected a redis:// or rediss:// URL with a host"),
    ({**CACHE, "rejected_warn": 0},
     "health.probes[0].rejected_warn: expected at least 1, got 0"),
    ({**CACHE, "memory_warn_pct": 95},
     "health.probes[0]: memory_crit_pct (90) is below memory_warn_pct (95)"),
]  # fmt: skip


@pytest.mark.parametrize("probe, says", BROKEN, ids=[said.split(":")[0] for _, said in BROKEN])
def test_broken_rabbitmq_and_redis_keys_are_refused_at_load(
    tmp_path: Path, probe: dict[str, Any], says: str
) -> None:
    """A mistake in a rabbitmq or redis probe is refused when the inventory loads, naming the
    file, the host and the key path as written (and the secret in a URL is not repeated)."""
    inventory = write_inventory(tmp_path / "inv.yaml", local_host(probe))
    with pytest.raises(ConfigError) as refused:
        load_inventory(inventory)
    assert f"{inventory}: host 'h': {says}" in str(refused.value)
    assert "secret@" not in str(refused.value)


@pytest.mark.parametrize("kind", ["rabbitmq", "redis"])
def test_the_documented_probe_loads(tmp_path: Path, kind: str) -> None:
    """The example of the kind's section in docs/checks.md is a valid probe as written."""
    page = (Path(__file__).parent.parent / "docs" / "checks.md").read_text()
    section = page.split(f"## `{kind}`\n", 1)[1]
    example = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    inventory = write_inventory(tmp_path / "inv.yaml", local_host(*example))
    [probe] = next(iter(load_inventory(inventory))).settings.health.probes
    assert probe.kind == kind
