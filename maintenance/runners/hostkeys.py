"""SSH host-key policy: verify against known_hosts and refuse what does not match.

fabric's Connection installs paramiko's AutoAddPolicy, which trusts any key; every connection
the product opens replaces it with one of these.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from pathlib import Path

import paramiko

from ..errors import HostKeyError


def fingerprint(key: paramiko.PKey) -> str:
    """The key's SHA256 fingerprint, as `ssh-keygen -l` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class RefuseUnknownKeys(paramiko.MissingHostKeyPolicy):
    """Refuse a host whose key is not in known_hosts, showing the key it offered."""

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        raise HostKeyError(
            f"host key for {hostname} is not in known_hosts: it offered {key.get_name()} "
            f"{fingerprint(key)}; add it with ssh-keyscan after checking it, "
            "or set ansible_host_key_checking: false for a lab"
        )


class AcceptUnverifiedKeys(paramiko.MissingHostKeyPolicy):
    """For `ansible_host_key_checking: false`: accept any key without recording it."""

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        return None


def changed_key_error(exc: paramiko.BadHostKeyException) -> HostKeyError:
    """Explain a key that differs from known_hosts, with both fingerprints."""
    return HostKeyError(
        f"host key for {exc.hostname} has CHANGED: it offered {exc.key.get_name()} "
        f"{fingerprint(exc.key)}, known_hosts has {exc.expected_key.get_name()} "
        f"{fingerprint(exc.expected_key)}; refusing to connect (possible man-in-the-middle)"
    )


def install_policy(client: paramiko.SSHClient, known_hosts: Sequence[str], checking: bool) -> None:
    """Load KNOWN_HOSTS files that exist and set the policy for keys they lack."""
    if not checking:
        client.set_missing_host_key_policy(AcceptUnverifiedKeys())
        return
    for path in known_hosts:
        expanded = Path(path).expanduser()
        if expanded.is_file():
            client.load_host_keys(str(expanded))
    client.set_missing_host_key_policy(RefuseUnknownKeys())
