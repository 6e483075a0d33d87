"""Local and SSH runners: text commands, 200 MB binary streams both ways, files, timeouts."""

from __future__ import annotations

import hashlib
import random
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from maintenance.errors import CommandTimeout, HostKeyError, HostUnreachable
from maintenance.inventory import Host
from maintenance.runners import LocalRunner, Runner, SshRunner
from maintenance.secrets import MASK, mask_text

STREAM_BYTES = 200 * 1024 * 1024
BLOCK = 1024 * 1024


class SeededReader:
    """A file-like source of TOTAL pseudo-random bytes, hashed as they are read."""

    def __init__(self, total: int, seed: int = 7) -> None:
        self.remaining = total
        self.random = random.Random(seed)
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        size = self.remaining if size < 0 else min(size, self.remaining)
        data = self.random.randbytes(size)
        self.remaining -= size
        self.sha256.update(data)
        return data


class HashingWriter:
    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return len(data)


def ssh_host(fleet, index: int = 0, **extra) -> Host:
    base = fleet.hosts[index]
    return Host(
        name=base.name,
        groups=(),
        vars={**base.inventory_vars(), "ssh_known_hosts": str(fleet.known_hosts), **extra},
    )


@pytest.fixture
def local_runner() -> Iterator[Runner]:
    with LocalRunner(Host("localhost", (), {"ansible_connection": "local"})) as runner:
        yield runner


@pytest.fixture
def ssh_runner(ssh_fleet) -> Iterator[Runner]:
    with SshRunner(ssh_host(ssh_fleet)) as runner:
        yield runner


@pytest.fixture(scope="module")
def shared_blob(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A 20 MiB random file readable by the fleet user (same machine as the SSH hosts)."""
    directory = tmp_path_factory.mktemp("blob")
    directory.chmod(0o755)
    directory.parent.chmod(0o755)
    directory.parent.parent.chmod(0o755)
    data = random.Random(3).randbytes(20 * BLOCK)
    path = directory / "blob.bin"
    path.write_bytes(data)
    path.chmod(0o644)
    return path, data


@pytest.fixture(params=["local", "ssh"])
def runner(request) -> Runner:
    return request.getfixturevalue(f"{request.param}_runner")


def test_run_returns_text_exit_code_and_duration(runner: Runner) -> None:
    result = runner.run("echo hello; echo oops >&2; exit 3")
    assert (result.stdout, result.stderr.strip(), result.exit_code) == ("hello\n", "oops", 3)
    assert not result.ok
    assert 0 < result.duration_s < 5


def test_argument_lists_are_quoted(runner: Runner) -> None:
    result = runner.run(["printf", "%s|", "two words", "it's", "$HOME"])
    assert result.stdout == "two words|it's|$HOME|"


def test_upload_stream_of_200mb_arrives_intact_with_flat_memory(runner: Runner) -> None:
    """200 MB fed into a command's stdin arrive byte for byte, and memory stays bounded."""
    reader = SeededReader(STREAM_BYTES)
    tracemalloc.start()
    try:
        result = runner.run("sha256sum", stdin=reader)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split()[0] == reader.sha256.hexdigest()
    assert peak < 64 * BLOCK, f"peak traced memory {peak / BLOCK:.0f} MiB"


def test_download_stream_of_200mb_arrives_intact_with_flat_memory(
    runner: Runner, shared_blob
) -> None:
    """A command's 200 MB of binary stdout reach the writer unchanged, in bounded chunks."""
    path, data = shared_blob
    repeats = STREAM_BYTES // len(data)
    expected = hashlib.sha256()
    for _ in range(repeats):
        expected.update(data)
    writer = HashingWriter()
    tracemalloc.start()
    try:
        result = runner.stream(f"for i in $(seq {repeats}); do cat {path}; done", stdout=writer)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0, result.stderr
    assert writer.size == STREAM_BYTES
    assert writer.sha256.hexdigest() == expected.hexdigest()
    assert peak < 64 * BLOCK, f"peak traced memory {peak / BLOCK:.0f} MiB"


def test_timeout_stops_the_command(runner: Runner) -> None:
    started = time.monotonic()
    with pytest.raises(CommandTimeout, match=r"timed out after 0\.5s"):
        runner.run("sleep 30", timeout=0.5)
    assert time.monotonic() - started < 5


def test_env_reaches_the_command_but_not_its_argv(runner: Runner) -> None:
    """A password passed as env is seen by the command and absent from its command line."""
    secret = "pw-" + "x9" * 8
    result = runner.run('printf %s "$PGPASSWORD"; ps -o args= -p $$', env={"PGPASSWORD": secret})
    assert result.stdout.startswith(secret)
    assert secret not in result.stdout[len(secret) :], "secret visible in the process's argv"
    assert secret not in result.command


def test_put_and_get_copy_files_both_ways(runner: Runner, tmp_path: Path, shared_blob) -> None:
    source, data = shared_blob
    remote = f"/tmp/maint-put-{runner.host.name}-{time.monotonic_ns()}"
    try:
        runner.put(str(source), remote, mode=0o600)
        assert runner.run(["stat", "-c", "%a", remote]).stdout.strip() == "600"
        back = tmp_path / "back.bin"
        runner.get(remote, str(back))
        assert back.read_bytes() == data
    finally:
        runner.run(["rm", "-f", remote])


def test_ssh_connection_is_reused_across_commands(ssh_runner: SshRunner) -> None:
    first = ssh_runner.run("echo $PPID").stdout
    transport = ssh_runner._transport()
    ssh_runner.run("true")
    assert ssh_runner._transport() is transport
    assert first.strip().isdigit()


def test_ssh_commands_do_not_wait_on_delayed_acks(ssh_runner: SshRunner) -> None:
    """Nagle's algorithm off, as OpenSSH sets it: otherwise every command's small request
    waits for the peer's delayed ACK (about 40 ms per command on Linux)."""
    sock = ssh_runner._transport().sock
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_ssh_prefers_aes_gcm_and_still_offers_the_other_ciphers(ssh_runner: SshRunner) -> None:
    """AES-GCM moves a dump at about 2.5x paramiko's default AES-CTR+HMAC; a server without
    it still finds paramiko's usual ciphers on offer."""
    transport = ssh_runner._transport()
    assert transport.remote_cipher == transport.local_cipher == "aes128-gcm@openssh.com"
    offered = transport.get_security_options().ciphers
    assert offered[:2] == ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
    assert "aes128-ctr" in offered[2:]


def test_ssh_config_proxyjump_is_followed(ssh_fleet, tmp_path: Path, monkeypatch) -> None:
    """A host reached through a ProxyJump in ~/.ssh/config: one login to the jump host, one
    to the target through it (a direct connection would log one)."""
    jump, target = ssh_fleet.hosts[0], ssh_fleet.hosts[1]
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh/config").write_text(
        f"Host behind-jump\n  HostName {target.address}\n"
        f"  ProxyJump {jump.user}@{jump.address}:{jump.port}\n"
        f"Host {jump.address}\n  IdentityFile {ssh_fleet.key_path}\n"
    )
    monkeypatch.setenv("HOME", str(tmp_path))
    logins = ssh_fleet.logins()
    host = ssh_host(ssh_fleet, 1, ansible_host="behind-jump")
    with SshRunner(host) as runner:
        assert runner.run("echo reached").stdout == "reached\n"
    assert ssh_fleet.logins() == logins + 2


