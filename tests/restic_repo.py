"""A real restic repository for checking retention against `restic forget`.

restic opens a repository by deriving a key from the password with scrypt, tuned when the
repository is created to take about half a second; every restic command pays it again. The
repository's master key is stored encrypted in a key file, so after `restic init` we wrap the
same master key again under cheap scrypt parameters (the key file format of restic's design
document: scrypt -> AES-256-CTR + Poly1305-AES). restic still does all its own work on the
same data; `restic forget` then answers in about 20 ms instead of 0.5-1.5 s.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.poly1305 import Poly1305

PASSWORD = "retention-tests"
CHEAP_SCRYPT = {"N": 1024, "r": 8, "p": 1}


class ResticRepo:
    """A repository in DIRECTORY holding backups of one tiny file, all from host 'h'."""

    def __init__(self, directory: Path) -> None:
        assert shutil.which("restic"), "restic is not installed: run scripts/install-deps"
        self.directory = directory
        self.env = {**os.environ, "RESTIC_REPOSITORY": str(directory / "repo"),
                    "RESTIC_PASSWORD": PASSWORD, "TZ": "UTC"}  # fmt: skip
        (directory / "data").mkdir()
        (directory / "data" / "dump").write_text("one small file\n")
        self._restic("init")
        _rewrap_key(directory / "repo" / "keys", PASSWORD.encode())

    def backup(self, time: datetime, tags: list[str]) -> None:
        """One backup whose snapshot time is TIME (UTC), tagged TAGS.

        Run one at a time: restic 0.14 backs off for about 40 s when a lock file it listed is
        gone before it reads it, which concurrent backups make likely.
        """
        self._restic("backup", "--quiet", "--host", "h", "--time", f"{time:%Y-%m-%d %H:%M:%S}",
                     "--tag", ",".join(tags), "data")  # fmt: skip

    def forget_dry_run(self, flags: list[str]) -> list[dict]:
        """`restic forget --dry-run --json FLAGS`: one entry per snapshot group."""
        output = self._restic("forget", "--dry-run", "--json", "--no-lock", *flags)
        return json.loads(output)

    def _restic(self, *arguments: str) -> str:
        done = subprocess.run(
            ["restic", "--no-cache", *arguments],
            env=self.env,
            cwd=self.directory,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, f"restic {' '.join(arguments)}: {done.stderr}"
        return done.stdout


def _rewrap_key(keys: Path, password: bytes) -> None:
    """Replace the only key file in KEYS by one holding the same master key, cheap to open."""
    [key_file] = keys.iterdir()
    key = json.loads(key_file.read_text())
    master = _open_box(_derive(key, password), base64.b64decode(key["data"]))
    cheap = {**key, **CHEAP_SCRYPT, "salt": base64.b64encode(os.urandom(64)).decode()}
    cheap["data"] = base64.b64encode(_seal_box(_derive(cheap, password), master)).decode()
    text = json.dumps(cheap).encode()
    (keys / hashlib.sha256(text).hexdigest()).write_bytes(text)
    key_file.unlink()


def _derive(key: dict, password: bytes) -> bytes:
    """64 bytes: the AES-256 key, then the Poly1305-AES key (k, r)."""
    salt = base64.b64decode(key["salt"])
    return hashlib.scrypt(password, salt=salt, n=key["N"], r=key["r"], p=key["p"],
                          maxmem=2**28, dklen=64)  # fmt: skip


def _mac_key(derived: bytes, iv: bytes) -> bytes:
    """Poly1305-AES: r from the key, s = AES_k(nonce)."""
    encryptor = Cipher(algorithms.AES(derived[32:48]), modes.ECB()).encryptor()  # noqa: S305
    return derived[48:64] + encryptor.update(iv) + encryptor.finalize()


def _open_box(derived: bytes, box: bytes) -> bytes:
    """Check and decrypt IV || AES-CTR ciphertext || MAC."""
    iv, ciphertext, tag = box[:16], box[16:-16], box[-16:]
    Poly1305.verify_tag(_mac_key(derived, iv), ciphertext, tag)
    decryptor = Cipher(algorithms.AES(derived[:32]), modes.CTR(iv)).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


def _seal_box(derived: bytes, plaintext: bytes) -> bytes:
    iv = os.urandom(16)
    encryptor = Cipher(algorithms.AES(derived[:32]), modes.CTR(iv)).encryptor()
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    return iv + ciphertext + Poly1305.generate_tag(_mac_key(derived, iv), ciphertext)
