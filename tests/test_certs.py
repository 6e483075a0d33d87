"""certs.check against real TLS servers, files read over SSH and a PostgreSQL server with TLS."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from maintenance.certs import CertsOptions, check_host
from maintenance.executor import run_procedure
from maintenance.inventory import load_inventory
from maintenance.monitoring import exit_code
from maintenance.reporting import document as json_document
from tests.harness import Cluster, start_cluster
from tests.harness.postgres import CONF_ROOT, DATA_ROOT
from tests.harness.tls import Issued, Pki, TlsServer
from tests.inventories import fleet_hosts, fleet_vars, write_inventory
from tests.maint_cli import run_maint_cli


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


@pytest.fixture(scope="module")
def ca_file(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "root.pem"
    path.write_bytes(pki.root_pem())
    return path


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    """Start TLS servers for one test: serve(issued, starttls='none') -> 127.0.0.1:port."""
    servers: list[TlsServer] = []

    def start(issued: Issued, starttls: str = "none") -> str:
        servers.append(TlsServer(issued, tmp_path, starttls))
        return servers[-1].endpoint

    yield start
    for server in servers:
        server.stop()


def run_check(tmp_path: Path, hosts: dict, *flags: str, all_vars=None) -> tuple[int, dict, str]:
    inventory = write_inventory(tmp_path / "inventory.yaml", hosts, all_vars=all_vars)
    done = run_maint_cli(["certs.check", "-i", str(inventory), "--json", *flags])
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


def check_in_process(tmp_path: Path, hosts: dict, options=None) -> tuple[int, dict]:
    """The procedure without a new interpreter: (monitoring exit code, the JSON document)."""
    inventory = load_inventory(write_inventory(tmp_path / "inventory.yaml", hosts))
    results = run_procedure("certs.check", check_host, list(inventory), options)
    return exit_code(results), json_document("certs.check", results)


def local(*targets: dict, **host_vars) -> dict:
    return {"ctl": {"ansible_connection": "local", "certs": list(targets), **host_vars}}


def only_target(document: dict) -> dict:
    (target,) = document["results"][0]["details"]["targets"]
    return target


def test_valid_certificate_is_ok_and_fully_described(
    serve, pki: Pki, ca_file: Path, tmp_path: Path
) -> None:
    """A good chain: exit 0, and every fact a user checks is in the JSON document."""
    endpoint = serve(pki.leaf("localhost", "127.0.0.1", days_left=90))
    entry = {"endpoint": endpoint, "server_name": "localhost", "ca_file": str(ca_file)}

    code, document, stderr = run_check(tmp_path, local(entry))

    assert code == 0, stderr
    target = only_target(document)
    assert (target["state"], target["chain_verified"], target["name_matches"]) == ("OK", True, True)
    leaf, intermediate = target["certificates"]
    assert leaf["role"] == "leaf" and intermediate["role"] == "intermediate"
    assert leaf["subject"] == "CN=localhost"
    assert leaf["issuer"] == "CN=maint test intermediate"
    assert leaf["sans"] == ["localhost", "127.0.0.1"]
    assert 89.9 < leaf["days_left"] <= 90
    assert (leaf["key_type"], leaf["key_size"]) == ("EC secp256r1", 256)
    assert leaf["signature_algorithm"] == "ecdsa-with-SHA256"
    assert leaf["self_signed"] is False and leaf["serial"] and leaf["not_after"]


@pytest.mark.parametrize(
    ("case", "code", "state", "problem"),
    [
        ("5 days left", 2, "CRITICAL", "expires in 5.0 days"),
        ("20 days left", 1, "WARNING", "expires in 20.0 days"),
        ("expired", 2, "CRITICAL", "expired 3.0 days ago"),
        ("not yet valid", 2, "CRITICAL", "not valid before"),
        ("wrong name", 2, "CRITICAL", "name 'localhost' not in the certificate"),
        ("self-signed", 2, "CRITICAL", "self-signed certificate not in the trust store"),
        ("incomplete chain", 2, "CRITICAL", "missing intermediate certificate"),
    ],
)
def test_bad_certificates_get_their_state_and_exit_code(
    serve, pki: Pki, ca_file: Path, tmp_path: Path, case: str, code: int, state: str, problem: str
) -> None:
    issued = {
        "5 days left": lambda: pki.leaf("localhost", days_left=5),
        "20 days left": lambda: pki.leaf("localhost", days_left=20),
        "expired": lambda: pki.leaf("localhost", days_left=-3, valid_from_days=-60),
        "not yet valid": lambda: pki.leaf("localhost", valid_from_days=2),
        "wrong name": lambda: pki.leaf("db.example.com"),
        "self-signed": lambda: pki.leaf("localhost", self_signed=True),
        "incomplete chain": lambda: pki.leaf("localhost", with_intermediate=False),
    }[case]()
    entry = {"endpoint": serve(issued), "server_name": "localhost", "ca_file": str(ca_file)}

    exit_code, report = check_in_process(tmp_path, local(entry))

    assert exit_code == code, report
    leaf = only_target(report)["certificates"][0]
    assert leaf["state"] == state
    assert any(problem in text for text in leaf["problems"]), leaf["problems"]
    if case == "self-signed":
        assert leaf["self_signed"] is True
    if case == "expired":
        assert only_target(report)["chain_verified"] is True  # dates judged apart from trust


def test_table_lists_certificates_sorted_by_days_left(
    serve, pki: Pki, ca_file: Path, tmp_path: Path
) -> None:
    entries = [
        {"endpoint": serve(pki.leaf("localhost", days_left=days)), "ca_file": str(ca_file)}
        for days in (60, 4, 25)
    ]
    hosts = local(*[{**e, "server_name": "localhost"} for e in entries])
    inventory = write_inventory(tmp_path / "inventory.yaml", hosts)

    done = run_maint_cli(["certs.check", "-i", str(inventory)])

    assert done.returncode == 2
    leaf_lines = [line.split() for line in done.stdout.splitlines() if " leaf " in line]
    assert [float(fields[0]) for fields in leaf_lines] == pytest.approx([4, 25, 60], abs=0.1)
    assert [fields[1] for fields in leaf_lines] == ["CRITICAL", "WARNING", "OK"]


def test_thresholds_entry_over_host_vars_and_flags_over_both(
    serve, pki: Pki, ca_file: Path, tmp_path: Path
) -> None:
    """20 days left: OK under host warn_days 10, WARNING with entry 25, OK with --warn-days 15."""
    endpoint = serve(pki.leaf("localhost", days_left=20))
    entry = {"endpoint": endpoint, "server_name": "localhost", "ca_file": str(ca_file)}

    def host(**entry_vars) -> dict:
        settings = {"warn_days": 10, "crit_days": 3, "targets": [{**entry, **entry_vars}]}
        return {"ctl": {"ansible_connection": "local", "certs": settings}}

    assert check_in_process(tmp_path, host())[0] == 0
    assert check_in_process(tmp_path, host(warn_days=25))[0] == 1
    assert check_in_process(tmp_path, host(), CertsOptions(warn_days=30, crit_days=21))[0] == 2
    code, _, stderr = run_check(tmp_path, host(warn_days=25), "--warn-days", "15")
    assert code == 0, stderr


def test_smtp_starttls_endpoint(serve, pki: Pki, ca_file: Path, tmp_path: Path) -> None:
    endpoint = serve(pki.leaf("localhost"), starttls="smtp")
    entry = {"endpoint": endpoint, "starttls": "smtp", "server_name": "localhost"}

    code, document, stderr = run_check(tmp_path, local({**entry, "ca_file": str(ca_file)}))

    assert code == 0, stderr
    assert only_target(document)["certificates"][0]["subject"] == "CN=localhost"


def test_unreachable_endpoint_and_bad_config_are_unknown(tmp_path: Path) -> None:
    """Nothing listening: UNKNOWN (3). A bad entry: exit 3 before anything runs, no traceback."""
    with socket_closed_port() as port:
        code, document, _ = run_check(tmp_path, local({"endpoint": f"127.0.0.1:{port}"}))
    assert code == 3
    assert only_target(document)["state"] == "UNKNOWN"

    code, document, stderr = run_check(tmp_path, local({"endpoint": "no-port-here"}))
    assert code == 3 and not document
    assert "host 'ctl': certs[0].endpoint: expected host:port, got 'no-port-here'" in stderr
    assert "Traceback" not in stderr


class socket_closed_port:
    """A loopback port nobody listens on (bound then closed)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]

    def __exit__(self, *exc_info: object) -> None:
        return None