def test_unknown_host_key_is_refused_with_its_fingerprint(ssh_fleet, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with (
        SshRunner(ssh_host(ssh_fleet, ssh_known_hosts=str(empty))) as runner,
        pytest.raises(HostKeyError, match=r"not in known_hosts: it offered ssh-ed25519 SHA256:\S+"),
    ):
        runner.run("true")


def test_changed_host_key_is_refused_showing_both_fingerprints(ssh_fleet, tmp_path: Path) -> None:
    host = ssh_fleet.hosts[0]
    import paramiko

    other = paramiko.Ed25519Key.from_private_key_file(str(ssh_fleet.key_path))
    known = tmp_path / "known_hosts"
    known.write_text(f"[{host.address}]:{host.port} ssh-ed25519 {other.get_base64()}\n")
    host = ssh_host(ssh_fleet, ssh_known_hosts=str(known))
    with SshRunner(host) as runner, pytest.raises(HostKeyError) as error:
        runner.run("true")
    message = str(error.value)
    assert "CHANGED" in message
    assert message.count("SHA256:") == 2


def test_host_key_checking_false_accepts_unknown_key(ssh_fleet, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    host = ssh_host(ssh_fleet, ssh_known_hosts=str(empty), ansible_host_key_checking=False)
    with SshRunner(host) as runner:
        assert runner.run("whoami").stdout.strip() == "fleet"


def test_refused_connection_is_unreachable(ssh_fleet) -> None:
    host = ssh_host(ssh_fleet, ansible_host="127.0.0.250")
    with SshRunner(host) as runner, pytest.raises(HostUnreachable, match="cannot connect"):
        runner.run("true")


def test_connect_timeout_bounds_a_silent_host(ssh_fleet) -> None:
    """A host that accepts TCP but never speaks SSH is given up after connect_timeout."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(silent.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    host = ssh_host(
        ssh_fleet, ansible_host="127.0.0.1", ansible_port=silent.getsockname()[1], connect_timeout=1
    )
    started = time.monotonic()
    try:
        with SshRunner(host) as runner, pytest.raises(HostUnreachable):
            runner.run("true")
    finally:
        stop.set()
        silent.close()
    assert time.monotonic() - started < 4


def test_failed_command_error_masks_dsn_passwords() -> None:
    assert mask_text("could not connect to postgresql://app:hunter22@db/app") == (
        f"could not connect to postgresql://app:{MASK}@db/app"
    )


class FailingReader:
    """Gives a few chunks, then fails like a store read that lost its connection."""

    def __init__(self) -> None:
        self.calls = 0

    def read(self, size: int = -1) -> bytes:
        self.calls += 1
        if self.calls > 3:
            raise ConnectionResetError("store connection dropped")
        return b"x" * 1000


def test_failing_stdin_reader_is_raised_and_never_hangs(runner: Runner) -> None:
    """A reader failing mid-stream surfaces its own error; the command gets EOF and ends."""
    started = time.monotonic()
    with pytest.raises(ConnectionResetError, match="store connection dropped"):
        runner.run("cat > /dev/null", stdin=FailingReader(), timeout=20)
    assert time.monotonic() - started < 10
