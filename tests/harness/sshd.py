"""A fleet of real OpenSSH servers on loopback addresses, one per inventory host.

Every host is 127.0.0.N on a shared port, so the product's SSH code (fabric/paramiko)
and plain ``ssh`` baselines talk to genuine sshd processes with verified host keys.
"""

from __future__ import annotations

import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .net import accepts_tcp, free_port, log_tail, wait_until

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")
# sshd silently exits when given more ListenAddress lines than this.
MAX_LISTEN_PER_SSHD = 16


@dataclass
class SshHost:
    """One inventory host: a loopback address served by the fleet's sshd."""

    name: str
    address: str
    port: int
    user: str
    key_path: Path

    def inventory_vars(self) -> dict[str, str | int]:
        """Ansible-style host vars, as the product's inventory loader expects them."""
        return {
            "ansible_host": self.address,
            "ansible_port": self.port,
            "ansible_user": self.user,
            "ansible_ssh_private_key_file": str(self.key_path),
        }


@dataclass
class SshFleet:
    """The running sshd processes plus the client-side key and known_hosts."""

    hosts: list[SshHost]
    known_hosts: Path
    key_path: Path
    workdir: Path
    processes: list[subprocess.Popen] = field(default_factory=list, repr=False)
    auth_dir: Path | None = None

    @property
    def port(self) -> int:
        return self.hosts[0].port

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.processes]

    def logins(self) -> int:
        """Successful logins the fleet's sshd processes have logged so far."""
        logs = self.workdir.glob("sshd*.log")
        return sum(log.read_text(errors="replace").count("Accepted publickey") for log in logs)

    def ssh_argv(self, host: SshHost, command: str) -> list[str]:
        """Plain OpenSSH client argv for ``command`` on ``host`` (benchmark baselines)."""
        return [
            "ssh",
            "-n",
            "-i",
            str(self.key_path),
            "-p",
            str(host.port),
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "ConnectTimeout=10",
            f"{host.user}@{host.address}",
            command,
        ]

    def stop(self) -> None:
        """Terminate every sshd of the fleet (open sessions end with them)."""
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()
        if self.auth_dir is not None:
            shutil.rmtree(self.auth_dir, ignore_errors=True)
            self.auth_dir = None


def start_fleet(count: int, workdir: Path, user: str = "fleet", first_address: int = 2) -> SshFleet:
    """Start sshd for ``count`` hosts node01.. at 127.0.0.<first_address + i>, one port."""
    if count < 1 or first_address + count - 1 > 254:
        raise ValueError(f"cannot fit {count} hosts from 127.0.0.{first_address}")
    ensure_user(user)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)

    host_key = workdir / "ssh_host_ed25519_key"
    key_path = workdir / "id_ed25519"
    _keygen(host_key, "maint-test-host")
    _keygen(key_path, "maint-test-client")

    # sshd reads authorized_keys as the target user, who cannot enter pytest's 0700 tmp
    # tree, so keep it in its own world-readable directory.
    auth_dir = Path(tempfile.mkdtemp(prefix="maint-sshd-auth-"))
    auth_dir.chmod(0o755)
    authorized = auth_dir / "authorized_keys"
    shutil.copyfile(key_path.with_suffix(".pub"), authorized)
    authorized.chmod(0o644)

    addresses = [f"127.0.0.{first_address + i}" for i in range(count)]
    port = free_port(tuple(addresses))
    hosts = [
        SshHost(f"node{i + 1:02d}", address, port, user, key_path)
        for i, address in enumerate(addresses)
    ]
    host_pub = _public_key(host_key.with_suffix(".pub"))
    known_hosts = workdir / "known_hosts"
    known_hosts.write_text("".join(f"[{h.address}]:{port} {host_pub}\n" for h in hosts))

    fleet = SshFleet(hosts, known_hosts, key_path, workdir, auth_dir=auth_dir)
    try:
        for index in range(0, count, MAX_LISTEN_PER_SSHD):
            chunk = addresses[index : index + MAX_LISTEN_PER_SSHD]
            fleet.processes.append(
                _launch(workdir, index // MAX_LISTEN_PER_SSHD, chunk, port, host_key, authorized)
            )
        for number, host in enumerate(hosts):
            group = number // MAX_LISTEN_PER_SSHD
            proc = fleet.processes[group]
            if not wait_until(
                lambda h=host: accepts_tcp(h.address, port),
                timeout=10,
                alive=lambda p=proc: p.poll() is None,
            ):
                raise RuntimeError(
                    f"sshd{group} (exit code {proc.poll()}) not accepting on "
                    f"{host.address}:{port}:\n{log_tail(workdir / f'sshd{group}.log')}"
                )
    except BaseException:
        fleet.stop()
        raise
    return fleet


def ensure_user(user: str) -> None:
    """Create the login user if missing, with a non-locked password field.

    A locked ('!') password makes sshd with UsePAM=no refuse even key logins; '*' only
    disables password logins.
    """
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", user], check=True)
    if user != "root":
        shadow = subprocess.run(
            ["getent", "shadow", user], capture_output=True, text=True, check=False
        ).stdout
        if shadow.split(":")[1:2] != ["*"]:
            subprocess.run(["usermod", "-p", "*", user], check=True)


def _keygen(path: Path, comment: str) -> None:
    for stale in (path, path.with_suffix(".pub")):
        stale.unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    path.chmod(0o600)


def _public_key(pub_path: Path) -> str:
    """'ssh-ed25519 AAAA...' without the comment, the form known_hosts wants."""
    key_type, blob = pub_path.read_text().split()[:2]
    return f"{key_type} {blob}"


def _launch(
    workdir: Path, index: int, addresses: list[str], port: int, host_key: Path, authorized: Path
) -> subprocess.Popen:
    config = workdir / f"sshd{index}.conf"
    log = workdir / f"sshd{index}.log"
    lines = [
        *(f"ListenAddress {address}:{port}" for address in addresses),
        f"HostKey {host_key}",
        f"PidFile {workdir / f'sshd{index}.pid'}",
        f"AuthorizedKeysFile {authorized}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "UseDNS no",
        "PermitRootLogin prohibit-password",
        "MaxStartups 200",
        "MaxSessions 50",
        "AcceptEnv PG* MAINT_* LANG LC_*",
        "Subsystem sftp internal-sftp",
        "LogLevel INFO",
    ]
    config.write_text("\n".join(lines) + "\n")
    log.unlink(missing_ok=True)
    # -D keeps sshd in the foreground so the Popen pid is the real daemon pid.
    return subprocess.Popen(
        [SSHD, "-D", "-f", str(config), "-E", str(log)],
        cwd="/",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