def test_certificate_files_are_read_on_the_host_over_ssh(
    ssh_fleet, pki: Pki, tmp_path: Path
) -> None:
    """A chain file, a CA bundle and a missing file on an SSH host, with a CA file there too."""
    directory = Path(tempfile.mkdtemp(prefix="maint-certs-", dir="/var/tmp"))
    try:
        directory.chmod(0o755)
        (directory / "app.pem").write_bytes(pki.leaf("app.internal", days_left=20).chain_pem())
        (directory / "ca.pem").write_bytes(pki.root_pem())
        (directory / "bundle.pem").write_bytes(
            pki.intermediate.chain_pem() + b"# comment between blocks\n"
        )
        for path in directory.iterdir():
            path.chmod(0o644)
        targets = [
            {"file": str(directory / "app.pem"), "ca_file": str(directory / "ca.pem")},
            {"file": str(directory / "bundle.pem")},
        ]
        node = ssh_fleet.hosts[0].name
        hosts = {node: fleet_hosts(ssh_fleet)[node] | {"certs": targets}}

        code, document, stderr = run_check(tmp_path, hosts, all_vars=fleet_vars(ssh_fleet))

        assert code == 1, stderr  # the 20-day certificate warns; everything else is fine
        app, bundle = document["results"][0]["details"]["targets"]
        assert app["chain_verified"] is True and app["name_matches"] is None
        assert [c["role"] for c in app["certificates"]] == ["leaf", "intermediate"]
        assert app["certificates"][0]["state"] == "WARNING"
        assert [c["role"] for c in bundle["certificates"]] == ["ca", "ca"]
        assert bundle["chain_verified"] is None and bundle["state"] == "OK"

        missing = {node: hosts[node] | {"certs": [{"file": str(directory / "gone.pem")}]}}
        code, document, _ = run_check(tmp_path, missing, all_vars=fleet_vars(ssh_fleet))
        assert code == 3
        assert "cannot read" in only_target(document)["error"]
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_cluster(pki: Pki) -> Iterator[Cluster]:
    """A PostgreSQL cluster with ssl = on, serving a certificate for 127.0.0.1 from our CA."""
    cluster = start_cluster(f"maint_test_certs_{os.getpid()}")
    try:
        data = DATA_ROOT / cluster.name
        issued = pki.leaf("127.0.0.1", "localhost", days_left=45)
        for name, content in (("server.crt", issued.chain_pem()), ("server.key", issued.key_pem())):
            path = data / name
            path.write_bytes(content)
            shutil.chown(path, "postgres", "postgres")
            path.chmod(0o600)
        (CONF_ROOT / cluster.name / "conf.d" / "maint-test-ssl.conf").write_text(
            f"ssl = on\nssl_cert_file = '{data}/server.crt'\nssl_key_file = '{data}/server.key'\n"
        )
        cluster.stop()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


def test_postgres_server_certificate_checked_through_starttls(
    tls_cluster: Cluster, ca_file: Path, tmp_path: Path
) -> None:
    """postgres.dsn alone (sslmode=verify-full): the server's certificate is found and verified."""
    dsn = f"{tls_cluster.dsn()}?sslmode=verify-full&sslrootcert={ca_file}"
    hosts = {"db": {"ansible_connection": "local", "postgres": {"dsn": dsn}}}

    code, document, stderr = run_check(tmp_path, hosts)

    assert code == 0, stderr
    target = only_target(document)
    assert target["target"] == f"postgres 127.0.0.1:{tls_cluster.port}"
    assert target["starttls"] == "postgres" and target["via"] == "direct"
    assert (target["chain_verified"], target["name_matches"]) == (True, True)
    assert 44.9 < target["certificates"][0]["days_left"] <= 45
    assert tls_cluster.password not in json.dumps(document) + stderr


def test_postgres_behind_an_ssh_tunnel_is_checked_through_the_host(
    tls_cluster: Cluster, ca_file: Path, ssh_fleet, tmp_path: Path
) -> None:
    """With postgres.ssh_tunnel the DSN is as the host sees it: the STARTTLS exchange goes
    through the host's SSH connection, and the certificate is judged against the DSN's name."""
    dsn = f"{tls_cluster.dsn()}?sslmode=verify-full&sslrootcert={ca_file}"
    node = ssh_fleet.hosts[0].name
    hosts = {node: fleet_hosts(ssh_fleet)[node] | {"postgres": {"dsn": dsn, "ssh_tunnel": True}}}

    code, document, stderr = run_check(tmp_path, hosts, all_vars=fleet_vars(ssh_fleet))

    assert code == 0, stderr
    target = only_target(document)
    assert target["via"] == "ssh tunnel"
    assert target["target"] == f"postgres 127.0.0.1:{tls_cluster.port}"
    assert (target["chain_verified"], target["name_matches"]) == (True, True)
    assert 44.9 < target["certificates"][0]["days_left"] <= 45


def test_postgres_sslmode_decides_what_is_enforced(
    tls_cluster: Cluster, tmp_path: Path, ca_file: Path
) -> None:
    """Without a CA file the chain cannot verify: reported but OK under sslmode=require,
    CRITICAL for an explicit STARTTLS endpoint."""
    hosts = {"db": {"ansible_connection": "local", "postgres": {"dsn": tls_cluster.dsn()}}}
    code, document, stderr = run_check(tmp_path, hosts)
    assert code == 0, stderr
    assert only_target(document)["chain_verified"] is False

    entry = {"endpoint": f"127.0.0.1:{tls_cluster.port}", "starttls": "postgres"}
    hosts["db"]["certs"] = [entry]
    code, document, _ = run_check(tmp_path, hosts)
    assert code == 2
    assert only_target(document)["target"] == f"127.0.0.1:{tls_cluster.port}"  # no duplicate


def test_postgres_without_tls_is_skipped(prod_cluster: Cluster, tmp_path: Path) -> None:
    """A server answering 'N' to SSLRequest has no certificate to check: exit 0, noted."""
    hosts = {"db": {"ansible_connection": "local", "postgres": {"dsn": prod_cluster.dsn()}}}

    code, document, stderr = run_check(tmp_path, hosts)

    assert code == 0, stderr
    result = document["results"][0]
    assert result["status"] == "skipped"
    assert result["details"]["tls_off"] == [f"postgres 127.0.0.1:{prod_cluster.port}"]
